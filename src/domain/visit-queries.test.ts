import { Database } from "bun:sqlite";
import { describe, expect, spyOn, test } from "bun:test";
import { GroupCommit } from "../storage/group-commit";
import { LinkPasswordStore } from "../storage/link-password-store";
import { runMigrations } from "../storage/migrations";
import { RedirectRuleStore } from "../storage/redirect-rule-store";
import { plainLinkRow, ShortUrlStore } from "../storage/short-url-store";
import { TagStore } from "../storage/tag-store";
import { bucketOf, VISIT_BUCKET_BITS } from "../storage/visit-buckets";
import { VisitDeletionStore } from "../storage/visit-deletion-store";
import { VisitQueryStore } from "../storage/visit-query-store";
import { VisitStore } from "../storage/visit-store";
import type { ApiKey } from "./api-keys";
import { LinkPasswords } from "./link-passwords";
import { LinkResolver } from "./link-resolver";
import { ShortUrlService } from "./short-urls";
import { type OrphanType, type Visit, VisitBuffer } from "./visit-buffer";
import { DELETE_BATCH } from "./visit-deletion";
import { VisitQueryService } from "./visit-queries";
import { VisitRecorder } from "./visit-recorder";
import { parseVisitsQuery, type VisitsQuery } from "./visits-query";

const DAY = 86_400_000;
const T0 = Date.UTC(2026, 10, 1);
const ADMIN: ApiKey = { id: 1, name: "admin", role: "admin" };

/** A deterministic pseudo-random sequence, so a failure reproduces. */
function rng(seed: number) {
  let s = seed;
  return () => {
    s = (s * 1103515245 + 12345) % 2 ** 31;
    return s / 2 ** 31;
  };
}

/** With `spread`, every SPREAD_EVERY visits the flush writes then jumps to the end of the next id bucket. */
const SPREAD_EVERY = 37;
/** A raw row of no link (so in no lane and no listing), whose id moves the next visit's id to another bucket. */
const NO_LINK = 999_999_999;

/**
 * `spread` lays the visits over many id buckets (each flush's rows straddling a boundary), as ten million visits
 * would be, so every read and deletion goes bucket by bucket.
 */
function setup(smallSetLinks?: number, spread = false, largeSet?: { probeRows: number; read?: "walk" | "scan" }) {
  const db = new Database(":memory:", { strict: true });
  runMigrations(db, ":memory:");
  const shortUrlStore = new ShortUrlStore(db);
  const tagStore = new TagStore(db);
  const buffer = new VisitBuffer(db, shortUrlStore);
  buffer.addSink(new VisitRecorder(new VisitStore(db)));
  const redirectRules = new RedirectRuleStore(db);
  const resolver = new LinkResolver(shortUrlStore, buffer, 100, redirectRules);
  const shortUrls = new ShortUrlService({
    writes: new GroupCommit(db),
    shortUrls: shortUrlStore,
    tags: tagStore,
    redirectRules,
    passwords: { store: new LinkPasswordStore(db), hasher: new LinkPasswords() },
    resolver,
    defaultDomain: "s.test",
    shortCodeLength: 7,
    pendingVisits: (id) => buffer.pendingFor(id),
  });
  const service = new VisitQueryService({
    db,
    store: new VisitQueryStore(db),
    deletions: new VisitDeletionStore(db),
    shortUrls,
    tagExists: (name) => tagStore.exists(name),
    resolver,
    flushPending: () => buffer.flushInChunks(200),
    smallSetLinks,
    largeSet,
  });
  const add = (code: string) => shortUrlStore.insert(plainLinkRow(code)) as number;
  let hits = 0;
  const nextBucket = (at: number) => {
    buffer.flush();
    const last = (db.query("SELECT max(id) AS id FROM visits").get() as { id: number | null }).id ?? 0;
    const id = (bucketOf(last) + 1) * 2 ** VISIT_BUCKET_BITS - 2;
    db.run("INSERT INTO visits (id, short_url_id, at, potential_bot) VALUES (?, ?, ?, 0)", [id, NO_LINK, at]);
  };
  /** Records visits through the buffer and flushes them (the real write path), each a day's flush in time order. */
  const hit = (link: { id: number; code: string } | null, at: number, bot: boolean, orphanType: OrphanType = "regular_404") => {
    if (spread && ++hits % SPREAD_EVERY === 0) nextBucket(at);
    const visit: Visit = {
      link: link === null ? null : { id: link.id, shortCode: link.code, domain: "" },
      orphanType: link === null ? orphanType : null,
      at,
      bot,
      referer: null,
      userAgent: "Mozilla/5.0",
      ip: "203.0.113.9",
      visitedUrl: `http://s.test/${link?.code ?? "x"}`,
      redirectUrl: link === null ? null : "https://example.com/",
    };
    if (link === null) buffer.captureOrphan(visit);
    else {
      buffer.record(link.id, bot);
      buffer.capture(visit);
    }
  };
  return { db, service, add, hit, flush: () => buffer.flush(), shortUrlStore };
}

interface Seeded {
  at: number;
  bot: boolean;
}

/** `n` visits of one link over `days` days, in time order, about a third of them bots. */
function seedLink(ctx: ReturnType<typeof setup>, code: string, n: number, days: number, seed: number): Seeded[] {
  const id = ctx.add(code);
  const random = rng(seed);
  const times = Array.from({ length: n }, () => T0 + Math.floor(random() * days * DAY)).sort((a, b) => a - b);
  const seeded = times.map((at) => ({ at, bot: random() < 0.3 }));
  for (const v of seeded) ctx.hit({ id, code }, v.at, v.bot);
  ctx.flush();
  return seeded;
}

const query = (q: Partial<VisitsQuery> = {}): VisitsQuery => ({ excludeBots: false, page: 1, itemsPerPage: -1, ...q });

/** What a page must hold, computed from the seeded list: newest first. */
function expected(seeded: Seeded[], q: VisitsQuery) {
  const matching = seeded
    .filter((v) => (q.from === undefined || v.at >= q.from) && (q.to === undefined || v.at <= q.to) && !(q.excludeBots && v.bot))
    .reverse();
  const per = q.itemsPerPage === -1 ? 5000 : q.itemsPerPage;
  return { total: matching.length, ats: matching.slice((q.page - 1) * per, q.page * per).map((v) => v.at) };
}

const LAYOUTS = [
  ["one id bucket", false],
  ["many id buckets", true],
] as const;

describe.each(LAYOUTS)("VisitQueryService pages of a link, %s", (_layout, spread) => {
  test("match a brute-force filter for date ranges cutting days in the middle, bot exclusion and pages", () => {
    const ctx = setup(undefined, spread);
    const seeded = seedLink(ctx, "abc", 600, 9, 7);
    const { buckets } = ctx.db
      .query(`SELECT count(DISTINCT id >> ${VISIT_BUCKET_BITS}) AS buckets FROM visits WHERE short_url_id IS NOT ?`)
      .get(NO_LINK) as {
      buckets: number;
    };
    expect(buckets).toBe(spread ? Math.ceil(600 / SPREAD_EVERY) : 1);
    const cases: Partial<VisitsQuery>[] = [
      {},
      { excludeBots: true },
      { itemsPerPage: 25, page: 3 },
      { itemsPerPage: 25, page: 24, excludeBots: true },
      { from: T0 + 2.5 * DAY },
      { to: T0 + 6.25 * DAY },
      { from: T0 + 1.2 * DAY, to: T0 + 1.7 * DAY },
      { from: T0 + 1.2 * DAY, to: T0 + 7.9 * DAY, excludeBots: true, itemsPerPage: 40, page: 2 },
      { from: T0 + 3 * DAY, to: T0 + 4 * DAY - 1 },
      { from: T0 + 20 * DAY },
      { itemsPerPage: 100, page: 50 },
    ];
    for (const c of cases) {
      const q = query(c);
      const page = ctx.service.shortUrlVisits("abc", null, q);
      const want = expected(seeded, q);
      expect({ case: c, total: page.total, ats: page.items.map((v) => v.at) }).toEqual({ case: c, ...want });
    }
  });

  test("count only the raw rows left when retention purged the oldest ones (roll-ups keep the totals)", () => {
    const ctx = setup(undefined, spread);
    const seeded = seedLink(ctx, "old", 300, 5, 3);
    const cutoff = T0 + 1.5 * DAY;
    const purged = ctx.db.run("DELETE FROM visits WHERE at < ?", [cutoff]).changes;
    expect(purged).toBeGreaterThan(0);
    const left = seeded.filter((v) => v.at >= cutoff);
    expect(ctx.service.shortUrlVisits("old", null, query()).total).toBe(left.length);
    expect(ctx.service.shortUrlVisits("old", null, query({ excludeBots: true })).total).toBe(left.filter((v) => !v.bot).length);
    const range = query({ from: T0, to: T0 + 3.5 * DAY });
    expect(ctx.service.shortUrlVisits("old", null, range).total).toBe(expected(left, range).total);
  });

  test("throws short-url-not-found for an unknown code", () => {
    const ctx = setup();
    expect(() => ctx.service.shortUrlVisits("nope", null, query())).toThrow('No URL found with short code "nope"');
  });
});

describe.each(LAYOUTS)("VisitQueryService pages of several links, %s", (_layout, spread) => {
  /**
   * Visits of several links in bursts of 5 within a second, one flush per burst, as the server's 1 s flush writes
   * them: link by link within a flush, so global id order follows time only to within the flush.
   */
  function seedMany(ctx: ReturnType<typeof setup>, codes: string[], bursts: number, days: number, seed: number) {
    const ids = codes.map((code) => ({ id: ctx.add(code), code }));
    const random = rng(seed);
    const starts = Array.from({ length: bursts }, () => T0 + Math.floor(random() * days * DAY)).sort((a, b) => a - b);
    const visits: { link: { id: number; code: string }; at: number; bot: boolean }[] = [];
    for (const start of starts) {
      const burst = Array.from({ length: 5 }, () => ({
        link: ids[Math.floor(random() * ids.length)] as { id: number; code: string },
        at: start + Math.floor(random() * 900),
        bot: random() < 0.3,
      })).sort((a, b) => a.at - b.at);
      for (const v of burst) ctx.hit(v.link, v.at, v.bot);
      ctx.flush();
      visits.push(...burst);
    }
    return visits;
  }

  test("a busy large set's page comes from the newest ids; a quiet one whose visits are old is walked down the index, not scanned", () => {
    const ctx = setup(0, spread, { probeRows: 100 });
    const quiet = seedLink(ctx, "quiet", 30, 1, 3);
    const busy = { id: ctx.add("busy"), code: "busy" };
    const later: Seeded[] = [];
    for (let i = 0; i < 1000; i++) later.push({ at: T0 + 2 * DAY + i * 60_000, bot: false });
    for (const v of later) ctx.hit(busy, v.at, v.bot);
    ctx.flush();
    ctx.db.run("INSERT INTO tags (name) VALUES ('q'), ('b')");
    ctx.db.run("INSERT INTO short_url_tags (short_url_id, tag_id) SELECT id, 1 FROM short_urls WHERE short_code = 'quiet'");
    ctx.db.run("INSERT INTO short_url_tags (short_url_id, tag_id) SELECT id, 2 FROM short_urls");
    const scans = spyOn(VisitQueryStore.prototype, "linkSetPage");
    const walks = spyOn(VisitQueryStore.prototype, "linkSetPageByBuckets");
    try {
      const q = query({ itemsPerPage: 10 });
      // Its visits lie below the 1 000 newer ones: a scan would pass them all.
      expect(ctx.service.tagVisits("q", q).items.map((v) => v.at)).toEqual(expected(quiet, q).ats);
      expect([walks.mock.calls.length, scans.mock.calls.length]).toEqual([1, 0]);
      expect(ctx.service.tagVisits("b", q).items.map((v) => v.at)).toEqual(expected([...quiet, ...later], q).ats);
      expect([walks.mock.calls.length, scans.mock.calls.length]).toEqual([1, 0]);
    } finally {
      scans.mockRestore();
      walks.mockRestore();
    }
  });

  // A tag's and a domain's links read link by link (a small set), or as a large set: among the newest ids first, then
  // down the index bucket by bucket or through the table, whichever costs less (each way also forced).
  test.each([
    ["link by link", 64, undefined],
    ["newest ids first, then the cheaper way", 0, { probeRows: 40 }],
    ["bucket by bucket", 0, { probeRows: 0, read: "walk" }],
    ["through the table", 0, { probeRows: 0, read: "scan" }],
  ] as const)(
    "tag, domain and non-orphan totals and pages match a brute-force filter, also after retention (read %s)",
    (_how, smallSetLinks, largeSet) => {
      const ctx = setup(smallSetLinks, spread, largeSet);
      const visits = seedMany(ctx, ["x", "y", "z"], 140, 6, 21);
      ctx.db.run("INSERT INTO tags (name) VALUES ('t')");
      ctx.db.run("INSERT INTO short_url_tags (short_url_id, tag_id) SELECT id, 1 FROM short_urls WHERE short_code IN ('x', 'z')");
      const tagged = visits.filter((v) => v.link.code !== "y");
      const cases: Partial<VisitsQuery>[] = [
        {},
        { excludeBots: true, itemsPerPage: 30, page: 4 },
        { from: T0 + 1.3 * DAY, to: T0 + 4.6 * DAY },
        { from: T0 + 2.2 * DAY, to: T0 + 2.8 * DAY, excludeBots: true },
        { to: T0 + 0.5 * DAY },
        // Cuts late in a day and early in another count the rows in range; cuts early and late (1.3 to 4.6 above)
        // take the day's roll-up less the rows out of range.
        { from: T0 + 1.8 * DAY, to: T0 + 4.2 * DAY },
        { from: T0 + 3.1 * DAY, excludeBots: true },
        { from: T0 + 2.9 * DAY, to: T0 + 3.95 * DAY, excludeBots: true },
      ];
      // Cuts exactly at a visit, so the rows on either side of each cut are told apart to the millisecond.
      const atVisit = (lo: number, hi: number) => (visits.find((v) => v.at > T0 + lo * DAY && v.at < T0 + hi * DAY) as { at: number }).at;
      cases.push(
        { from: atVisit(1.1, 1.45), to: atVisit(4.6, 4.95) },
        { from: atVisit(3.05, 3.4), to: atVisit(3.6, 3.95), excludeBots: true },
      );
      // Rows of one flush are written link by link, so several links' visits come newest first by flush, not by
      // the millisecond: compare counts, and the visits themselves as sets.
      const sorted = (ats: number[]) => [...ats].sort((a, b) => a - b);
      const check = (all: typeof visits, inTag: typeof visits) => {
        for (const c of cases) {
          const q = query(c);
          for (const [name, page, source] of [
            ["non-orphan", ctx.service.nonOrphanVisits(q), all],
            ["domain", ctx.service.domainVisits("", q), all],
            ["tag", ctx.service.tagVisits("t", q), inTag],
          ] as const) {
            const want = expected(source, q);
            expect({ name, c, total: page.total, items: page.items.length }).toEqual({
              name,
              c,
              total: want.total,
              items: want.ats.length,
            });
            if (q.itemsPerPage === -1) expect(sorted(page.items.map((v) => v.at))).toEqual(sorted(want.ats));
            // The page holds exactly the rows SQLite lists for the same filter, newest id first.
            const per = q.itemsPerPage === -1 ? 5000 : q.itemsPerPage;
            const oracle = ctx.db
              .query(
                `SELECT id FROM visits WHERE short_url_id IN (SELECT id FROM short_urls WHERE ?1 = 0 OR short_code <> 'y')
                 AND at BETWEEN ?2 AND ?3 AND (?4 = 0 OR potential_bot = 0) ORDER BY id DESC LIMIT ?5 OFFSET ?6`,
              )
              .all(name === "tag" ? 1 : 0, q.from ?? 0, q.to ?? Number.MAX_SAFE_INTEGER, q.excludeBots ? 1 : 0, per, (q.page - 1) * per)
              .map((r) => (r as { id: number }).id);
            expect({ name, c, ids: page.items.map((v) => v.id) }).toEqual({ name, c, ids: oracle });
          }
        }
      };
      check(visits, tagged);
      const cutoff = T0 + 2.5 * DAY;
      ctx.db.run("DELETE FROM visits WHERE at < ?", [cutoff]);
      check(
        visits.filter((v) => v.at >= cutoff),
        tagged.filter((v) => v.at >= cutoff),
      );
    },
  );
});

describe.each(LAYOUTS)("VisitQueryService deletions, %s", (_layout, spread) => {
  test("delete a link's visits in batches, keeping roll-ups, totals and counters consistent and other links intact", async () => {
    const ctx = setup(undefined, spread);
    seedLink(ctx, "big", DELETE_BATCH * 2 + 17, 4, 11);
    const other = seedLink(ctx, "other", 50, 4, 5);
    // Shlink's "all items" comes in pages of 5 000 here, and says so.
    const all = ctx.service.shortUrlVisits("big", null, query());
    expect([all.items.length, all.itemsPerPage, all.total]).toEqual([5000, 5000, DELETE_BATCH * 2 + 17]);
    expect(ctx.service.shortUrlVisits("big", null, query({ page: 3 })).items).toHaveLength(17);
    const deleted = await ctx.service.deleteShortUrlVisits("big", null, ADMIN);
    expect(deleted).toBe(DELETE_BATCH * 2 + 17);
    const big = ctx.shortUrlStore.find("", "big");
    expect([big?.visits_total, big?.visits_bots]).toEqual([0, 0]);
    expect(ctx.db.query("SELECT count(*) AS n FROM visit_days WHERE short_url_id = ?").get(big?.id ?? 0)).toEqual({ n: 0 });
    expect(ctx.service.shortUrlVisits("big", null, query()).total).toBe(0);
    expect(ctx.service.overview().nonOrphanVisits).toEqual({
      total: other.length,
      bots: other.filter((v) => v.bot).length,
      nonBots: other.filter((v) => !v.bot).length,
    });
    expect(ctx.service.shortUrlVisits("other", null, query()).total).toBe(other.length);
  });

  test("deleting also takes visits still buffered, and counts purged days out of the totals", async () => {
    const ctx = setup();
    seedLink(ctx, "p", 100, 3, 2);
    ctx.db.run("DELETE FROM visits WHERE at < ?", [T0 + DAY]);
    const id = ctx.shortUrlStore.find("", "p")?.id as number;
    ctx.hit({ id, code: "p" }, T0 + 3 * DAY, false);
    const rawLeft = (ctx.db.query("SELECT count(*) AS n FROM visits").get() as { n: number }).n;
    expect(await ctx.service.deleteShortUrlVisits("p", null, ADMIN)).toBe(rawLeft + 1);
    expect(ctx.service.overview().nonOrphanVisits.total).toBe(0);
    expect(ctx.db.query("SELECT count(*) AS n FROM visits").get()).toEqual({ n: 0 });
  });

  test("a read-only key may not delete visits", async () => {
    const ctx = setup();
    seedLink(ctx, "ro", 3, 1, 1);
    await expect(ctx.service.deleteShortUrlVisits("ro", null, { ...ADMIN, role: "read-only" })).rejects.toMatchObject({ status: 403 });
  });

  test("delete the orphan visits of every type, leaving link visits alone", async () => {
    const ctx = setup(undefined, spread);
    const link = seedLink(ctx, "l", 10, 1, 9);
    const types: OrphanType[] = ["base_url", "invalid_short_url", "regular_404"];
    for (let i = 0; i < 30; i++) ctx.hit(null, T0 + i * 1000, i % 4 === 0, types[i % 3]);
    ctx.flush();
    expect(ctx.service.orphanVisits(query({ type: "base_url" })).total).toBe(10);
    expect(ctx.service.orphanVisits(query({ excludeBots: true })).total).toBe(30 - 8);
    expect(await ctx.service.deleteOrphanVisits(ADMIN)).toBe(30);
    expect(ctx.service.overview()).toEqual({
      nonOrphanVisits: { total: link.length, bots: link.filter((v) => v.bot).length, nonBots: link.filter((v) => !v.bot).length },
      orphanVisits: { total: 0, nonBots: 0, bots: 0 },
    });
    expect(ctx.service.orphanVisits(query()).total).toBe(0);
  });
});

describe("parseVisitsQuery", () => {
  test("reads Shlink's parameters", () => {
    const q = parseVisitsQuery(
      new URLSearchParams("startDate=2026-11-01T00:00:00Z&endDate=2026-11-02&page=2&itemsPerPage=5000&excludeBots=true&type=base_url"),
      { orphans: true },
    );
    expect(q).toEqual({
      from: Date.UTC(2026, 10, 1),
      to: Date.UTC(2026, 10, 2),
      page: 2,
      itemsPerPage: 5000,
      excludeBots: true,
      type: "base_url",
    });
  });

  test.each([
    ["startDate=yesterday", "startDate"],
    ["endDate=2026-02-30", "endDate"],
    ["page=0", "page"],
    ["itemsPerPage=5001", "itemsPerPage"],
    ["excludeBots=maybe", "excludeBots"],
    ["type=elsewhere", "type"],
    ["startDate=2026-11-02&endDate=2026-11-01", "endDate"],
  ])("rejects %p naming %p", (raw, field) => {
    expect(() => parseVisitsQuery(new URLSearchParams(raw), { orphans: true })).toThrow(expect.objectContaining({ status: 400 }));
    try {
      parseVisitsQuery(new URLSearchParams(raw), { orphans: true });
    } catch (error) {
      expect((error as { extras: { invalidElements: string[] } }).extras.invalidElements).toEqual([field]);
    }
  });
});
