/**
 * All SQL that deletes visits through the API (a link's, or every orphan visit) and takes them out of the
 * roll-ups (the link's and its domain's), totals and counters; called inside the caller's write transactions
 * (domain/visit-deletion.ts). Finding the rows to delete is a read (VisitQueryStore.oldest); the retention purge has
 * its own (visit-purge-store.ts).
 */
import type { Database, Statement } from "bun:sqlite";
import { type Binding, StatementCache } from "./statement-cache";
import { type Lane, VisitBuckets } from "./visit-buckets";

const MAX_ID = Number.MAX_SAFE_INTEGER;

export class VisitDeletionStore {
  readonly #statements: StatementCache;
  readonly #buckets: VisitBuckets;

  constructor(db: Database) {
    this.#statements = new StatementCache(db);
    this.#buckets = new VisitBuckets(db);
  }

  #query<T>(sql: string): Statement<T, Binding[]> {
    return this.#statements.get<T>(sql);
  }

  /** Deletes the lane's rows with ids in [lo, hi]; returns how many. */
  deleteRange(lane: Lane, lo: number, hi: number): number {
    let deleted = 0;
    this.#buckets.eachPart(lane, lo, hi, "asc", (where, params) => {
      deleted += this.#query(`DELETE FROM visits WHERE ${where} AND id BETWEEN ? AND ?`).run(...params, lo, hi).changes;
      return false;
    });
    return deleted;
  }

  /**
   * Takes deleted visits out of a day's roll-up. Distinct visitors cannot be subtracted exactly: the count is
   * capped at the visits left, and the day's row goes when no visit is left.
   */
  subtractFromDay(lane: "link" | "orphan", key: number | string, day: number, total: number, bots: number): void {
    const table = lane === "link" ? "visit_days" : "orphan_visit_days";
    const keyColumn = lane === "link" ? "short_url_id" : "orphan_type";
    const row = `SELECT total, bots FROM ${table} WHERE ${keyColumn} = ? AND day = ?`;
    const before = lane === "link" ? this.#query<{ total: number; bots: number }>(row).get(key, day) : null;
    this.#query(
      `UPDATE ${table} SET total = total - ?1, bots = max(0, bots - ?2), visitors = min(visitors, total - ?1) WHERE ${keyColumn} = ?3 AND day = ?4`,
    ).run(total, bots, key, day);
    this.#query(`DELETE FROM ${table} WHERE ${keyColumn} = ? AND day = ? AND total <= 0`).run(key, day);
    if (before === null) return;
    // What the link's day lost, its domain's day loses (a live link: a deleted one's days left with it).
    const after = this.#query<{ total: number; bots: number }>(row).get(key, day) ?? { total: 0, bots: 0 };
    this.#query(
      `UPDATE domain_visit_days SET total = total - ?1, bots = bots - ?2
       WHERE domain = (SELECT domain FROM short_urls WHERE id = ?3) AND day = ?4`,
    ).run(before.total - after.total, before.bots - after.bots, key, day);
  }

  subtractFromTotals(kind: string, total: number, bots: number): void {
    this.#query("UPDATE visit_totals SET total = max(0, total - ?), bots = max(0, bots - ?) WHERE kind = ?").run(total, bots, kind);
  }

  subtractFromLink(shortUrlId: number, total: number, bots: number): void {
    this.#query("UPDATE link_visits SET total = max(0, total - ?), bots = max(0, bots - ?) WHERE short_url_id = ?").run(
      total,
      bots,
      shortUrlId,
    );
  }

  /**
   * Raw rows of the lane newer than `after` (visits that arrived during a deletion), tallied per kind and day.
   */
  #newerByDay(lane: Lane, after: number): Map<string, { kind: string; day: number; total: number; bots: number }> {
    const byDay = new Map<string, { kind: string; day: number; total: number; bots: number }>();
    this.#buckets.eachPart(lane, after + 1, MAX_ID, "asc", (where, params) => {
      const rows = this.#query<{ kind: string; day: number; total: number; bots: number }>(
        `SELECT coalesce(orphan_type, 'non_orphan') AS kind, at / 86400000 AS day, count(*) AS total, sum(potential_bot) AS bots
         FROM visits WHERE ${where} AND id > ? GROUP BY kind, day`,
      ).all(...params, after);
      for (const row of rows) {
        const key = `${row.kind}:${row.day}`;
        const seen = byDay.get(key);
        if (seen === undefined) byDay.set(key, row);
        else {
          seen.total += row.total;
          seen.bots += row.bots;
        }
      }
      return false;
    });
    return byDay;
  }

  /**
   * After a deletion took the link's rows up to `after`: what the roll-ups still hold beyond the visits that arrived
   * since (days purged by retention) leaves the totals; the link's days and counters keep only those newer visits
   * (so counts from before raw rows were kept go too), and its purge counter is reset.
   */
  clearLinkRollups(shortUrlId: number, after: number): void {
    const keep = this.#newerByDay({ kind: "link", id: shortUrlId }, after);
    const days = this.#query<{ day: number; total: number; bots: number; visitors: number }>(
      "SELECT day, total, bots, visitors FROM visit_days WHERE short_url_id = ?",
    ).all(shortUrlId);
    const kept = { total: 0, bots: 0 };
    for (const day of days) {
      const newer = keep.get(`non_orphan:${day.day}`);
      const stay = { total: Math.min(day.total, newer?.total ?? 0), bots: Math.min(day.bots, newer?.bots ?? 0) };
      this.subtractFromDay("link", shortUrlId, day.day, day.total - stay.total, day.bots - stay.bots);
      this.subtractFromTotals("non_orphan", day.total - stay.total, day.bots - stay.bots);
      kept.total += stay.total;
      kept.bots += stay.bots;
    }
    const purged = this.#query<{ count: number }>("SELECT count FROM visits_purged WHERE short_url_id = ?").get(shortUrlId)?.count ?? 0;
    if (purged > 0) this.#query("UPDATE visit_kinds_purged SET count = max(0, count - ?) WHERE kind = 'non_orphan'").run(purged);
    this.#query("DELETE FROM visits_purged WHERE short_url_id = ?").run(shortUrlId);
    this.#query("UPDATE link_visits SET total = ?, bots = ? WHERE short_url_id = ?").run(kept.total, kept.bots, shortUrlId);
  }

  /** After a deletion took the orphan rows up to `after`: the same for every orphan type. */
  clearOrphanRollups(after: number): void {
    const keep = this.#newerByDay({ kind: "orphans" }, after);
    const days = this.#query<{ orphan_type: string; day: number; total: number; bots: number }>(
      "SELECT orphan_type, day, total, bots FROM orphan_visit_days",
    ).all();
    for (const day of days) {
      const newer = keep.get(`${day.orphan_type}:${day.day}`);
      const total = day.total - Math.min(day.total, newer?.total ?? 0);
      const bots = day.bots - Math.min(day.bots, newer?.bots ?? 0);
      this.subtractFromDay("orphan", day.orphan_type, day.day, total, bots);
      this.subtractFromTotals(day.orphan_type, total, bots);
    }
    this.#query("UPDATE visit_kinds_purged SET count = 0 WHERE kind <> 'non_orphan'").run();
  }
}
