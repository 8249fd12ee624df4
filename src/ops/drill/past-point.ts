/** Which earlier instant a drill restores, besides the latest state. */

/** A drill restores the state of this long before it started, when the replica reaches back that far. */
export const PAST_POINT_OFFSET_MS = 60_000;

/** `litestream ltx` prints file times to the second: the replica may start up to a second after what it says. */
const LISTING_RESOLUTION_MS = 1000;

export interface PastPoint {
  at: Date;
  /** Why this instant, for the report. */
  why: string;
}

/**
 * One minute before the drill started; when the replica is younger than that (a new node), the midpoint
 * between its first backup and the drill's start, which still proves a point-in-time restore works.
 */
export function choosePastPoint(drillStartedAt: number, replicaStartedAt: number): PastPoint {
  const preferred = drillStartedAt - PAST_POINT_OFFSET_MS;
  const earliest = replicaStartedAt + LISTING_RESOLUTION_MS;
  if (preferred >= earliest) return { at: new Date(preferred), why: `${PAST_POINT_OFFSET_MS / 1000} s before the drill` };
  if (earliest >= drillStartedAt) {
    return { at: new Date(drillStartedAt), why: "the replica began less than a second before the drill: no earlier point exists" };
  }
  const reach = (drillStartedAt - earliest) / 1000;
  return {
    at: new Date(earliest + Math.floor((drillStartedAt - earliest) / 2)),
    why: `the replica reaches back only ${reach.toFixed(1)} s, less than ${PAST_POINT_OFFSET_MS / 1000} s: the midpoint of its range`,
  };
}
