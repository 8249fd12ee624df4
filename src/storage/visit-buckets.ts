/**
 * Where a lane's raw visits are. They are indexed per link within buckets of 2^17 consecutive ids: `visits_link` is
 * on `((id >> 17), short_url_id, id, potential_bot)` (schema 19). The visit flush appends rows to the newest bucket
 * only, so the index pages it writes are that bucket's, sorted by link like the flush itself. An index led by the
 * link spread every flush over a page per visited link across the whole history: a flushed visit cost ~4 µs with an
 * empty table and ~11 µs with 5 000 000 raw visits (bench/RESULTS.md, sixth session). Buckets of 2^20 ids (schema 8)
 * grew to ~4 500 leaf pages, most of which a second's flush to thousands of links wrote again; one of 2^17 holds
 * ~560, and such a flush wrote a third fewer WAL frames in a third less time (bench/RESULTS.md, forty-third
 * session). Reads of one link (or of all orphans, which sit under a NULL link) go bucket by bucket: one index seek
 * each, ~80 for ten million visits (2^16 wrote ~10 % fewer frames, for twice the seeks); finding a lane's oldest or
 * newest row seeks them all in one statement (`edge`).
 */
import type { Database } from "bun:sqlite";
import { type Binding, StatementCache } from "./statement-cache";

export const VISIT_BUCKET_BITS = 17;
const BUCKET_SIZE = 2 ** VISIT_BUCKET_BITS;
/** The bucket of a row, as SQL; it must be written exactly as in visits_link for SQLite to use that index. */
export const BUCKET_SQL = `(id >> ${VISIT_BUCKET_BITS})`;

/**
 * Schema 19: visits_link over buckets of 2^17 ids, where schema 8 made them 2^20. Building it reads every raw row
 * once. Written out, as a migration must stay what it was: BUCKET_SQL has to match it (the lane statements' test).
 * An older binary's reads name the old bucket, which no index has any more.
 */
export const VISIT_BUCKETS_SCHEMA = `
  DROP INDEX visits_link;
  CREATE INDEX visits_link ON visits((id >> 17), short_url_id, id, potential_bot);
`;

/** The bucket of a (positive) visit id. */
export function bucketOf(id: number): number {
  return Math.floor(id / BUCKET_SIZE);
}

export type BucketOrder = "asc" | "desc";

/** The rows one index range holds, in id (= time) order: a link's, every orphan visit's, or one orphan type's. */
export type Lane = { kind: "link"; id: number } | { kind: "orphans" } | { kind: "orphan-type"; type: string };

/**
 * Where a lane's rows are: within one bucket (a link's, all orphans'), or all of visits_orphan (one type's). `lane` is
 * the condition without the bucket's; `where` has the bucket's first, its parameter before `params`, when bucketed.
 */
function laneSql(lane: Lane): { where: string; lane: string; params: Binding[]; bucketed: boolean } {
  const [condition, params, bucketed]: [string, Binding[], boolean] =
    lane.kind === "link"
      ? ["short_url_id = ?", [lane.id], true]
      : lane.kind === "orphans"
        ? ["short_url_id IS NULL", [], true]
        : ["orphan_type = ?", [lane.type], false];
  return { where: bucketed ? `${BUCKET_SQL} = ? AND ${condition}` : condition, lane: condition, params, bucketed };
}

/**
 * A lane's first row in [lo, hi] in one direction (its id and time), over the buckets from the first given to the
 * second, in one statement: SQLite counts the buckets off and seeks each (~1 µs a bucket), where a statement run from
 * here for each bucket cost ~6 µs. Its own setup costs ~12 µs, so `edge` reads the first bucket on its own (a busy
 * lane's edge is there). The innermost subquery is named twice and SQLite runs it twice for the bucket that holds the
 * edge: one seek more.
 */
function edgeSql(laneWhere: string, order: BucketOrder): string {
  const [step, stop, dir] = order === "asc" ? ["v + 1", "v < ?", ""] : ["v - 1", "v > ?", " DESC"];
  return `SELECT id, at FROM visits WHERE id = (
    WITH RECURSIVE b(v) AS (SELECT ? UNION ALL SELECT ${step} FROM b WHERE ${stop})
    SELECT id FROM (
      SELECT (SELECT id FROM visits WHERE ${BUCKET_SQL} = b.v AND ${laneWhere} AND id BETWEEN ? AND ? ORDER BY id${dir} LIMIT 1) AS id
      FROM b
    ) WHERE id IS NOT NULL LIMIT 1
  )`;
}

export class VisitBuckets {
  readonly #bounds;
  readonly #statements: StatementCache;

  constructor(db: Database) {
    this.#statements = new StatementCache(db);
    // Two rowid seeks in one statement (min() and max() together would scan).
    this.#bounds = db.query<{ first: number | null; last: number | null }, []>(
      "SELECT (SELECT id FROM visits ORDER BY id LIMIT 1) AS first, (SELECT id FROM visits ORDER BY id DESC LIMIT 1) AS last",
    );
  }

  /** The lane's first row in [lo, hi] in `order` (its oldest for "asc", its newest for "desc"): its id and time, or null. */
  edge(lane: Lane, lo: number, hi: number, order: BucketOrder): { id: number; at: number } | null {
    const sql = laneSql(lane);
    const dir = order === "asc" ? "" : " DESC";
    const one = (where: string, params: Binding[]) =>
      this.#statements
        .get<{ id: number; at: number }>(`SELECT id, at FROM visits WHERE ${where} AND id BETWEEN ? AND ? ORDER BY id${dir} LIMIT 1`)
        .get(...params, lo, hi);
    if (!sql.bucketed) return one(sql.where, sql.params);
    const range = this.clip(lo, hi);
    if (range === null) return null;
    const [first, last] = order === "asc" ? [bucketOf(range.lo), bucketOf(range.hi)] : [bucketOf(range.hi), bucketOf(range.lo)];
    const found = one(sql.where, [first, ...sql.params]);
    if (found !== null || first === last) return found;
    const next = order === "asc" ? first + 1 : first - 1;
    return this.#statements.get<{ id: number; at: number }>(edgeSql(sql.lane, order)).get(next, last, ...sql.params, range.lo, range.hi);
  }

  /** [lo, hi] narrowed to the ids of the table's oldest and newest raw rows; null when no raw row is in it. */
  clip(lo: number, hi: number): { lo: number; hi: number } | null {
    const { first, last } = this.#bounds.get() ?? { first: null, last: null };
    if (first === null || last === null || Math.max(lo, first) > Math.min(hi, last)) return null;
    return { lo: Math.max(lo, first), hi: Math.min(hi, last) };
  }

  /** The buckets that may hold rows with ids in [lo, hi], in `order`: none when no raw row is in that range. */
  between(lo: number, hi: number, order: BucketOrder): number[] {
    const range = this.clip(lo, hi);
    if (range === null) return [];
    const from = bucketOf(range.lo);
    const to = bucketOf(range.hi);
    const buckets: number[] = [];
    for (let b = from; b <= to; b++) buckets.push(b);
    return order === "asc" ? buckets : buckets.reverse();
  }

  /**
   * Calls `read` with the lane's condition and its parameters for each part of the lane that may hold ids in
   * [lo, hi], in `order` (a bucket each, or the whole lane at once for an orphan type), until `read` returns true.
   * `more` tells `read` whether another part follows.
   */
  eachPart(
    lane: Lane,
    lo: number,
    hi: number,
    order: BucketOrder,
    read: (where: string, params: Binding[], more: boolean) => boolean,
  ): void {
    const { where, params, bucketed } = laneSql(lane);
    if (!bucketed) {
      read(where, params, false);
      return;
    }
    const buckets = this.between(lo, hi, order);
    for (let i = 0; i < buckets.length; i++) if (read(where, [buckets[i] as number, ...params], i < buckets.length - 1)) return;
  }
}
