import { Database } from "bun:sqlite";
import { describe, expect, test } from "bun:test";
import { scratchDatabases } from "../../test/support/scratch-database";
import { RELAXED_LOCK_WAIT_MS } from "../storage/database";
import { runMigrations } from "../storage/migrations";
import { RedirectRuleStore } from "../storage/redirect-rule-store";
import { type NewShortUrl, plainLinkRow, ShortUrlStore } from "../storage/short-url-store";
import { LinkResolver } from "./link-resolver";
import { VisitBuffer } from "./visit-buffer";

function setup(cacheSize = 10) {
  const db = new Database(":memory:");
  runMigrations(db, ":memory:");
  const store = new ShortUrlStore(db);
  const visits = new VisitBuffer(db, store);
  const resolver = new LinkResolver(store, visits, cacheSize, new RedirectRuleStore(db));
  const add = (code: string, extra: Partial<NewShortUrl> = {}) => store.insert(plainLinkRow(code, extra)) as number;
  return { db, store, visits, resolver, add };
}

describe("LinkResolver", () => {
  test("serves a link with maxVisits exactly N times, across flushes and cache evictions", () => {
    const { resolver, visits, store, add } = setup(1);
    const id = add("lim", { max_visits: 5 });
    add("other");
    const kinds: string[] = [];
    for (let i = 0; i < 8; i++) {
      kinds.push(resolver.resolveAndCount("", "lim", false, 1).kind);
      resolver.resolveAndCount("", "other", false, 1); // evicts "lim" from a cache of one
      if (i === 2) visits.flush();
    }
    expect(kinds).toEqual(["redirect", "redirect", "redirect", "redirect", "redirect", "expired", "expired", "expired"]);
    visits.flush();
    expect(store.findById(id)?.visits_total).toBe(5);
  });

  test("keeps counters in link_visits: none for a link never visited, and a deleted link's go with it", () => {
    const { db, resolver, visits, store, add } = setup();
    const seen = add("seen");
    const unseen = add("unseen");
    resolver.resolveAndCount("", "seen", true, 1);
    resolver.resolveAndCount("", "seen", false, 1);
    visits.flush();
    const counters = () => db.query("SELECT short_url_id AS id, total, bots FROM link_visits ORDER BY id").all();
    expect(counters()).toEqual([{ id: seen, total: 2, bots: 1 }]);
    expect([store.findById(unseen)?.visits_total, store.findById(unseen)?.visits_bots]).toEqual([0, 0]);
    store.delete(seen);
    expect(counters()).toEqual([]);
  });

  test("refuses visits outside validSince..validUntil without counting them", () => {
    const { resolver, visits, add } = setup();
    add("window", { valid_since: 100, valid_until: 200 });
    expect(resolver.resolveAndCount("", "window", false, 99).kind).toBe("expired");
    expect(resolver.resolveAndCount("", "window", false, 150).kind).toBe("redirect");
    expect(resolver.resolveAndCount("", "window", false, 201).kind).toBe("expired");
    expect(visits.depth).toBe(1);
  });

  test("a cached link gives back every term its row sets, and a plain link the defaults and its domain", () => {
    const { db, resolver, add } = setup();
    add("plain");
    const onDomain = add("plain", { domain: "s.example" });
    const id = add("full", { domain: "s.example", redirect_status: 308, forward_query: 0, valid_since: 5, valid_until: 9, max_visits: 3 });
    new RedirectRuleStore(db).replace(id, [
      { long_url: "https://example.com/es", conditions: '[{"type":"language","matchKey":null,"matchValue":"es"}]' },
    ]);
    db.query("INSERT INTO link_passwords (short_url_id, hash) VALUES (?, 'h')").run(id);
    const terms = (code: string, domain = "") => {
      const link = resolver.lookup(domain, code);
      const { id, shortCode, longUrl, visits, status, forwardQuery, validSince, validUntil, maxVisits, rules, passwordHash } = link ?? {};
      return {
        id,
        domain: link?.domain,
        shortCode,
        longUrl,
        visits,
        status,
        forwardQuery,
        validSince,
        validUntil,
        maxVisits,
        rules,
        passwordHash,
      };
    };
    for (let round = 0; round < 2; round++) {
      // The first round reads the rows, the second the cache.
      expect(terms("plain")).toEqual({
        ...{ id: 1, domain: "", shortCode: "plain", longUrl: "https://example.com/plain", visits: 0, status: null, forwardQuery: true },
        ...{ validSince: null, validUntil: null, maxVisits: null, rules: null, passwordHash: null },
      });
      expect(terms("plain", "s.example")).toEqual({
        ...{ id: onDomain, domain: "s.example", shortCode: "plain", longUrl: "https://example.com/plain", visits: 0, status: null },
        ...{ forwardQuery: true, validSince: null, validUntil: null, maxVisits: null, rules: null, passwordHash: null },
      });
      expect(terms("full", "s.example")).toEqual({
        ...{ id, domain: "s.example", shortCode: "full", longUrl: "https://example.com/full", visits: 0, status: 308, forwardQuery: false },
        ...{ validSince: 5, validUntil: 9, maxVisits: 3, passwordHash: "h" },
        rules: [{ priority: 1, longUrl: "https://example.com/es", conditions: [{ type: "language", matchKey: null, matchValue: "es" }] }],
      });
    }
    expect(resolver.stats()).toEqual({ size: 3, hits: 3, misses: 3 });
  });

  test("reports not-found for unknown codes and serves a new target after invalidate", () => {
    const { resolver, store, add } = setup();
    const id = add("code");
    expect(resolver.resolveAndCount("", "nope", false, 0).kind).toBe("not-found");
    expect(resolver.lookup("", "code")?.longUrl).toBe("https://example.com/code");
    store.update(id, { long_url: "https://example.com/new" });
    expect(resolver.lookup("", "code")?.longUrl).toBe("https://example.com/code");
    resolver.invalidate("", "code");
    expect(resolver.lookup("", "code")?.longUrl).toBe("https://example.com/new");
  });
});

describe("VisitBuffer", () => {
  test("flushes counts per link in one transaction, bots apart, and empties", () => {
    const { visits, store, add } = setup();
    const a = add("a");
    const b = add("b");
    visits.record(a, false);
    visits.record(a, true);
    visits.record(b, false);
    expect(visits.pendingFor(a)).toEqual({ total: 2, bots: 1 });
    expect(visits.flush()).toBe(3);
    expect(visits.depth).toBe(0);
    expect(visits.pendingFor(a)).toEqual({ total: 0, bots: 0 });
    expect([store.findById(a)?.visits_total, store.findById(a)?.visits_bots, store.findById(b)?.visits_total]).toEqual([2, 1, 1]);
  });

  test("keeps the batch when the flush transaction fails, so nothing is lost", () => {
    const { db, visits, store, add } = setup();
    const a = add("a");
    visits.record(a, false);
    visits.addSink({
      write() {
        throw new Error("disk full");
      },
    });
    expect(() => visits.flush()).toThrow("disk full");
    expect(visits.depth).toBe(1);
    expect(store.findById(a)?.visits_total).toBe(0);
    db.close();
  });
});

describe("untracked visits", () => {
  test("redirect without being counted or using up maxVisits", () => {
    const { resolver, visits, add } = setup();
    const id = add("quiet", { max_visits: 1 });
    for (let i = 0; i < 3; i++) expect(resolver.resolveAndCount("", "quiet", false, 1, false).kind).toBe("redirect");
    expect(visits.pendingFor(id)).toEqual({ total: 0, bots: 0 });
    expect(resolver.resolveAndCount("", "quiet", false, 1).kind).toBe("redirect");
    expect(resolver.resolveAndCount("", "quiet", false, 1).kind).toBe("expired");
  });
});

describe("link ids", () => {
  test("a link created after deleting the newest one never inherits its buffered visits", () => {
    const { resolver, visits, store, add } = setup();
    const first = add("first");
    resolver.resolveAndCount("", "first", false, 1);
    store.delete(first);
    const second = add("second");
    expect(second).not.toBe(first);
    visits.flush();
    expect(store.findById(second)?.visits_total).toBe(0);
  });
});

describe("VisitBuffer in chunks", () => {
  test("writes at most the chunk's links per transaction and keeps pending counts exact in between", async () => {
    const { visits, store, add } = setup();
    const ids = Array.from({ length: 10 }, (_, i) => add(`l${i}`));
    for (const id of ids) for (let n = 0; n < 3; n++) visits.record(id, n === 0);
    expect(visits.flush(4)).toBe(12);
    expect(visits.depth).toBe(18);
    expect(visits.pendingFor(ids[0] as number)).toEqual({ total: 0, bots: 0 });
    expect(visits.pendingFor(ids[9] as number)).toEqual({ total: 3, bots: 1 });
    expect(store.findById(ids[0] as number)?.visits_total).toBe(3);
    expect(store.findById(ids[9] as number)?.visits_total).toBe(0);
    visits.record(ids[0] as number, false);
    expect(await visits.flushInChunks(3)).toBe(19);
    expect(visits.depth).toBe(0);
    expect(ids.map((id) => store.findById(id)?.visits_total)).toEqual([4, 3, 3, 3, 3, 3, 3, 3, 3, 3]);
    expect(ids.map((id) => store.findById(id)?.visits_bots)).toEqual(Array(10).fill(1));
  });

  test("sizes flush chunks to about 2 ms from the time recent ones took per unit, and waits as long as each took", async () => {
    const { db, store, add } = setup();
    let now = 0;
    const visits = new VisitBuffer(db, store, null, Number.POSITIVE_INFINITY, () => now);
    const sizes: number[] = [];
    // Each unit of work costs 0.02 ms of (fake) time: a visit is one, a link in the chunk four more. Two
    // milliseconds hold 100: 96 visits of one link.
    visits.addSink({
      write: (batch) => {
        sizes.push(batch.length);
        now += (batch.length + 4) * 0.02;
      },
    });
    const id = add("paced");
    for (let at = 0; at < 200; at++) {
      visits.record(id, false);
      visits.capture({
        link: { id, shortCode: "paced", domain: "" },
        orphanType: null,
        at,
        bot: false,
        referer: null,
        userAgent: null,
        ip: null,
        visitedUrl: "",
        redirectUrl: "",
      });
    }
    const started = performance.now();
    expect(await visits.flushInChunks(100)).toBe(200);
    const elapsed = performance.now() - started;
    // The first chunk has no estimate yet and takes the maximum; the next ones fit the measured pace.
    expect(sizes).toEqual([100, 96, 4]);
    expect(store.findById(id)?.visits_total).toBe(200);
    // After each chunk the flush waits as long as it took, at least 1 ms: 2.08 ms, 2 ms, then 1 ms.
    expect(elapsed).toBeGreaterThanOrEqual(5);
  });

  test("splits a link with more visits than a chunk holds, with exact counters and every visit written once", async () => {
    const { visits, store, add } = setup();
    const busy = add("busy");
    const quiet = add("quiet");
    const batches: number[][] = [];
    visits.addSink({ write: (batch) => batches.push(batch.map((v) => v.at)) });
    const hit = (id: number, at: number, bot: boolean) => {
      visits.record(id, bot);
      visits.capture({
        link: { id, shortCode: "x", domain: "" },
        orphanType: null,
        at,
        bot,
        referer: null,
        userAgent: null,
        ip: null,
        visitedUrl: "",
        redirectUrl: "",
      });
    };
    for (let at = 0; at < 10; at++) hit(busy, at, at % 3 === 0); // bots at 0, 3, 6, 9
    hit(quiet, 100, false);
    expect(await visits.flushInChunks(4)).toBe(11);
    expect(batches).toEqual([
      [0, 1, 2, 3],
      [4, 5, 6, 7],
      [8, 9, 100],
    ]);
    expect(visits.depth).toBe(0);
    expect([store.findById(busy)?.visits_total, store.findById(busy)?.visits_bots, store.findById(quiet)?.visits_total]).toEqual([
      10, 4, 1,
    ]);
  });
});

describe("VisitBuffer and another process's write lock", () => {
  const databases = scratchDatabases("visit-buffer-lock-");

  /** A buffer over a database file, with `other` (another process's connection) holding the write lock. */
  function locked() {
    const { db, path } = databases.open();
    const store = new ShortUrlStore(db);
    const visits = new VisitBuffer(db, store);
    const other = databases.closeLater(new Database(path));
    const ids = ["a", "b", "c"].map((code) => store.insert(plainLinkRow(code)) as number);
    for (const id of ids) for (let n = 0; n < 4; n++) visits.record(id, n === 0);
    other.exec("BEGIN IMMEDIATE");
    const totals = () => ids.map((id) => store.findById(id)?.visits_total);
    return { visits, other, ids, totals };
  }

  test("a run waits for the lock on timers, the event loop free meanwhile, then writes everything once", async () => {
    const { visits, other, totals } = locked();
    // Released by a timer on this thread: only if the run leaves the event loop free while it waits.
    setTimeout(() => other.exec("ROLLBACK"), 150);
    let ticks = 0;
    const ticker = setInterval(() => ticks++, 5);
    const started = performance.now();
    const written = await visits.flushInChunks(2);
    clearInterval(ticker);
    expect(performance.now() - started).toBeGreaterThanOrEqual(140);
    expect(ticks).toBeGreaterThanOrEqual(10);
    expect(written).toBe(12);
    expect(visits.depth).toBe(0);
    expect(totals()).toEqual([4, 4, 4]);
  });

  test("links another flush wrote while the run waited are not written again", async () => {
    const { visits, other, ids, totals } = locked();
    // Its first chunk meets the lock before flushInChunks returns; the run then waits on a timer.
    const run = visits.flushInChunks(2);
    // As a drain does: the lock goes, and the final flush writes everything before the run's next try.
    other.exec("ROLLBACK");
    expect(visits.flush()).toBe(12);
    visits.record(ids[1] as number, false);
    expect(await run).toBe(1);
    expect(visits.depth).toBe(0);
    expect(totals()).toEqual([4, 5, 4]);
  });

  test("a run still locked out after RELAXED_LOCK_WAIT_MS fails with SQLITE_BUSY, every visit still buffered", async () => {
    const { visits, other, totals } = locked();
    const started = performance.now();
    await expect(visits.flushInChunks(2)).rejects.toMatchObject({ code: "SQLITE_BUSY" });
    expect(performance.now() - started).toBeGreaterThanOrEqual(RELAXED_LOCK_WAIT_MS - 60);
    expect(visits.depth).toBe(12);
    other.exec("ROLLBACK");
    expect(await visits.flushInChunks(2)).toBe(12);
    expect(totals()).toEqual([4, 4, 4]);
  });
});
