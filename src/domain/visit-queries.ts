/**
 * Reading and deleting visits (Shlink's visits API and `shortener visits`). Never sees HTTP.
 *
 * Pages of one link's visits (or the orphan visits) are found without scanning: a date range becomes an id range by
 * binary search (a link's rows are in time order by id), page N's top id is an index-only OFFSET seek, and the page
 * is a keyset read below it. `totalItems` is the number of raw visits that match: roll-ups for whole days, and an
 * index count only for the partial days at the edges of the range (the first day still holding raw rows, and the
 * days of startDate and endDate). Raw rows past the retention period are gone, so they are not counted. Visits of
 * several links (a tag's, a domain's, all) are counted the same way over their links' roll-ups, and paged by OFFSET.
 */
import type { Database } from "bun:sqlite";
import { forbidden, tagNotFound } from "../errors";
import type { VisitDeletionStore } from "../storage/visit-deletion-store";
import {
  GLOBAL_ORDER_SLACK_MS,
  type Lane,
  type LinkSetFilter,
  MAX_LISTED_SET_LINKS,
  type Tally,
  type VisitQueryStore,
  type VisitRecord,
} from "../storage/visit-query-store";
import type { ApiKey } from "./api-keys";
import { type AuditLog, keyActor } from "./audit-log";
import type { LinkResolver } from "./link-resolver";
import type { Page, ShortUrlService } from "./short-urls";
import { deleteLane } from "./visit-deletion";
import { dayOf } from "./visit-recorder";
import { MAX_VISITS_PER_PAGE, ORPHAN_TYPES, type VisitsQuery } from "./visits-query";

const DAY_MS = 86_400_000;
/**
 * A tag's or domain's visits are read link by link (exact counts and merged index lanes, as for one link) when it
 * has at most this many links; beyond, as a large set (see PROBE_ROWS).
 */
const SMALL_SET_LINKS = 64;
/**
 * A larger set's page is looked for first among the newest PROBE_ROWS ids of the range (a bounded scan: a busy set's
 * page is there). Failing that, it is read whichever way costs less at worst: a newest-first scan of the rest of
 * the range (at the density the probe found, or all of it), or a walk down the index bucket by bucket (a seek per
 * link per bucket, then every matching row sorted), for sets of at most MAX_LISTED_SET_LINKS links. Estimated in
 * microseconds from bench/RESULTS.md (eighth session, 3 000 000 visits): a row scanned ~1.2, a seek ~0.7, a
 * matching index row ~0.2. Before, a domain of 4 000 links whose visits were all old scanned 3 000 000 rows on the
 * event loop: 3.6 s (14.7 ms walked).
 */
const PROBE_ROWS = 4096;
const SCAN_ROW_US = 1.2;
const SEEK_US = 0.7;
const INDEX_ROW_US = 0.2;
/** Ids read per index lane at a time when merging several links' visits. */
const MERGE_BATCH = 1000;

export interface VisitsSummary {
  total: number;
  nonBots: number;
  bots: number;
}

export interface VisitsOverview {
  nonOrphanVisits: VisitsSummary;
  orphanVisits: VisitsSummary;
}

const summary = (t: Tally): VisitsSummary => ({ total: t.total, nonBots: t.total - t.bots, bots: t.bots });

export class VisitQueryService {
  constructor(
    private readonly deps: {
      db: Database;
      store: VisitQueryStore;
      deletions: VisitDeletionStore;
      shortUrls: ShortUrlService;
      tagExists: (name: string) => boolean;
      resolver: LinkResolver;
      /** Writes buffered visits (in small transactions), so a deletion also takes the visits served before it. */
      flushPending: () => Promise<unknown>;
      /** Throws (for example 503 on a standby) when writes must be refused. */
      guardWrites?: () => void;
      /** Records who deleted visits, and how many, in the deletion's last transaction. */
      audit?: AuditLog;
      /** A tag or domain with at most this many links is read link by link (default SMALL_SET_LINKS). */
      smallSetLinks?: number;
      /** For tests: the probe's size (PROBE_ROWS), and the way to read the rest instead of the cheaper one. */
      largeSet?: { probeRows: number; read?: "walk" | "scan" };
    },
  ) {}

  /** Whole-database totals (GET /visits): from the totals table, never from rows. */
  overview(): VisitsOverview {
    const totals = this.deps.store.totals();
    const orphans = { total: 0, bots: 0 };
    for (const type of ORPHAN_TYPES) {
      orphans.total += totals.get(type)?.total ?? 0;
      orphans.bots += totals.get(type)?.bots ?? 0;
    }
    return { nonOrphanVisits: summary(totals.get("non_orphan") ?? { total: 0, bots: 0 }), orphanVisits: summary(orphans) };
  }

  /** The link's id; throws short-url-not-found. */
  linkId(shortCode: string, domain: string | null | undefined): number {
    return this.deps.shortUrls.get(shortCode, domain).id;
  }

  shortUrlVisits(shortCode: string, domain: string | null | undefined, query: VisitsQuery): Page<VisitRecord> {
    return this.#lanePage({ kind: "link", id: this.linkId(shortCode, domain) }, query);
  }

  orphanVisits(query: VisitsQuery): Page<VisitRecord> {
    return this.#lanePage(query.type === undefined ? { kind: "orphans" } : { kind: "orphan-type", type: query.type }, query);
  }

  tagVisits(tag: string, query: VisitsQuery): Page<VisitRecord> {
    if (!this.deps.tagExists(tag)) throw tagNotFound(tag);
    return this.#smallSetPage({ tag, domain: query.domain }, query) ?? this.#linkSetPage({ tag, domain: query.domain }, query);
  }

  /** `domain` is a stored key ('' = default); the caller checks that it exists. */
  domainVisits(domain: string, query: VisitsQuery): Page<VisitRecord> {
    return this.#smallSetPage({ domain }, query) ?? this.#linkSetPage({ domain }, query);
  }

  nonOrphanVisits(query: VisitsQuery): Page<VisitRecord> {
    return this.#linkSetPage({ domain: query.domain }, query);
  }

  /** Per-day roll-ups of a link for `shortener visits` (days as epoch days). */
  linkDays(shortUrlId: number, from?: number, to?: number) {
    return this.deps.store.linkDays(
      shortUrlId,
      from === undefined ? Number.MIN_SAFE_INTEGER : dayOf(from),
      to === undefined ? Number.MAX_SAFE_INTEGER : dayOf(to),
    );
  }

  /** Streams a link's raw visits oldest first in batches, for exports; `to` bounds the ids read (a snapshot). */
  *linkVisitsOldestFirst(shortUrlId: number, from?: number, to?: number): Generator<VisitRecord> {
    const lane: Lane = { kind: "link", id: shortUrlId };
    const range = this.#idRange(lane, from, to);
    if (range === null) return;
    let after = range.lo - 1;
    for (let i = 0; i < 1_000_000; i++) {
      const rows = this.deps.store.pageAfter(lane, after, range.hi, 1000);
      yield* rows;
      if (rows.length < 1000) return;
      after = (rows.at(-1) as VisitRecord).id;
    }
  }

  /** Deletes every visit of a link (Shlink's DELETE /short-urls/{code}/visits); returns how many raw visits went. */
  async deleteShortUrlVisits(shortCode: string, domain: string | null | undefined, key: ApiKey): Promise<number> {
    this.#assertCanWrite(key);
    const link = this.deps.shortUrls.get(shortCode, domain);
    const lane: Lane = { kind: "link", id: link.id };
    const { db, store, deletions, flushPending } = this.deps;
    const subject = { domain: this.deps.shortUrls.domainKey(link.domain), shortCode: link.shortCode };
    return deleteLane(db, store, deletions, lane, flushPending, (after, count) => {
      deletions.clearLinkRollups(link.id, after);
      if (count > 0) this.deps.audit?.record(keyActor(key), "short-url.visits-deleted", subject, { deletedVisits: count });
      // A cached link counts its visits for maxVisits: reload it with the new count, here and in another process.
      this.deps.resolver.changed(subject.domain, subject.shortCode);
    });
  }

  /** Deletes every orphan visit (Shlink's DELETE /visits/orphan). */
  async deleteOrphanVisits(key: ApiKey): Promise<number> {
    this.#assertCanWrite(key);
    const { db, store, deletions, flushPending } = this.deps;
    return deleteLane(db, store, deletions, { kind: "orphans" }, flushPending, (after, count) => {
      deletions.clearOrphanRollups(after);
      if (count > 0) this.deps.audit?.record(keyActor(key), "orphan-visits.deleted", "orphan visits", { deletedVisits: count });
    });
  }

  #assertCanWrite(key: ApiKey): void {
    if (key.role === "read-only") throw forbidden("This API key is read-only.");
    this.deps.guardWrites?.();
  }

  /** The first id of the lane whose visit is at or after `at`, within [minId, maxId]; null if none. */
  #firstIdAtOrAfter(lane: Lane, at: number, minId: number, maxId: number): number | null {
    const { store } = this.deps;
    let lo = minId;
    let hi = maxId + 1;
    for (let i = 0; lo < hi && i < 64; i++) {
      const mid = Math.floor((lo + hi) / 2);
      const row = store.firstFrom(lane, mid);
      if (row === null || row.at >= at) hi = mid;
      else lo = mid + 1;
    }
    const found = store.firstFrom(lane, lo);
    return found === null || found.id > maxId ? null : found.id;
  }

  /** The lane's ids for [from, to] (inclusive), with the newest row's time; null when nothing matches. */
  #idRange(lane: Lane, from?: number, to?: number): { lo: number; hi: number; lastAt: number } | null {
    const { store } = this.deps;
    const first = store.firstFrom(lane, Number.MIN_SAFE_INTEGER);
    const last = store.last(lane);
    if (first === null || last === null) return null;
    const lo = from === undefined ? first.id : this.#firstIdAtOrAfter(lane, from, first.id, last.id);
    if (lo === null) return null;
    let hi = last.id;
    if (to !== undefined) {
      const after = this.#firstIdAtOrAfter(lane, to + 1, lo, last.id);
      if (after !== null) hi = after - 1;
    }
    return lo <= hi ? { lo, hi, lastAt: last.at } : null;
  }

  /** Raw visits in [lo, hi]: roll-ups for the whole days inside, index counts for the partial days at the edges. */
  #count(lane: Lane, lo: number, hi: number, to: number | undefined, excludeBots: boolean): number {
    const { store } = this.deps;
    const startAt = (store.firstFrom(lane, lo) as { at: number }).at;
    const startDay = dayOf(startAt);
    const nextDayId = this.#firstIdAtOrAfter(lane, (startDay + 1) * DAY_MS, lo, hi);
    if (nextDayId === null) return store.countRange(lane, lo, hi, excludeBots);
    const left = store.countRange(lane, lo, nextDayId - 1, excludeBots);
    const nonBots = (t: Tally) => (excludeBots ? t.total - t.bots : t.total);
    if (to === undefined) return left + nonBots(store.daySums(lane, startDay + 1, Number.MAX_SAFE_INTEGER));
    const endDay = dayOf(to);
    const endDayId = this.#firstIdAtOrAfter(lane, endDay * DAY_MS, nextDayId, hi);
    const right = endDayId === null ? 0 : store.countRange(lane, endDayId, hi, excludeBots);
    return left + nonBots(store.daySums(lane, startDay + 1, endDay - 1)) + right;
  }

  #lanePage(lane: Lane, query: VisitsQuery): Page<VisitRecord> {
    const range = this.#idRange(lane, query.from, query.to);
    const total = range === null ? 0 : this.#count(lane, range.lo, range.hi, query.to, query.excludeBots);
    const { perPage, offset } = pageWindow(query);
    let items: VisitRecord[] = [];
    if (range !== null && offset < total) {
      const top = this.deps.store.idAtOffset(lane, range.lo, range.hi, query.excludeBots, offset);
      if (top !== null) items = this.deps.store.page(lane, range.lo, top, query.excludeBots, perPage);
    }
    return pageOf(items, query, total);
  }

  /**
   * Raw visits of several links in the query's range, as #count does for one lane: roll-ups for the whole days
   * the range covers, rows counted only for the rest (its partial first and last days). Retention purges the oldest
   * rows of the whole table first, by id; ids follow time only to within a flush, so the days before the oldest
   * raw row's time plus that jitter may be partly purged: they are counted from rows too. A range that starts or
   * ends inside a later day counts that day from whichever side of the cut has fewer of its rows, taking visits as
   * spread evenly over the day: the rows in range, or the day's roll-up less the rows out of it. Counting a row
   * looks its link up (~0.8 µs): half a day of 10 000 000 visits a year is ~11 ms.
   */
  #linkSetTotal(scope: Pick<LinkSetFilter, "tag" | "domain">, query: VisitsQuery): number {
    const { store } = this.deps;
    const oldest = store.globalOldest();
    if (oldest === null) return 0;
    const { from, to, excludeBots } = query;
    const count = (a: number | undefined, b: number | undefined) => store.linkSetCount({ ...scope, from: a, to: b, excludeBots });
    const firstComplete = dayOf(oldest.at + GLOBAL_ORDER_SLACK_MS) + 1;
    const firstFull = Math.max(firstComplete, from === undefined ? firstComplete : Math.ceil(from / DAY_MS));
    const lastFull = to === undefined ? Number.MAX_SAFE_INTEGER : Math.floor((to + 1) / DAY_MS) - 1;
    if (firstFull > lastFull) return count(from, to);
    const days = (a: number, b: number) => {
      const sums = store.linkSetDaySums(scope, a, b);
      return excludeBots ? sums.total - sums.bots : sums.total;
    };
    const leftDay = firstFull - 1;
    const left =
      from !== undefined && leftDay >= firstComplete && from - leftDay * DAY_MS < DAY_MS / 2
        ? days(leftDay, leftDay) - count(leftDay * DAY_MS, from - 1)
        : count(from, firstFull * DAY_MS - 1);
    const rightEnd = (lastFull + 2) * DAY_MS - 1;
    const right =
      to === undefined
        ? 0
        : rightEnd - to < DAY_MS / 2
          ? days(lastFull + 1, lastFull + 1) - count(to + 1, rightEnd)
          : count((lastFull + 1) * DAY_MS, to);
    return left + days(firstFull, lastFull) + right;
  }

  /** A few links' visits, each link's as a lane (exact, index-only), merged newest first; null for a large set. */
  #smallSetPage(scope: Pick<LinkSetFilter, "tag" | "domain">, query: VisitsQuery): Page<VisitRecord> | null {
    const limit = this.deps.smallSetLinks ?? SMALL_SET_LINKS;
    const ids = this.deps.store.linkIds(scope, limit + 1);
    if (ids.length > limit) return null;
    const ranges: { id: number; lo: number; hi: number }[] = [];
    let total = 0;
    for (const id of ids) {
      const lane: Lane = { kind: "link", id };
      const range = this.#idRange(lane, query.from, query.to);
      if (range === null) continue;
      ranges.push({ id, lo: range.lo, hi: range.hi });
      total += this.#count(lane, range.lo, range.hi, query.to, query.excludeBots);
    }
    const { perPage, offset } = pageWindow(query);
    const items = offset < total ? this.deps.store.byIds(this.#mergedIds(ranges, query.excludeBots, perPage, offset)) : [];
    return pageOf(items, query, total);
  }

  /**
   * Ids `offset` to `offset + limit` of several links' lanes merged newest first: each lane is read down its index
   * in batches, so a page costs a walk of `offset + limit` index entries, never a sort of the links' histories.
   */
  #mergedIds(ranges: readonly { id: number; lo: number; hi: number }[], excludeBots: boolean, limit: number, offset: number): number[] {
    const batch = Math.min(MERGE_BATCH, offset + limit);
    const cursors = ranges.map((r) => ({ lane: { kind: "link", id: r.id } as Lane, lo: r.lo, next: r.hi, ids: [] as number[], at: 0 }));
    const head = (c: (typeof cursors)[number]): number | null => {
      if (c.at === c.ids.length) {
        if (c.next < c.lo) return null;
        c.ids = this.deps.store.idsBelow(c.lane, c.lo, c.next, excludeBots, batch);
        c.at = 0;
        c.next = c.ids.length < batch ? c.lo - 1 : (c.ids.at(-1) as number) - 1;
        if (c.ids.length === 0) return null;
      }
      return c.ids[c.at] as number;
    };
    const out: number[] = [];
    const wanted = offset + limit;
    for (let taken = 0, rounds = 0; taken < wanted && rounds < wanted; rounds++) {
      let best: (typeof cursors)[number] | null = null;
      let bestId = -1;
      let second = -1;
      for (const c of cursors) {
        const id = head(c);
        if (id === null) continue;
        if (id > bestId) {
          second = bestId;
          best = c;
          bestId = id;
        } else if (id > second) second = id;
      }
      if (best === null) break;
      // Take the best lane's whole run above every other lane's head at once (one busy link is the common case).
      for (let id: number | null = bestId; id !== null && id > second && taken < wanted; id = head(best)) {
        if (taken >= offset) out.push(id);
        taken++;
        best.at++;
      }
    }
    return out;
  }

  #linkSetPage(scope: Pick<LinkSetFilter, "tag" | "domain">, query: VisitsQuery): Page<VisitRecord> {
    const { store } = this.deps;
    const filter: LinkSetFilter = { ...scope, from: query.from, to: query.to, excludeBots: query.excludeBots };
    const total = this.#linkSetTotal(scope, query);
    const { perPage, offset } = pageWindow(query);
    const span = offset >= total ? null : store.linkSetSpan(filter);
    if (span === null) return pageOf([], query, total);
    const wanted = offset + perPage;
    const probeRows = this.deps.largeSet?.probeRows ?? PROBE_ROWS;
    const probeFrom = Math.max(span.lo, span.hi - probeRows + 1);
    const newest = probeRows > 0 ? store.linkSetPageFrom(filter, probeFrom, wanted, 0) : [];
    if (newest.length >= wanted || (probeRows > 0 && probeFrom === span.lo)) return pageOf(newest.slice(offset), query, total);
    const ids = store.linkIds(scope, MAX_LISTED_SET_LINKS + 1);
    const read =
      this.deps.largeSet?.read ??
      (ids.length <= MAX_LISTED_SET_LINKS ? cheaperRead(span, ids.length, total, newest.length, wanted, probeRows) : "scan");
    const items =
      read === "walk" ? store.linkSetPageByBuckets({ ...filter, ids }, perPage, offset) : store.linkSetPage(filter, perPage, offset);
    return pageOf(items, query, total);
  }
}

/**
 * Which read of a set's page costs less at worst (see PROBE_ROWS), once the newest `probeRows` ids held only
 * `found` of the `wanted` rows.
 */
function cheaperRead(
  span: { lo: number; hi: number; buckets: number },
  links: number,
  matching: number,
  found: number,
  wanted: number,
  probeRows: number,
): "walk" | "scan" {
  const rows = span.hi - span.lo + 1;
  const scanned = found > 0 ? Math.min(rows, (wanted * probeRows) / found) : rows;
  const walk = links * span.buckets * SEEK_US + matching * INDEX_ROW_US;
  return walk < scanned * SCAN_ROW_US ? "walk" : "scan";
}

function pageWindow(query: VisitsQuery): { perPage: number; offset: number } {
  const perPage = query.itemsPerPage === -1 ? MAX_VISITS_PER_PAGE : query.itemsPerPage;
  return { perPage, offset: (query.page - 1) * perPage };
}

/** As Shlink: "all items" reports the total as the page size (at least 1); past 5 000 it pages by 5 000. */
function pageOf(items: VisitRecord[], query: VisitsQuery, total: number): Page<VisitRecord> {
  const all = query.itemsPerPage === -1;
  const itemsPerPage = all ? (total > MAX_VISITS_PER_PAGE ? MAX_VISITS_PER_PAGE : Math.max(1, total)) : query.itemsPerPage;
  return { items, page: query.page, itemsPerPage, total };
}
