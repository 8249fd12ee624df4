import { Database } from "bun:sqlite";
import { describe, expect, test } from "bun:test";
import { nextSleepFactor, politeSleep, YIELDING } from "../lib/polite-sleep";
import { runMigrations } from "../storage/migrations";
import { plainLinkRow, ShortUrlStore } from "../storage/short-url-store";
import { VisitPurgeStore } from "../storage/visit-purge-store";
import { VisitStore } from "../storage/visit-store";
import type { LinkEvent } from "./link-events";
import { type OrphanType, VisitBuffer } from "./visit-buffer";
import { VisitRecorder } from "./visit-recorder";
import { passIntervalMs, type RetentionHooks, type RetentionOptions, VisitRetention } from "./visit-retention";

const DAY = 86_400_000;
const deleted = (id: number) => ({ type: "link.deleted", shortUrl: { id }, at: T0 }) as unknown as LinkEvent;
const T0 = Date.UTC(2026, 8, 1, 12);

function setup() {
  const db = new Database(":memory:");
  runMigrations(db, ":memory:");
  const links = new ShortUrlStore(db);
  const buffer = new VisitBuffer(db, links);
  buffer.addSink(new VisitRecorder(new VisitStore(db)));
  const add = (code: string) => links.insert(plainLinkRow(code)) as number;
  /** `count` visits to link `id` (or orphans of `orphan`) at `at`, written by one flush as the server does. */
  const visit = (id: number | null, at: number, count = 1, bot = false, orphan: OrphanType = "regular_404") => {
    for (let i = 0; i < count; i++) {
      const v = {
        link: id === null ? null : { id, shortCode: `c${id}`, domain: "" },
        orphanType: id === null ? orphan : null,
        at,
        bot,
        referer: null,
        userAgent: "Mozilla/5.0",
        ip: `203.0.113.${i % 250}`,
        visitedUrl: "http://s.test/x",
        redirectUrl: id === null ? null : "https://example.com/",
      };
      if (id === null) buffer.captureOrphan(v);
      else {
        buffer.record(id, bot);
        buffer.capture(v);
      }
    }
    buffer.flush();
  };
  const one = <T>(sql: string, ...params: (string | number)[]) => db.query(sql).get(...params) as T;
  const n = (sql: string, ...params: (string | number)[]) => (one<{ n: number | null }>(sql, ...params)?.n ?? 0) as number;
  const state = (id: number) => ({
    raw: n("SELECT count(*) AS n FROM visits WHERE short_url_id = ?", id),
    counter: n("SELECT total AS n FROM link_visits WHERE short_url_id = ?", id),
    days: n("SELECT sum(total) AS n FROM visit_days WHERE short_url_id = ?", id),
    purged: n("SELECT count AS n FROM visits_purged WHERE short_url_id = ?", id),
  });
  const kind = (k: string) => ({
    raw:
      k === "non_orphan"
        ? n("SELECT count(*) AS n FROM visits WHERE short_url_id IS NOT NULL")
        : n("SELECT count(*) AS n FROM visits WHERE orphan_type = ?", k),
    total: n("SELECT total AS n FROM visit_totals WHERE kind = ?", k),
    bots: n("SELECT bots AS n FROM visit_totals WHERE kind = ?", k),
    purged: n("SELECT count AS n FROM visit_kinds_purged WHERE kind = ?", k),
  });
  let clock = T0;
  const batches: number[] = [];
  const hooks: RetentionHooks = { purged: (_reason, rows) => batches.push(rows) };
  const retention = (options: Partial<RetentionOptions> = {}) =>
    new VisitRetention(
      new VisitPurgeStore(db),
      { retentionMs: 90 * DAY, batchRows: 50, now: () => clock, pause: async () => {}, ...options },
      hooks,
    );
  return { db, links, add, visit, state, kind, n, retention, batches, setClock: (t: number) => (clock = t) };
}

describe("VisitRetention", () => {
  test("deletes raw rows past the retention period in bounded batches; counters, days and totals stay whole", async () => {
    const t = setup();
    const a = t.add("a");
    const b = t.add("b");
    t.visit(a, T0 - 100 * DAY, 120);
    t.visit(b, T0 - 95 * DAY, 30, true);
    t.visit(a, T0 - 10 * DAY, 7);
    t.visit(b, T0 - DAY, 5);
    const before = { a: t.state(a), b: t.state(b), all: t.kind("non_orphan") };

    expect(await t.retention().runPass()).toBe(150);

    expect(t.batches.every((rows) => rows <= 50)).toBe(true);
    expect(t.batches.reduce((x, y) => x + y, 0)).toBe(150);
    expect(t.state(a)).toEqual({ raw: 7, counter: 127, days: 127, purged: 120 });
    expect(t.state(b)).toEqual({ raw: 5, counter: 35, days: 35, purged: 30 });
    expect(t.kind("non_orphan")).toEqual({ raw: 12, total: before.all.total, bots: 30, purged: 150 });
    // What the visits API relies on: raw rows left = totals less purged, per link and per kind.
    for (const s of [t.state(a), t.state(b)]) expect(s.raw).toBe(s.counter - s.purged);
    expect(before.a.counter).toBe(127);
  });

  test("gives a checkpoint its turn after every settleEveryMs of transactions, and writes nothing until it returns", async () => {
    const t = setup();
    const a = t.add("a");
    t.visit(a, T0 - 100 * DAY, 120);
    const raw = () => t.n("SELECT count(*) AS n FROM visits");
    const seen: number[] = [];
    const settle = async () => {
      const at = raw();
      await Bun.sleep(1);
      expect(raw()).toBe(at);
      seen.push(at);
    };
    // Ten rows a transaction, and a turn after each (settleEveryMs 0): the rows left drop by ten between turns.
    expect(await t.retention({ batchRows: 10, batchTargetMs: 1_000, settle, settleEveryMs: 0 }).runPass()).toBe(120);
    expect(seen).toEqual([110, 100, 90, 80, 70, 60, 50, 40, 30, 20, 10, 0]);
    // A turn only after that much work: none in a pass shorter than a minute of transactions.
    const quiet = setup();
    quiet.visit(quiet.add("b"), T0 - 100 * DAY, 40);
    let turns = 0;
    const settleCounted = async () => {
      turns++;
    };
    expect(await quiet.retention({ batchRows: 10, settle: settleCounted, settleEveryMs: 60_000 }).runPass()).toBe(40);
    expect(turns).toBe(0);
  });

  test("sizes each transaction to the target duration, within the row cap", async () => {
    const quick = setup();
    const a = quick.add("a");
    quick.visit(a, T0 - 100 * DAY, 700);
    await quick.retention({ batchRows: 2_000, batchTargetMs: 0.000_001 }).runPass();
    expect(quick.batches[0]).toBe(100);
    expect(quick.batches.slice(1).every((rows) => rows === 20)).toBe(true);
    const roomy = setup();
    const b = roomy.add("b");
    roomy.visit(b, T0 - 100 * DAY, 5_000);
    await roomy.retention({ batchRows: 2_000, batchTargetMs: 1_000_000 }).runPass();
    expect(roomy.batches).toEqual([100, 2_000, 2_000, 900]);
  });

  test("by default it sleeps between transactions, so the event loop serves I/O meanwhile", async () => {
    const t = setup();
    const a = t.add("a");
    t.visit(a, T0 - 100 * DAY, 300);
    let ticks = 0;
    const ticker = setInterval(() => ticks++, 0);
    await new VisitRetention(new VisitPurgeStore(t.db), { retentionMs: 90 * DAY, batchRows: 20, now: () => T0 }).runPass();
    clearInterval(ticker);
    expect(t.state(a).raw).toBe(0);
    expect(ticks).toBeGreaterThanOrEqual(10);
  });

  test("a row exactly at the cutoff stays; one a millisecond older goes", async () => {
    const t = setup();
    const a = t.add("a");
    t.visit(a, T0 - 90 * DAY - 1);
    t.visit(a, T0 - 90 * DAY);
    expect(await t.retention().runPass()).toBe(1);
    expect(t.state(a).raw).toBe(1);
  });

  test("purges by id order and stops at the first row inside the period, even if older rows follow it", async () => {
    const t = setup();
    const a = t.add("a");
    t.visit(a, T0 - 100 * DAY, 3);
    t.visit(a, T0 - DAY, 2);
    t.visit(a, T0 - 100 * DAY, 4); // written out of time order (a clock step): left for a later pass
    expect(await t.retention().runPass()).toBe(3);
    expect(t.state(a).raw).toBe(6);
  });

  test("later passes delete what has aged since, and the clock decides", async () => {
    const t = setup();
    const a = t.add("a");
    t.visit(a, T0 - 50 * DAY, 10);
    const job = t.retention();
    expect(await job.runPass()).toBe(0);
    t.setClock(T0 + 41 * DAY);
    expect(await job.runPass()).toBe(10);
    expect(t.state(a)).toMatchObject({ raw: 0, counter: 10, days: 10, purged: 10 });
  });

  test("old orphan visits are purged the same way and counted per orphan type", async () => {
    const t = setup();
    t.visit(null, T0 - 100 * DAY, 60, false, "regular_404");
    t.visit(null, T0 - 100 * DAY, 5, true, "base_url");
    t.visit(null, T0 - DAY, 2, false, "regular_404");
    expect(await t.retention().runPass()).toBe(65);
    expect(t.kind("regular_404")).toEqual({ raw: 2, total: 62, bots: 0, purged: 60 });
    expect(t.kind("base_url")).toEqual({ raw: 0, total: 5, bots: 5, purged: 5 });
    expect(t.n("SELECT sum(total) AS n FROM orphan_visit_days")).toBe(67);
  });

  test("with retention off, raw rows are kept however old", async () => {
    const t = setup();
    const a = t.add("a");
    t.visit(a, T0 - 10_000 * DAY, 3);
    expect(await t.retention({ retentionMs: null }).runPass()).toBe(0);
    expect(t.state(a).raw).toBe(3);
  });

  test("a deleted link's raw rows and roll-ups go, and its visits leave the totals; other links are untouched", async () => {
    const t = setup();
    const keep = t.add("keep");
    const gone = t.add("gone");
    t.visit(gone, T0 - 100 * DAY, 40, true);
    t.visit(gone, T0 - 2 * DAY, 70);
    t.visit(keep, T0 - DAY, 9);
    const job = t.retention();
    await job.runPass(); // the 40 old rows are purged by retention first
    expect(t.state(gone)).toMatchObject({ raw: 70, purged: 40 });
    t.links.delete(gone);
    job.afterCommit(deleted(gone));
    t.visit(gone, T0, 3); // visits buffered before the delete, flushed after it

    expect(await job.runPass()).toBe(73);

    expect(t.state(gone)).toEqual({ raw: 0, counter: 0, days: 0, purged: 0 });
    expect(t.state(keep)).toEqual({ raw: 9, counter: 9, days: 9, purged: 0 });
    expect(t.kind("non_orphan")).toEqual({ raw: 9, total: 9, bots: 0, purged: 0 });
    expect(t.batches.every((rows) => rows <= 50)).toBe(true);
  });

  test("looks at a deleted link again at the next pass, for visits still buffered when it was purged", async () => {
    const t = setup();
    const gone = t.add("gone");
    t.visit(gone, T0 - DAY, 5);
    const job = t.retention();
    await job.runPass();
    t.links.delete(gone);
    job.afterCommit(deleted(gone));
    expect(await job.runPass()).toBe(5);
    t.visit(gone, T0, 2);
    expect(await job.runPass()).toBe(2);
    t.visit(gone, T0, 1);
    expect(await job.runPass()).toBe(0); // twice is enough: the buffer is flushed within a second
    expect(t.kind("non_orphan")).toEqual({ raw: 1, total: 1, bots: 0, purged: 0 });
  });

  test("deletions it was not told of (before a restart) are found by the walk at the first pass and then hourly", async () => {
    const t = setup();
    const a = t.add("a");
    const b = t.add("b");
    t.visit(a, T0 - DAY, 3);
    t.visit(b, T0 - DAY, 4);
    t.links.delete(a);
    const job = t.retention();
    expect(await job.runPass()).toBe(3);
    t.links.delete(b);
    expect(await job.runPass()).toBe(0);
    t.setClock(T0 + 3_600_000);
    expect(await job.runPass()).toBe(4);
  });

  test("sums the previous day's per-domain roll-ups again at the first pass and once a day after", async () => {
    const t = setup();
    const a = t.add("a");
    const today = Math.floor(T0 / DAY);
    const domainDay = (day: number) => t.n("SELECT sum(total) AS n FROM domain_visit_days WHERE day = ?", day);
    const resummed: number[] = [];
    const job = new VisitRetention(
      new VisitPurgeStore(t.db),
      { retentionMs: 90 * DAY, now: () => T0 + (resummed.length > 0 ? DAY : 0), pause: async () => {} },
      { resummed: (day) => resummed.push(day) },
    );
    t.visit(a, T0 - DAY, 3);
    // The older binary of the other colour flushes 4 more visits of yesterday and 5 of today into visit_days only.
    new VisitStore(t.db).addToDay(a, today - 1, 4, 0, 1);
    new VisitStore(t.db).addToDay(a, today, 5, 0, 1);
    expect([domainDay(today - 1), domainDay(today)]).toEqual([3, 0]);
    await job.runPass();
    expect(resummed).toEqual([today - 1]);
    expect([domainDay(today - 1), domainDay(today)]).toEqual([7, 0]);
    // The next day's first pass takes in the day that closed; later passes that day re-sum nothing.
    await job.runPass();
    await job.runPass();
    expect(resummed).toEqual([today - 1, today]);
    expect([domainDay(today - 1), domainDay(today)]).toEqual([7, 5]);
  });

  test("finds deleted links among more links than one read covers", async () => {
    const t = setup();
    const ids = Array.from({ length: 30 }, (_, i) => t.add(`l${i}`));
    for (const id of ids) t.visit(id, T0 - DAY, 2);
    for (const id of ids.filter((_, i) => i % 7 === 3)) t.links.delete(id);
    expect(await t.retention({ batchLinks: 4 }).runPass()).toBe(8);
    expect(t.n("SELECT count(DISTINCT short_url_id) AS n FROM visit_days")).toBe(26);
    expect(t.n("SELECT count(*) AS n FROM visits")).toBe(52);
  });

  test("stop() ends a pass between batches and no batch runs after it", async () => {
    const t = setup();
    const a = t.add("a");
    t.visit(a, T0 - 100 * DAY, 500);
    let release = () => {};
    let pauses = 0;
    const job = t.retention({
      pause: () => {
        pauses++;
        return new Promise<void>((resolve) => {
          release = resolve;
        });
      },
    });
    const pass = job.runPass();
    // The first batch's write settles on a later turn of the event loop; then the job pauses.
    for (let i = 0; i < 200 && pauses === 0; i++) await Bun.sleep(1);
    expect(pauses).toBe(1);
    const stopped = job.stop();
    release();
    await stopped;
    expect(await pass).toBe(50);
    expect(t.state(a).raw).toBe(450);
  });

  test("a failing pass reports the error and resolves to 0", async () => {
    const t = setup();
    const errors: unknown[] = [];
    const job = new VisitRetention(
      new VisitPurgeStore(t.db),
      { retentionMs: DAY, now: () => T0, pause: async () => {} },
      { failed: (e) => errors.push(e) },
    );
    t.db.close();
    expect(await job.runPass()).toBe(0);
    expect(errors).toHaveLength(1);
  });

  test("sleeps longer between transactions while its timer fires late (requests keep the loop busy), then recovers", () => {
    let factor = YIELDING.min;
    for (let i = 0; i < 10; i++) factor = nextSleepFactor(factor, 5);
    expect(factor).toBe(64);
    factor = nextSleepFactor(factor, 0.5);
    expect(factor).toBe(32);
    for (let i = 0; i < 10; i++) factor = nextSleepFactor(factor, 0);
    expect(factor).toBe(YIELDING.min);
  });

  test("sleeps at least nine times as long as a transaction worked: the job takes at most a tenth of the loop", async () => {
    const pause = politeSleep();
    const started = performance.now();
    await pause(5);
    expect(performance.now() - started).toBeGreaterThanOrEqual(44);
  });

  test("passes run every retention period, at least every second and at most every minute", () => {
    expect([passIntervalMs(2_000), passIntervalMs(10), passIntervalMs(90 * DAY), passIntervalMs(null)]).toEqual([
      2_000, 1_000, 60_000, 60_000,
    ]);
  });
});
