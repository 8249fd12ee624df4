/** How each finding of a restore drill becomes a named step result, with a hint when it fails. */
import type { LinkComparison } from "../../storage/restored-copy";
import { type CheckResult, fail, pass } from "../checks/check-result";

export const RUNBOOK = "runbooks/failed-restore-drill.md";

const seconds = (ms: number) => Math.round(ms) / 1000;

/** `integrity.latest` / `integrity.past`: `PRAGMA integrity_check` must say exactly "ok". */
export function integrityVerdict(name: string, rows: string[]): CheckResult {
  if (rows.length === 1 && rows[0] === "ok") return pass(name, "ok");
  return fail(
    name,
    `${rows.length} problem(s): ${rows.slice(0, 3).join("; ")}`,
    `the replica restores a damaged database: keep the live one, and see ${RUNBOOK} before anyone restores from this replica`,
  );
}

export interface RpoVerdict {
  result: CheckResult;
  /** How far the replica was behind the live database when the restore started; null when not measurable. */
  rpoSeconds: number | null;
  /** Age of the newest replicated heartbeat when the restore finished. */
  replicaAgeSeconds: number | null;
}

export interface RpoInputs {
  /** Newest heartbeat of the live database, read just before the restore started. */
  liveAt: number | null;
  /** Newest heartbeat in the restored copy. */
  copyAt: number | null;
  restoreStartedAt: number;
  restoreFinishedAt: number;
}

/**
 * Litestream lists the replica's files when the restore starts, so the copy is the replica as it was then, give or
 * take the listing (well under a second): the RPO compares it with the live database at that moment, whatever
 * the size of the database (a restore can take minutes). The age at the restore's end is reported beside it.
 */
export function rpoVerdict({ liveAt, copyAt, restoreStartedAt, restoreFinishedAt }: RpoInputs, maxMs: number): RpoVerdict {
  if (copyAt === null || liveAt === null) {
    const result = fail(
      "rpo",
      `no heartbeat in the ${copyAt === null ? "restored copy" : "live database"}, so the replica's lag cannot be measured`,
      "the primary (`shortener serve`) writes one every second: is it running, with this version?",
    );
    return { result, rpoSeconds: null, replicaAgeSeconds: null };
  }
  const rpoMs = Math.max(0, liveAt - copyAt);
  const rpoSeconds = seconds(rpoMs);
  const replicaAgeSeconds = seconds(Math.max(0, restoreFinishedAt - copyAt));
  const liveAge = restoreStartedAt - liveAt;
  const idle = liveAge > maxMs ? `; no primary is writing heartbeats (the live one is ${seconds(liveAge)} s old)` : "";
  const detail = `replica ${rpoSeconds} s behind the live database (max ${seconds(maxMs)} s); newest replicated heartbeat ${replicaAgeSeconds} s old when the restore finished${idle}`;
  const result = rpoMs <= maxMs ? pass("rpo", detail) : fail("rpo", detail, `Litestream is not keeping up or not running: see ${RUNBOOK}`);
  return { result, rpoSeconds, replicaAgeSeconds };
}

/** `links`: the copy lacks no link older than its newest heartbeat, and holds no id the live database never gave out. */
export function linksVerdict(c: LinkComparison): CheckResult {
  const counts = `live ${c.liveLinks}, restored ${c.restoredLinks}: ${c.newerThanCopy} created since the replica's newest heartbeat, ${c.deletedSince} deleted since`;
  if (c.restoredLastId > c.liveLastId) {
    return fail(
      "links",
      `${counts}; the copy holds link ids up to ${c.restoredLastId}, the live database only up to ${c.liveLastId}`,
      "the replica holds writes this database never made: is --litestream-config pointing at another node's replica?",
    );
  }
  if (c.missingFromCopy > 0) {
    return fail(
      "links",
      `${counts}; ${c.missingFromCopy} live link(s) created before the replica's newest heartbeat are missing from it`,
      `the replica lost acknowledged writes: keep the live database, and see ${RUNBOOK}`,
    );
  }
  return pass("links", counts);
}

/** `past.heartbeat`: a copy restored to a point holds no heartbeat from after it (nor after the latest state). */
export function pastHeartbeatVerdict(pointAt: number, pastAt: number | null, latestAt: number | null): CheckResult {
  if (pastAt === null) return pass("past.heartbeat", "no heartbeat yet at that point");
  // Litestream stamps its files to the second, so a state may carry a heartbeat up to a second past the point.
  const overshoot = pastAt - pointAt;
  if (overshoot > 1000 || (latestAt !== null && pastAt > latestAt)) {
    return fail(
      "past.heartbeat",
      `restored to ${new Date(pointAt).toISOString()} but holds a heartbeat from ${new Date(pastAt).toISOString()}`,
      `point-in-time restore does not stop at the requested time: see ${RUNBOOK}`,
    );
  }
  return pass(
    "past.heartbeat",
    `newest heartbeat ${new Date(pastAt).toISOString()}, ${seconds(Math.max(0, -overshoot))} s before the point`,
  );
}
