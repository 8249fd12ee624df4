/**
 * Deleting visits (a link's, or the orphan ones) in small transactions that keep the roll-ups, totals and counters
 * consistent after each one, so a link with millions of visits never holds redirects up for long.
 */
import type { Database } from "bun:sqlite";
import { BUSY_TIMEOUT_MS, relaxedWrite } from "../storage/database";
import type { VisitDeletionStore } from "../storage/visit-deletion-store";
import type { Lane, Tally, VisitQueryStore } from "../storage/visit-query-store";
import { dayOf } from "./visit-recorder";

/** At most this many rows are deleted per transaction; between batches the event loop runs redirects. */
export const DELETE_BATCH = 5000;
/** Batches are sized to take about this long, so a redirect waits at most about this behind one. */
const DELETE_BATCH_TARGET_MS = 2;
const DELETE_BATCH_MIN = 200;

/**
 * 1. Flush the buffer, so visits served before the request are deleted too; note the lane's newest id.
 * 2. Delete rows up to that id in batches of about DELETE_BATCH_TARGET_MS each (at most DELETE_BATCH rows), each
 *    taking its visits out of the roll-ups, totals and counters in its own transaction (every committed state is
 *    consistent), yielding to the event loop between batches. Another process's write lock is waited for on timers,
 *    as a link write waits (GroupCommit): after busy_timeout, SQLITE_BUSY (a 503 to retry; the batches done stay done).
 * 3. Clear what the roll-ups still hold for days whose raw rows were purged (and pre-v3 counts), keeping the
 *    visits that arrived during the deletion; `clearRollups` is told how many raw visits went, in that last
 *    transaction (for the audit history).
 */
export async function deleteLane(
  db: Database,
  store: VisitQueryStore,
  deletions: VisitDeletionStore,
  lane: Lane,
  flushPending: () => Promise<unknown>,
  clearRollups: (after: number, deleted: number) => void,
): Promise<number> {
  await flushPending();
  const upTo = store.last(lane)?.id ?? 0;
  let deleted = 0;
  let size = 1000;
  for (let batch = 0; batch < 100_000_000 / DELETE_BATCH_MIN; batch++) {
    const started = performance.now();
    const n = await relaxedWrite(db, () => deleteBatch(store, deletions, lane, upTo, size), BUSY_TIMEOUT_MS);
    deleted += n;
    if (n < size) break;
    // Aim the next batch at the target duration (the disk and the machine's load decide what a row costs).
    const perRow = Math.max(performance.now() - started, 0.01) / n;
    size = Math.max(DELETE_BATCH_MIN, Math.min(DELETE_BATCH, Math.floor(DELETE_BATCH_TARGET_MS / perRow)));
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
  await relaxedWrite(db, () => clearRollups(upTo, deleted), BUSY_TIMEOUT_MS);
  return deleted;
}

function deleteBatch(store: VisitQueryStore, deletions: VisitDeletionStore, lane: Lane, upTo: number, size: number): number {
  const rows = store.oldest(lane, upTo, size);
  if (rows.length === 0) return 0;
  deletions.deleteRange(lane, (rows[0] as { id: number }).id, (rows.at(-1) as { id: number }).id);
  const days = new Map<string, { kind: string; day: number; total: number; bots: number }>();
  for (const row of rows) {
    const kind = row.orphan_type ?? "non_orphan";
    const day = dayOf(row.at);
    const k = `${kind}:${day}`;
    let t = days.get(k);
    if (t === undefined) {
      t = { kind, day, total: 0, bots: 0 };
      days.set(k, t);
    }
    t.total++;
    if (row.potential_bot === 1) t.bots++;
  }
  const kinds = new Map<string, Tally>();
  for (const t of days.values()) {
    if (lane.kind === "link") deletions.subtractFromDay("link", lane.id, t.day, t.total, t.bots);
    else deletions.subtractFromDay("orphan", t.kind, t.day, t.total, t.bots);
    const sum = kinds.get(t.kind) ?? { total: 0, bots: 0 };
    kinds.set(t.kind, { total: sum.total + t.total, bots: sum.bots + t.bots });
  }
  for (const [kind, t] of kinds) {
    deletions.subtractFromTotals(kind, t.total, t.bots);
    if (lane.kind === "link") deletions.subtractFromLink(lane.id, t.total, t.bots);
  }
  return rows.length;
}
