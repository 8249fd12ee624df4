/**
 * All SQL that reads visits for the API and the CLI (deleting them is visit-deletion-store.ts). Reads of one lane
 * (a link's rows, all orphan rows, or one orphan type's) are index-only on visits_link (bucket by bucket, see
 * visit-buckets.ts) / visits_orphan, so seeking page 1 000 costs an index walk, never a table scan or a sort.
 */
import type { Database, Statement } from "bun:sqlite";
import { type Binding, StatementCache } from "./statement-cache";
import { BUCKET_SQL, type BucketOrder, bucketOf, type Lane, VisitBuckets } from "./visit-buckets";
import type { VisitRow } from "./visit-store";

export type { Lane } from "./visit-buckets";

/** A raw visit row as stored (see VisitStore), with its id. */
export type VisitRecord = VisitRow & { id: number };

export interface Tally {
  total: number;
  bots: number;
}

/** Visits of several links (a tag's, a domain's, every link's), read through their links; date bounds in ms. */
export interface LinkSetFilter {
  /** The links themselves, instead of a tag or a domain (see linkSetPageByBuckets). */
  ids?: readonly number[];
  tag?: string;
  /** '' for the default domain. */
  domain?: string;
  from?: number;
  to?: number;
  excludeBots: boolean;
}

const COLUMNS =
  "id, short_url_id, orphan_type, at, potential_bot, referer, user_agent, remote_addr, visited_url, redirect_url, " +
  "country_code, country_name, region_name, city_name, latitude, longitude, timezone";

/** Global id order follows time within a flush's jitter; date bounds on several links are widened by this much. */
export const GLOBAL_ORDER_SLACK_MS = 5 * 60_000;

/**
 * Sets of at most this many links are listed by id for the link-led page read (linkSetPageByBuckets);
 * callers list them with linkIds(scope, MAX_LISTED_SET_LINKS + 1), so a longer list means a larger set.
 */
export const MAX_LISTED_SET_LINKS = 50_000;
const MIN_ID = Number.MIN_SAFE_INTEGER;
const MAX_ID = Number.MAX_SAFE_INTEGER;

export class VisitQueryStore {
  readonly #statements: StatementCache;
  readonly #buckets: VisitBuckets;

  constructor(db: Database) {
    this.#statements = new StatementCache(db);
    this.#buckets = new VisitBuckets(db);
  }

  /** Prepared once per distinct SQL text (a handful: lanes × bot filter). */
  #query<T>(sql: string): Statement<T, Binding[]> {
    return this.#statements.get<T>(sql);
  }

  /** Whole-database totals by kind ('non_orphan' or an orphan type). */
  totals(): Map<string, Tally> {
    const rows = this.#query<{ kind: string; total: number; bots: number }>("SELECT kind, total, bots FROM visit_totals").all();
    return new Map(rows.map((r) => [r.kind, { total: r.total, bots: r.bots }]));
  }

  /** The lane's first row with id ≥ `id` (its id and time), or null. */
  firstFrom(lane: Lane, id: number): { id: number; at: number } | null {
    return this.#buckets.edge(lane, id, MAX_ID, "asc");
  }

  /** The lane's newest row (its id and time), or null. */
  last(lane: Lane): { id: number; at: number } | null {
    return this.#buckets.edge(lane, MIN_ID, MAX_ID, "desc");
  }

  /** The id `offset` rows below the top of [lo, hi], newest first; index-only. */
  idAtOffset(lane: Lane, lo: number, hi: number, excludeBots: boolean, offset: number): number | null {
    const bots = excludeBots ? " AND potential_bot = 0" : "";
    let left = offset;
    let found: number | null = null;
    this.#buckets.eachPart(lane, lo, hi, "desc", (where, params, more) => {
      // Buckets below the one holding the offset are not read; those above it are counted, index-only.
      const sql = `SELECT id FROM visits WHERE ${where} AND id BETWEEN ? AND ?${bots} ORDER BY id DESC LIMIT 1 OFFSET ?`;
      found = this.#query<{ id: number }>(sql).get(...params, lo, hi, left)?.id ?? null;
      if (found !== null || !more) return true;
      left -= this.#count(where, params, lo, hi, bots);
      return false;
    });
    return found;
  }

  #count(where: string, params: Binding[], lo: number, hi: number, bots: string): number {
    return this.#query<{ n: number }>(`SELECT count(*) AS n FROM visits WHERE ${where} AND id BETWEEN ? AND ?${bots}`).get(
      ...params,
      lo,
      hi,
    )?.n as number;
  }

  /** Up to `limit` rows of the lane in [lo, hi] (`columns` of them), in `order`. */
  #rows<T>(lane: Lane, lo: number, hi: number, bots: string, order: BucketOrder, limit: number, columns: string): T[] {
    const rows: T[] = [];
    const direction = order === "asc" ? "" : " DESC";
    this.#buckets.eachPart(lane, lo, hi, order, (where, params) => {
      const sql = `SELECT ${columns} FROM visits WHERE ${where} AND id BETWEEN ? AND ?${bots} ORDER BY id${direction} LIMIT ?`;
      for (const row of this.#query<T>(sql).all(...params, lo, hi, limit - rows.length)) rows.push(row);
      return rows.length >= limit;
    });
    return rows;
  }

  /** Up to `limit` rows of [lo, top], newest first (a keyset page once `top` is found). */
  page(lane: Lane, lo: number, top: number, excludeBots: boolean, limit: number): VisitRecord[] {
    return this.#rows<VisitRecord>(lane, lo, top, excludeBots ? " AND potential_bot = 0" : "", "desc", limit, COLUMNS);
  }

  /** Up to `limit` rows of the lane with id > `after`, oldest first (for streaming exports). */
  pageAfter(lane: Lane, after: number, to: number, limit: number): VisitRecord[] {
    return this.#rows<VisitRecord>(lane, after + 1, to, "", "asc", limit, COLUMNS);
  }

  /** Rows of [lo, hi]: only ever called for the partial days at the edges of a range (bounded by a day's visits). */
  countRange(lane: Lane, lo: number, hi: number, excludeBots: boolean): number {
    const bots = excludeBots ? " AND potential_bot = 0" : "";
    let n = 0;
    this.#buckets.eachPart(lane, lo, hi, "asc", (where, params) => {
      n += this.#count(where, params, lo, hi, bots);
      return false;
    });
    return n;
  }

  /** Roll-up sums of the lane for days [fromDay, toDay]. */
  daySums(lane: Lane, fromDay: number, toDay: number): Tally {
    const sql =
      lane.kind === "link"
        ? "SELECT coalesce(sum(total), 0) AS total, coalesce(sum(bots), 0) AS bots FROM visit_days WHERE short_url_id = ? AND day BETWEEN ? AND ?"
        : lane.kind === "orphan-type"
          ? "SELECT coalesce(sum(total), 0) AS total, coalesce(sum(bots), 0) AS bots FROM orphan_visit_days WHERE orphan_type = ? AND day BETWEEN ? AND ?"
          : "SELECT coalesce(sum(total), 0) AS total, coalesce(sum(bots), 0) AS bots FROM orphan_visit_days WHERE day BETWEEN ? AND ?";
    const params: Binding[] = lane.kind === "link" ? [lane.id] : lane.kind === "orphan-type" ? [lane.type] : [];
    return this.#query<Tally>(sql).get(...params, fromDay, toDay) as Tally;
  }

  /** Per-day roll-ups of a link for days [fromDay, toDay], oldest first. */
  linkDays(shortUrlId: number, fromDay: number, toDay: number): { day: number; total: number; bots: number; visitors: number }[] {
    return this.#query<{ day: number; total: number; bots: number; visitors: number }>(
      "SELECT day, total, bots, visitors FROM visit_days WHERE short_url_id = ? AND day BETWEEN ? AND ? ORDER BY day",
    ).all(shortUrlId, fromDay, toDay);
  }

  /** The oldest raw row of the whole table (retention purges oldest first, by id), or null. */
  globalOldest(): { id: number; at: number } | null {
    return this.#query<{ id: number; at: number }>("SELECT id, at FROM visits ORDER BY id LIMIT 1").get();
  }

  /**
   * The first row id whose visit is at or after `at` in the whole table (global id order follows time only within
   * a flush's jitter, so callers widen `at` by GLOBAL_ORDER_SLACK_MS); past the last row when none is.
   */
  #globalIdAtOrAfter(at: number): number {
    const first = this.globalOldest()?.id;
    const last = this.#query<{ id: number }>("SELECT id FROM visits ORDER BY id DESC LIMIT 1").get()?.id;
    if (first === undefined || last === undefined) return 0;
    const probe = this.#query<{ id: number; at: number }>("SELECT id, at FROM visits WHERE id >= ? ORDER BY id LIMIT 1");
    let lo = first;
    let hi = last + 1;
    for (let i = 0; lo < hi && i < 64; i++) {
      const mid = Math.floor((lo + hi) / 2);
      const row = probe.get(mid);
      if (row === null || row.at >= at) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  }

  /** The filter's conditions on `visits v`, and the id range its dates bound the rows to. */
  #linkSetSql(filter: LinkSetFilter): { where: string; params: Binding[]; lo: number; hi: number } {
    const where: string[] = [];
    const params: Binding[] = [];
    let lo = MIN_ID;
    let hi = MAX_ID;
    if (filter.ids !== undefined) {
      where.push("v.short_url_id IN (SELECT value FROM json_each(?))");
      params.push(JSON.stringify(filter.ids));
    } else if (filter.tag !== undefined) {
      where.push(`v.short_url_id IN (SELECT st.short_url_id FROM short_url_tags st JOIN tags t ON t.id = st.tag_id
        JOIN short_urls s ON s.id = st.short_url_id WHERE t.name = ?${filter.domain === undefined ? "" : " AND s.domain = ?"})`);
      params.push(filter.tag);
      if (filter.domain !== undefined) params.push(filter.domain);
    } else {
      // Rows of links that still exist (a deleted link's rows wait for the purge); a newest-first scan of the table.
      where.push(
        `v.short_url_id IS NOT NULL AND EXISTS (SELECT 1 FROM short_urls s WHERE s.id = v.short_url_id${filter.domain === undefined ? "" : " AND s.domain = ?"})`,
      );
      if (filter.domain !== undefined) params.push(filter.domain);
    }
    if (filter.from !== undefined) {
      lo = this.#globalIdAtOrAfter(filter.from - GLOBAL_ORDER_SLACK_MS);
      where.push("v.id >= ? AND v.at >= ?");
      params.push(lo, filter.from);
    }
    if (filter.to !== undefined) {
      hi = this.#globalIdAtOrAfter(filter.to + GLOBAL_ORDER_SLACK_MS + 1) - 1;
      where.push("v.id <= ? AND v.at <= ?");
      params.push(hi, filter.to);
    }
    if (filter.excludeBots) where.push("v.potential_bot = 0");
    return { where: where.join(" AND "), params, lo, hi };
  }

  /** A page of several links' visits, newest first. */
  linkSetPage(filter: LinkSetFilter, limit: number, offset: number): VisitRecord[] {
    return this.linkSetPageFrom(filter, MIN_ID, limit, offset);
  }

  /** linkSetPage among ids ≥ `fromId` only: a scan that passes at most the rows from the range's newest down to it. */
  linkSetPageFrom(filter: LinkSetFilter, fromId: number, limit: number, offset: number): VisitRecord[] {
    const { where, params } = this.#linkSetSql(filter);
    const cols = COLUMNS.split(", ")
      .map((c) => `v.${c}`)
      .join(", ");
    return this.#query<VisitRecord>(`SELECT ${cols} FROM visits v WHERE ${where} AND v.id >= ? ORDER BY v.id DESC LIMIT ? OFFSET ?`).all(
      ...params,
      fromId,
      limit,
      offset,
    );
  }

  /**
   * The ids a newest-first scan for the set's visits in range would pass (the range narrowed to the table's rows),
   * and how many buckets they span; null when no raw row is in range.
   */
  linkSetSpan(filter: LinkSetFilter): { lo: number; hi: number; buckets: number } | null {
    const { lo, hi } = this.#linkSetSql(filter);
    const range = this.#buckets.clip(lo, hi);
    return range === null ? null : { ...range, buckets: bucketOf(range.hi) - bucketOf(range.lo) + 1 };
  }

  /**
   * The same page for a set of links given by id, read down visits_link bucket by bucket, newest first: each
   * bucket costs a seek per link and a sort of the set's rows in it. For sets with few visits in range, which the
   * table scan of linkSetPage would find only after passing every other link's rows (all of them, for old visits).
   */
  linkSetPageByBuckets(filter: LinkSetFilter & { ids: readonly number[] }, limit: number, offset: number): VisitRecord[] {
    const { where, params, lo, hi } = this.#linkSetSql(filter);
    const newest = this.#query<{ id: number }>(`SELECT v.id FROM visits v WHERE ${BUCKET_SQL} = ? AND ${where} ORDER BY v.id DESC LIMIT ?`);
    const wanted = offset + limit;
    const ids: number[] = [];
    for (const bucket of this.#buckets.between(lo, hi, "desc")) {
      for (const row of newest.all(bucket, ...params, wanted - ids.length)) ids.push(row.id);
      if (ids.length >= wanted) break;
    }
    return this.byIds(ids.slice(offset));
  }

  /** How many raw visits of several links match: a row count, so callers bound it to a day or two of visits. */
  linkSetCount(filter: LinkSetFilter): number {
    const { where, params } = this.#linkSetSql(filter);
    return this.#query<{ n: number }>(`SELECT count(*) AS n FROM visits v WHERE ${where}`).get(...params)?.n as number;
  }

  /** Ids of the live links of a tag or a domain, at most `limit` of them (to tell a small set from a large one). */
  linkIds(scope: Pick<LinkSetFilter, "tag" | "domain">, limit: number): number[] {
    const onDomain = scope.domain === undefined ? "" : " AND s.domain = ?";
    const sql =
      scope.tag !== undefined
        ? `SELECT s.id FROM tags t JOIN short_url_tags st ON st.tag_id = t.id JOIN short_urls s ON s.id = st.short_url_id${onDomain}
           WHERE t.name = ? LIMIT ?`
        : `SELECT s.id FROM short_urls s WHERE true${onDomain} LIMIT ?`;
    // Placeholders in order: the domain (in the join), then the tag (in WHERE).
    const params: Binding[] = [];
    if (scope.domain !== undefined) params.push(scope.domain);
    if (scope.tag !== undefined) params.push(scope.tag);
    return this.#query<{ id: number }>(sql)
      .all(...params, limit)
      .map((r) => r.id);
  }

  /** Up to `limit` ids of [lo, hi] in the lane, newest first; index-only. */
  idsBelow(lane: Lane, lo: number, hi: number, excludeBots: boolean, limit: number): number[] {
    return this.#rows<{ id: number }>(lane, lo, hi, excludeBots ? " AND potential_bot = 0" : "", "desc", limit, "id").map((r) => r.id);
  }

  /** The rows of these ids, newest first. */
  byIds(ids: readonly number[]): VisitRecord[] {
    if (ids.length === 0) return [];
    return this.#query<VisitRecord>(`SELECT ${COLUMNS} FROM visits WHERE id IN (SELECT value FROM json_each(?)) ORDER BY id DESC`).all(
      JSON.stringify(ids),
    );
  }

  /**
   * Roll-up sums of several (live) links for days [fromDay, toDay]: a tag's through its links (a seek each), a
   * domain's or every link's from the per-domain day roll-ups (a row per domain and day, see migration 10).
   */
  linkSetDaySums(scope: Pick<LinkSetFilter, "tag" | "domain">, fromDay: number, toDay: number): Tally {
    const sums = "coalesce(sum(d.total), 0) AS total, coalesce(sum(d.bots), 0) AS bots";
    if (scope.tag === undefined) {
      const sql = `SELECT ${sums} FROM domain_visit_days d WHERE ${scope.domain === undefined ? "" : "d.domain = ? AND "}d.day BETWEEN ? AND ?`;
      const params: Binding[] = scope.domain === undefined ? [fromDay, toDay] : [scope.domain, fromDay, toDay];
      return this.#query<Tally>(sql).get(...params) as Tally;
    }
    const onDomain = scope.domain === undefined ? "" : " AND s.domain = ?";
    const params: Binding[] = scope.domain === undefined ? [] : [scope.domain];
    return this.#query<Tally>(
      `SELECT ${sums} FROM tags t JOIN short_url_tags st ON st.tag_id = t.id JOIN short_urls s ON s.id = st.short_url_id${onDomain}
       JOIN visit_days d ON d.short_url_id = st.short_url_id AND d.day BETWEEN ? AND ? WHERE t.name = ?`,
    ).get(...params, fromDay, toDay, scope.tag) as Tally;
  }

  // ---- for deletions (visit-deletion-store.ts) ----

  /** Up to `limit` of the lane's oldest rows with id ≤ `upTo`: id, time, bot flag and orphan type. */
  oldest(lane: Lane, upTo: number, limit: number): { id: number; at: number; potential_bot: number; orphan_type: string | null }[] {
    return this.#rows(lane, MIN_ID, upTo, "", "asc", limit, "id, at, potential_bot, orphan_type");
  }
}
