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
import { forbidden, type InvalidElement, invalidData, tagNotFound } from "../errors";
import { parseIsoDate } from "../lib/iso-date";
import { relaxedWriteTransaction } from "../storage/database";
import {
  GLOBAL_ORDER_SLACK_MS,
  type Lane,
  type LinkSetFilter,
  type Tally,
  type VisitQueryStore,
  type VisitRecord,
} from "../storage/visit-query-store";
import type { ApiKey } from "./api-keys";
import type { LinkResolver } from "./link-resolver";
import type { Page, ShortUrlService } from "./short-urls";
import type { OrphanType } from "./visit-buffer";
import { dayOf } from "./visit-recorder";

const DAY_MS = 86_400_000;
/** Visits pages go up to 5 000 items: Shlink's web client loads visits 5 000 at a time. */
export const MAX_VISITS_PER_PAGE = 5000;
/**
 * A tag's or domain's visits are read link by link (exact counts and merged index lanes, as for one link) when it
 * has at most this many links; beyond, through the table (see #linkSetTotal).
 */
const SMALL_SET_LINKS = 64;
/** Ids read per index lane at a time when merging several links' visits. */
const MERGE_BATCH = 1000;
/** At most this many rows are deleted per transaction; between batches the event loop runs redirects. */
export const DELETE_BATCH = 5000;
/** Batches are sized to take about this long, so a redirect waits at most about this behind one. */
const DELETE_BATCH_TARGET_MS = 2;
const DELETE_BATCH_MIN = 200;
const ORPHAN_TYPES: readonly OrphanType[] = ["base_url", "invalid_short_url", "regular_404"];

export interface VisitsQuery {
  /** Epoch ms, inclusive. */
  from?: number;
  to?: number;
  excludeBots: boolean;
  page: number;
  /** -1: all (served as pages of MAX_VISITS_PER_PAGE). */
  itemsPerPage: number;
  /** Orphan visits only. */
  type?: OrphanType;
  /** Tag and non-orphan visits: only links of this domain (stored key, '' = default). */
  domain?: string;
}

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

function parseWhole(raw: string | null, field: string, min: number, max: number, problems: InvalidElement[]): number | null {
  if (raw === null || raw === "") return null;
  if (!/^\d+$/.test(raw) || Number(raw) < min || Number(raw) > max) {
    problems.push({ field, reason: `must be a whole number from ${min} to ${max}` });
    return null;
  }
  return Number(raw);
}

/**
 * Shlink's visits query: startDate/endDate (ISO 8601), page, itemsPerPage (absent or -1: all), excludeBots (present
 * and not false/0), and for orphan visits `type`. Bad values are a 400 naming the field.
 */
export function parseVisitsQuery(params: URLSearchParams, options: { orphans?: boolean } = {}): VisitsQuery {
  const problems: InvalidElement[] = [];
  const query: VisitsQuery = { excludeBots: false, page: 1, itemsPerPage: -1 };
  for (const [field, key] of [
    ["startDate", "from"],
    ["endDate", "to"],
  ] as const) {
    const raw = params.get(field);
    if (raw === null || raw === "") continue;
    const ms = parseIsoDate(raw);
    if (ms === null) problems.push({ field, reason: "must be an ISO 8601 date" });
    else query[key] = ms;
  }
  if (query.from !== undefined && query.to !== undefined && query.from > query.to) {
    problems.push({ field: "endDate", reason: "must not be before startDate" });
  }
  query.page = parseWhole(params.get("page"), "page", 1, 1_000_000_000, problems) ?? 1;
  const items = params.get("itemsPerPage");
  if (items !== "-1") query.itemsPerPage = parseWhole(items, "itemsPerPage", 1, MAX_VISITS_PER_PAGE, problems) ?? -1;
  const bots = params.get("excludeBots");
  if (bots !== null) {
    if (["", "true", "1"].includes(bots)) query.excludeBots = true;
    else if (!["false", "0"].includes(bots)) problems.push({ field: "excludeBots", reason: "must be true or false" });
  }
  if (options.orphans) {
    const type = params.get("type");
    if (type !== null && type !== "") {
      if (ORPHAN_TYPES.includes(type as OrphanType)) query.type = type as OrphanType;
      else problems.push({ field: "type", reason: `must be one of ${ORPHAN_TYPES.join(", ")}` });
    }
  }
  if (problems.length > 0) throw invalidData(problems);
  return query;
}

export class VisitQueryService {
  constructor(
    private readonly deps: {
      db: Database;
      store: VisitQueryStore;
      shortUrls: ShortUrlService;
      tagExists: (name: string) => boolean;
      resolver: LinkResolver;
      /** Writes buffered visits (in small transactions), so a deletion also takes the visits served before it. */
      flushPending: () => Promise<unknown>;
      /** Throws (for example 503 on a standby) when writes must be refused. */
      guardWrites?: () => void;
      /** A tag or domain with at most this many links is read link by link (default SMALL_SET_LINKS). */
      smallSetLinks?: number;
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
    const deleted = await this.#deleteLane(lane, (after) => this.deps.store.clearLinkRollups(link.id, after));
    // A cached link counts its visits for maxVisits: reload it with the new count.
    this.deps.resolver.invalidate(this.deps.shortUrls.domainKey(link.domain), link.shortCode);
    return deleted;
  }

  /** Deletes every orphan visit (Shlink's DELETE /visits/orphan). */
  async deleteOrphanVisits(key: ApiKey): Promise<number> {
    this.#assertCanWrite(key);
    return this.#deleteLane({ kind: "orphans" }, (after) => this.deps.store.clearOrphanRollups(after));
  }

  #assertCanWrite(key: ApiKey): void {
    if (key.role === "read-only") throw forbidden("This API key is read-only.");
    this.deps.guardWrites?.();
  }

  /**
   * 1. Flush the buffer, so visits served before the request are deleted too; note the lane's newest id.
   * 2. Delete rows up to that id in batches of about DELETE_BATCH_TARGET_MS each (at most DELETE_BATCH rows), each
   *    taking its visits out of the roll-ups, totals and counters in its own transaction (every committed state is
   *    consistent), yielding to the event loop between batches.
   * 3. Clear what the roll-ups still hold for days whose raw rows were purged (and pre-v3 counts), keeping the
   *    visits that arrived during the deletion.
   */
  async #deleteLane(lane: Lane, clearRollups: (after: number) => void): Promise<number> {
    const { db, store } = this.deps;
    await this.deps.flushPending();
    const upTo = store.last(lane)?.id ?? 0;
    let deleted = 0;
    let size = 1000;
    for (let batch = 0; batch < 100_000_000 / DELETE_BATCH_MIN; batch++) {
      const started = performance.now();
      const n = relaxedWriteTransaction(db, () => this.#deleteBatch(lane, upTo, size));
      deleted += n;
      if (n < size) break;
      // Aim the next batch at the target duration (the disk and the machine's load decide what a row costs).
      const perRow = Math.max(performance.now() - started, 0.01) / n;
      size = Math.max(DELETE_BATCH_MIN, Math.min(DELETE_BATCH, Math.floor(DELETE_BATCH_TARGET_MS / perRow)));
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
    relaxedWriteTransaction(db, () => clearRollups(upTo));
    return deleted;
  }

  #deleteBatch(lane: Lane, upTo: number, size: number): number {
    const { store } = this.deps;
    const rows = store.oldest(lane, upTo, size);
    if (rows.length === 0) return 0;
    store.deleteRange(lane, (rows[0] as { id: number }).id, (rows.at(-1) as { id: number }).id);
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
      if (lane.kind === "link") store.subtractFromDay("link", lane.id, t.day, t.total, t.bots);
      else store.subtractFromDay("orphan", t.kind, t.day, t.total, t.bots);
      const sum = kinds.get(t.kind) ?? { total: 0, bots: 0 };
      kinds.set(t.kind, { total: sum.total + t.total, bots: sum.bots + t.bots });
    }
    for (const [kind, t] of kinds) {
      store.subtractFromTotals(kind, t.total, t.bots);
      if (lane.kind === "link") store.subtractFromLink(lane.id, t.total, t.bots);
    }
    return rows.length;
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
   * raw row's time plus that jitter may be partly purged: they are counted from rows too.
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
    const sums = store.linkSetDaySums(scope, firstFull, lastFull);
    const middle = excludeBots ? sums.total - sums.bots : sums.total;
    const right = to === undefined ? 0 : count((lastFull + 1) * DAY_MS, to);
    return count(from, firstFull * DAY_MS - 1) + middle + right;
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
    const filter: LinkSetFilter = { ...scope, from: query.from, to: query.to, excludeBots: query.excludeBots };
    const total = this.#linkSetTotal(scope, query);
    const { perPage, offset } = pageWindow(query);
    const items = offset < total ? this.deps.store.linkSetPage(filter, perPage, offset) : [];
    return pageOf(items, query, total);
  }
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
