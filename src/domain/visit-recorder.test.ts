import { Database } from "bun:sqlite";
import { describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { runMigrations } from "../storage/migrations";
import { plainLinkRow, ShortUrlStore } from "../storage/short-url-store";
import { VisitStore } from "../storage/visit-store";
import { type Visit, VisitBuffer } from "./visit-buffer";
import { anonymizeIp, dayOf, type PrivacySettings, startSaltChain, VisitRecorder } from "./visit-recorder";
import { nextSalt } from "./visitor-salt";

const DAY = 86_400_000;
const T0 = Date.UTC(2026, 11, 1, 10);

function setup(privacy?: PrivacySettings, bufferLimit?: number) {
  const db = new Database(":memory:");
  runMigrations(db, ":memory:");
  const store = new ShortUrlStore(db);
  const visits = new VisitBuffer(db, store, null, bufferLimit);
  visits.addSink(new VisitRecorder(new VisitStore(db), privacy));
  const add = (code: string) => store.insert(plainLinkRow(code)) as number;
  const visit = (id: number | null, at: number, ip: string | null, bot = false, extra: Partial<Visit> = {}): Visit => ({
    link: id === null ? null : { id, shortCode: `c${id}`, domain: "" },
    orphanType: id === null ? "regular_404" : null,
    at,
    bot,
    referer: "https://ref.example/",
    userAgent: "Mozilla/5.0",
    ip,
    visitedUrl: "http://s.test/x",
    redirectUrl: id === null ? null : "https://example.com/",
    ...extra,
  });
  const hit = (v: Visit) => {
    if (v.link === null) visits.captureOrphan(v);
    else {
      visits.record(v.link.id, v.bot);
      visits.capture(v);
    }
  };
  return { db, store, visits, add, visit, hit };
}

describe("VisitRecorder", () => {
  test("writes raw rows and exact per-day roll-ups, with distinct visitors per link and day", () => {
    const { db, visits, add, visit, hit } = setup();
    const a = add("a");
    const b = add("b");
    hit(visit(a, T0, "203.0.113.7"));
    hit(visit(a, T0 + 1000, "203.0.113.7")); // same visitor, same day
    hit(visit(a, T0 + 2000, "203.0.113.8", true));
    hit(visit(a, T0 + 2500, "203.0.113.7")); // back to the first visitor, after another
    hit(visit(b, T0 + 3000, "203.0.113.7"));
    visits.flush();
    hit(visit(a, T0 + 4000, "203.0.113.7")); // seen already today, in an earlier flush
    hit(visit(a, T0 + DAY, "203.0.113.7")); // a new day: a new visitor again
    hit(visit(null, T0 + DAY, "198.51.100.1"));
    expect(visits.depth).toBe(3);
    visits.flush();
    expect(visits.depth).toBe(0);
    const days = db.query("SELECT short_url_id, day, total, bots, visitors FROM visit_days ORDER BY short_url_id, day").all();
    expect(days).toEqual([
      { short_url_id: a, day: dayOf(T0), total: 5, bots: 1, visitors: 2 },
      { short_url_id: a, day: dayOf(T0) + 1, total: 1, bots: 0, visitors: 1 },
      { short_url_id: b, day: dayOf(T0), total: 1, bots: 0, visitors: 1 },
    ]);
    expect(db.query("SELECT orphan_type, total, visitors FROM orphan_visit_days").all()).toEqual([
      { orphan_type: "regular_404", total: 1, visitors: 1 },
    ]);
    expect(db.query("SELECT kind, total, bots FROM visit_totals ORDER BY kind").all()).toEqual([
      { kind: "non_orphan", total: 7, bots: 1 },
      { kind: "regular_404", total: 1, bots: 0 },
    ]);
    expect(db.query("SELECT count(*) AS n FROM visits").get()).toEqual({ n: 8 });
    // Only the current day's salt and hashes are kept, and the day before's (for visits flushed after midnight).
    hit(visit(b, T0 + 2 * DAY, "203.0.113.7"));
    visits.flush();
    expect(db.query("SELECT day FROM visitor_salts ORDER BY day").all()).toEqual([{ day: dayOf(T0) + 1 }, { day: dayOf(T0) + 2 }]);
    expect(db.query("SELECT DISTINCT day FROM visitor_hashes ORDER BY day").all()).toEqual([
      { day: dayOf(T0) + 1 },
      { day: dayOf(T0) + 2 },
    ]);
  });

  test("a visitor counted before a restart is not counted again that day: the stored hash is SHA-256 of salt, address and agent", () => {
    const first = setup();
    const id = first.add("a");
    first.hit(first.visit(id, T0, "203.0.113.7"));
    first.visits.flush();
    // A new recorder over the same database, as after a restart: only the stored hashes know who visited.
    const visits = new VisitBuffer(first.db, first.store);
    visits.addSink(new VisitRecorder(new VisitStore(first.db)));
    for (const ip of ["203.0.113.7", "203.0.113.9"]) {
      const v = first.visit(id, T0 + 1000, ip);
      visits.record(id, false);
      visits.capture(v);
    }
    visits.flush();
    expect(first.db.query("SELECT total, visitors FROM visit_days").get()).toEqual({ total: 3, visitors: 2 });
    const { salt } = first.db.query("SELECT salt FROM visitor_salts WHERE day = ?").get(dayOf(T0)) as { salt: Uint8Array };
    const expected = createHash("sha256").update(salt).update("203.0.113.7\u0000Mozilla/5.0").digest().subarray(0, 16);
    const hashes = (first.db.query("SELECT hash FROM visitor_hashes").all() as { hash: Uint8Array }[]).map((r) =>
      Buffer.from(r.hash).toString("hex"),
    );
    expect(hashes).toContain(expected.toString("hex"));
    expect(hashes).toHaveLength(2);
  });

  test("a day's salt follows from the latest one stored before it; a database that stored none starts from random bytes", () => {
    const { db, visits, add, visit, hit } = setup();
    const a = add("a");
    const salts = () => db.query<{ day: number; salt: Uint8Array }, []>("SELECT day, salt FROM visitor_salts ORDER BY day").all();
    hit(visit(a, T0, "203.0.113.7"));
    visits.flush();
    const [first] = salts();
    // Three days without a visit, then one: its salt is the chain's, three steps on (and the old one is gone).
    hit(visit(a, T0 + 3 * DAY, "203.0.113.7"));
    visits.flush();
    expect(salts()).toEqual([{ day: dayOf(T0) + 3, salt: nextSalt(nextSalt(nextSalt(first?.salt as Uint8Array))) }]);
    // Another database's first salt is its own.
    const other = setup();
    other.hit(other.visit(other.add("a"), T0, "203.0.113.7"));
    other.visits.flush();
    const [otherFirst] = other.db.query<{ salt: Uint8Array }, []>("SELECT salt FROM visitor_salts").all();
    expect(otherFirst?.salt).toHaveLength(16);
    expect(otherFirst?.salt).not.toEqual(first?.salt as Uint8Array);
    db.close();
    other.db.close();
  });

  test("a primary's start stores the day's salt only in a database that holds none; the first visit days later follows it", () => {
    const { db, visits, add, visit, hit } = setup();
    const salts = () => db.query<{ day: number; salt: Uint8Array }, []>("SELECT day, salt FROM visitor_salts ORDER BY day").all();
    const store = new VisitStore(db);
    expect(startSaltChain(store, T0)).toBe(true);
    const [started] = salts();
    expect(started?.day).toBe(dayOf(T0));
    expect(started?.salt).toHaveLength(16);
    // A restart, that day or later, keeps it.
    expect(startSaltChain(store, T0 + 2 * DAY)).toBe(false);
    expect(salts()).toEqual([started as { day: number; salt: Uint8Array }]);
    hit(visit(add("a"), T0 + 2 * DAY, "203.0.113.7"));
    visits.flush();
    expect(salts()).toEqual([{ day: dayOf(T0) + 2, salt: nextSalt(nextSalt(started?.salt as Uint8Array)) }]);
    expect(startSaltChain(store, T0 + 3 * DAY)).toBe(false);
    expect(salts()).toHaveLength(1);
    db.close();
  });

  test("writes every row of a large flush once, in order, located rows among the multi-row inserts", () => {
    const db = new Database(":memory:");
    runMigrations(db, ":memory:");
    const store = new ShortUrlStore(db);
    const visits = new VisitBuffer(db, store);
    const located = { countryCode: "NL", countryName: null, regionName: null, cityName: null, latitude: 1, longitude: 2, timezone: null };
    visits.addSink(new VisitRecorder(new VisitStore(db), undefined, (ip) => (ip === "192.0.2.40" ? located : null)));
    const id = store.insert(plainLinkRow("many")) as number;
    for (let i = 0; i < 75; i++) {
      visits.record(id, false);
      visits.capture({
        link: { id, shortCode: "many", domain: "" },
        orphanType: null,
        at: T0 + i,
        bot: false,
        referer: null,
        userAgent: `agent ${i}`,
        ip: `192.0.2.${i}`,
        visitedUrl: `http://s.test/many?i=${i}`,
        redirectUrl: "https://example.com/",
      });
    }
    visits.flush();
    const rows = db.query("SELECT at, user_agent, visited_url, country_code FROM visits ORDER BY id").all() as {
      at: number;
      user_agent: string;
      visited_url: string;
      country_code: string | null;
    }[];
    expect(rows.map((r) => r.at - T0)).toEqual(Array.from({ length: 75 }, (_, i) => i));
    expect(rows.map((r) => r.user_agent)).toEqual(Array.from({ length: 75 }, (_, i) => `agent ${i}`));
    expect(rows.map((r) => r.visited_url)).toEqual(Array.from({ length: 75 }, (_, i) => `http://s.test/many?i=${i}`));
    expect(rows.filter((r) => r.country_code !== null).map((r) => r.at - T0)).toEqual([40]);
    expect(db.query("SELECT total, visitors FROM visit_days").all()).toEqual([{ total: 75, visitors: 75 }]);
  });

  test("stores the address anonymised by default, and nothing the privacy settings turn off", () => {
    const { db, visits, add, visit, hit } = setup();
    const a = add("a");
    hit(visit(a, T0, "203.0.113.7"));
    visits.flush();
    expect(db.query("SELECT remote_addr, referer, user_agent FROM visits").get()).toEqual({
      remote_addr: "203.0.113.0",
      referer: "https://ref.example/",
      user_agent: "Mozilla/5.0",
    });

    const off = setup({ anonymizeRemoteAddr: true, trackRemoteAddr: false, trackReferrer: false, trackUserAgent: false });
    const b = off.add("b");
    off.hit(off.visit(b, T0, "203.0.113.7"));
    off.visits.flush();
    expect(off.db.query("SELECT remote_addr, referer, user_agent, visited_url FROM visits").get()).toEqual({
      remote_addr: null,
      referer: null,
      user_agent: null,
      visited_url: "http://s.test/x",
    });
    db.close();
  });

  test("a failing flush leaves no raw row, roll-up or total behind, and keeps the visits buffered", () => {
    const { db, visits, add, visit, hit } = setup();
    const a = add("a");
    hit(visit(a, T0, "203.0.113.7"));
    visits.addSink({
      write() {
        throw new Error("disk full");
      },
    });
    expect(() => visits.flush()).toThrow("disk full");
    expect(visits.depth).toBe(1);
    for (const table of ["visits", "visit_days", "visit_totals", "visitor_hashes"]) {
      expect(db.query(`SELECT count(*) AS n FROM ${table}`).get()).toEqual({ n: 0 });
    }
  });

  test("a visitor first seen by a flush that rolled back is counted when the visits are written", () => {
    const { db, visits, add, visit, hit } = setup();
    const a = add("a");
    hit(visit(a, T0, "203.0.113.7"));
    hit(visit(a, T0 + 1, "203.0.113.7"));
    hit(visit(a, T0 + 2, "198.51.100.9"));
    let failures = 2;
    visits.addSink({
      write() {
        if (failures-- > 0) throw new Error("disk full");
      },
    });
    expect(() => visits.flush()).toThrow("disk full");
    expect(() => visits.flush()).toThrow("disk full");
    expect(visits.flush()).toBe(3);
    expect(db.query("SELECT total, visitors FROM visit_days").get()).toEqual({ total: 3, visitors: 2 });
    expect(db.query("SELECT count(*) AS n FROM visitor_hashes").get()).toEqual({ n: 2 });
    hit(visit(a, T0 + 3, "203.0.113.7"));
    visits.flush();
    expect(db.query("SELECT total, visitors FROM visit_days").get()).toEqual({ total: 4, visitors: 2 });
    // After a restart the day's stored salt still recognises them: the hashes were made with the salt that was kept.
    const restarted = new VisitBuffer(db, new ShortUrlStore(db));
    restarted.addSink(new VisitRecorder(new VisitStore(db)));
    restarted.record(a, false);
    restarted.capture(visit(a, T0 + 4, "198.51.100.9"));
    restarted.flush();
    expect(db.query("SELECT total, visitors FROM visit_days").get()).toEqual({ total: 5, visitors: 2 });
    db.close();
  });

  test("past the buffer's limit a visit is only counted on its link, and an orphan visit is dropped", () => {
    const { db, visits, add, visit, hit } = setup(undefined, 3);
    const a = add("a");
    for (let i = 0; i < 5; i++) hit(visit(a, T0 + i, "203.0.113.7", i === 4));
    hit(visit(null, T0, "203.0.113.7"));
    expect([visits.depth, visits.detailsDropped]).toEqual([5, 3]);
    expect(visits.pendingFor(a)).toEqual({ total: 5, bots: 1 });
    expect(visits.flush()).toBe(5);
    expect(db.query("SELECT total, bots FROM link_visits WHERE short_url_id = ?").get(a)).toEqual({ total: 5, bots: 1 });
    expect(db.query("SELECT count(*) AS n FROM visits").get()).toEqual({ n: 3 });
    expect(db.query("SELECT total, bots FROM visit_days").get()).toEqual({ total: 3, bots: 0 });
    expect(db.query("SELECT count(*) AS n FROM orphan_visit_days").get()).toEqual({ n: 0 });
    // Written details make room again.
    hit(visit(a, T0 + 10, "203.0.113.7"));
    hit(visit(null, T0 + 10, "203.0.113.7"));
    expect(visits.flush()).toBe(2);
    expect(visits.detailsDropped).toBe(3);
    expect(db.query("SELECT count(*) AS n FROM visits").get()).toEqual({ n: 5 });
    db.close();
  });
  test("visits with long headers are held up to the limit's bytes, not its count, then only counted", () => {
    // 600 bytes a visit of the limit, and never below 1 MiB: four arenas of 256 KiB here.
    const { db, visits, add, visit, hit } = setup(undefined, 1000);
    const a = add("a");
    const long = (length: number) => `https://x.example/${"l".repeat(length)}`;
    // ~5.7 KB of details each (the URLs cut to 2 048): an arena takes 44 of them, so 1 MiB ~130, not 1 000.
    const big = { referer: long(1024), userAgent: "u".repeat(512), visitedUrl: long(2048), redirectUrl: long(2048) };
    for (let i = 0; i < 1000; i++) hit(visit(a, T0 + i, "203.0.113.7", false, big));
    const kept = 1000 - visits.detailsDropped;
    expect(kept).toBeGreaterThanOrEqual(3 * 44);
    expect(kept).toBeLessThanOrEqual(4 * 44);
    expect(visits.pendingFor(a)).toEqual({ total: 1000, bots: 0 });
    expect(visits.flush()).toBe(1000);
    expect(db.query("SELECT total FROM link_visits WHERE short_url_id = ?").get(a)).toEqual({ total: 1000 });
    expect(db.query("SELECT count(*) AS n FROM visits").get()).toEqual({ n: kept });
    // Written, they make room again: as many typical visits as the count allows.
    for (let i = 0; i < 1000; i++) hit(visit(a, T0 + 2000 + i, "203.0.113.7"));
    expect(visits.detailsDropped).toBe(1000 - kept);
    expect(visits.flush()).toBe(1000);
    expect(db.query("SELECT count(*) AS n FROM visits").get()).toEqual({ n: kept + 1000 });
    db.close();
  });
});

describe("anonymizeIp", () => {
  test("zeroes the host part of IPv4 (/24) and IPv6 (/48) addresses", () => {
    expect(anonymizeIp("203.0.113.77")).toBe("203.0.113.0");
    expect(anonymizeIp("::ffff:203.0.113.77")).toBe("203.0.113.0");
    expect(anonymizeIp("2001:db8:abcd:12:1:2:3:4")).toBe("2001:db8:abcd::");
    expect(anonymizeIp("2001:db8::1")).toBe("2001:db8:0::");
    expect(anonymizeIp("::1")).toBe("0:0:0::");
    expect(anonymizeIp("not-an-ip")).toBeNull();
  });
});
