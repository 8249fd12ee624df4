import { describe, expect, test } from "bun:test";
import type { Visit } from "./visit-buffer";
import { addRecord, decodeRecords, dropRecords, heldRecords, type LinkRecords, recordAt, VisitLog } from "./visit-log";

const LINK = { id: 7, shortCode: "abc1234", domain: "s.test" };

function visit(extra: Partial<Visit> = {}): Visit {
  return {
    link: LINK,
    orphanType: null,
    at: 1_764_800_000_123.5,
    bot: false,
    referer: "https://ref.example/page?q=1",
    userAgent: "Mozilla/5.0 (X11; Linux x86_64)",
    ip: "203.0.113.9",
    visitedUrl: "http://s.test/abc1234?utm=x",
    redirectUrl: "https://example.com/target?utm=x",
    ...extra,
  };
}

describe("VisitLog", () => {
  test("a record reads back as the visit it was made from, with the link it is read for", () => {
    const log = new VisitLog();
    const original = visit({ bot: true });
    expect(log.read(log.append(original), LINK)).toEqual(original);
  });

  test("null, empty and non-ASCII strings, orphan types and times survive the round trip", () => {
    const log = new VisitLog();
    const cases: Visit[] = [
      visit({ referer: null, userAgent: null, ip: null, redirectUrl: null }),
      visit({ referer: "", userAgent: "", ip: "", visitedUrl: "", redirectUrl: "" }),
      visit({ userAgent: "Ünïcödé 😀 agent", visitedUrl: "http://s.test/%E2%9C%93?q=✓", referer: "https://例え.jp/" }),
      visit({ userAgent: "lone \ud800 surrogate" }),
      ...(["base_url", "invalid_short_url", "regular_404"] as const).map((type) =>
        visit({ link: null, orphanType: type, redirectUrl: null, at: 0 }),
      ),
    ];
    const refs = cases.map((v) => log.append(v));
    const back = refs.map((ref, i) => log.read(ref, (cases[i] as Visit).link));
    // A lone surrogate has no UTF-8 form: it comes back as U+FFFD, as anything encoding it to UTF-8 would write it.
    expect(back[3]?.userAgent).toBe("lone \ufffd surrogate");
    expect(back.filter((_, i) => i !== 3)).toEqual(cases.filter((_, i) => i !== 3));
  });

  test("records copied out (for another thread) read back in order, from an arena of their own or not, and stay in the log", () => {
    const log = new VisitLog();
    const cases: Visit[] = [
      visit({ referer: null, userAgent: null, ip: null, redirectUrl: null, bot: true }),
      visit({ userAgent: "Ünïcödé 😀", referer: "" }),
      visit({ userAgent: "x".repeat(512), visitedUrl: `http://s.test/${"é".repeat(2_000)}` }),
      visit({ link: null, orphanType: "invalid_short_url", redirectUrl: null }),
    ];
    const refs = cases.map((v) => log.append(v));
    // In another order than appended: a chunk takes its links' records as they come.
    const order = [2, 0, 3, 1];
    const copied = log.copyOut(order.map((i) => refs[i] as number));
    expect(copied.buffer.byteLength).toBe(copied.byteLength);
    const back = decodeRecords(copied, (i) => (cases[order[i] as number] as Visit).link);
    expect(back).toEqual(order.map((i) => cases[i] as Visit));
    expect(log.isBot(refs[0] as number)).toBe(true);
    expect(log.isBot(refs[1] as number)).toBe(false);
    expect(log.read(refs[1] as number, LINK)).toEqual(cases[1] as Visit);
    expect(decodeRecords(log.copyOut([]), () => null)).toEqual([]);
  });

  test("each field is kept up to Shlink's length for it, cut there and never inside a surrogate pair", () => {
    const log = new VisitLog();
    const long = (prefix: string, length: number) => prefix + "a".repeat(length - prefix.length);
    const kept = visit({
      referer: long("https://ref.example/", 1024),
      userAgent: long("Mozilla/5.0 ", 512),
      ip: long("203.0.113.9 ", 256),
      visitedUrl: long("http://s.test/abc1234?", 2048),
      redirectUrl: long("https://example.com/?", 2048),
    });
    expect(log.read(log.append(kept), LINK)).toEqual(kept);
    const over = {
      referer: `${kept.referer}b`.repeat(8),
      userAgent: `${kept.userAgent}${"é".repeat(15_000)}`,
      ip: `${kept.ip}:1`,
      visitedUrl: `${kept.visitedUrl}&more=1`,
      redirectUrl: `${kept.redirectUrl}&more=1`,
    };
    expect(log.read(log.append(visit(over)), LINK)).toEqual(kept);
    // A pair the limit would split is left out whole; one that ends at the limit stays.
    const split = log.read(log.append(visit({ userAgent: `${"a".repeat(511)}😀 agent` })), LINK).userAgent;
    expect(split).toBe("a".repeat(511));
    const whole = log.read(log.append(visit({ userAgent: `${"a".repeat(510)}😀 agent` })), LINK).userAgent;
    expect(whole).toBe(`${"a".repeat(510)}😀`);
  });

  test("records of the longest fields, in the widest UTF-8, fill regular arenas: a client cannot make the log allocate more", () => {
    const log = new VisitLog();
    const widest = "✓".repeat(20_000); // three bytes each in UTF-8
    const big = visit({ referer: widest, userAgent: widest, ip: widest, visitedUrl: widest, redirectUrl: widest });
    const refs = Array.from({ length: 30 }, () => log.append(big));
    // ~17.7 KB a record, fourteen to a 256 KiB arena: three arenas, and no record larger than one.
    expect(log.bytes).toBe(3 * 256 * 1024);
    expect(log.read(refs[29] as number, LINK).userAgent).toBe("✓".repeat(512));
    expect(log.copyOut([refs[0] as number]).byteLength).toBe(32 + 3 * (1024 + 512 + 256 + 2048 + 2048));
  });

  test("held bytes count the arenas holding records; emptied arenas past the pool's eight are let go", () => {
    const log = new VisitLog();
    const widest = "✓".repeat(20_000);
    const big = visit({ referer: widest, userAgent: widest, ip: widest, visitedUrl: widest, redirectUrl: widest });
    const refs = Array.from({ length: 200 }, () => log.append(big));
    expect(log.heldBytes).toBe(15 * 256 * 1024);
    expect(log.bytes).toBe(log.heldBytes);
    for (const ref of refs) log.release(ref);
    // The current arena starts over; eight emptied ones are pooled, the other six dropped.
    expect([log.heldBytes, log.bytes]).toEqual([256 * 1024, 9 * 256 * 1024]);
  });

  test("released records free their arenas for reuse, and an old reference never reads a new record", () => {
    const log = new VisitLog();
    const long = visit({ userAgent: "a".repeat(512), visitedUrl: `http://s.test/${"b".repeat(2_000)}` });
    // Enough records to fill several arenas.
    const refs = Array.from({ length: 500 }, (_, i) => log.append({ ...long, at: i }));
    const filled = log.bytes;
    expect(filled).toBeGreaterThan(2 * 256 * 1024);
    for (const ref of refs) log.release(ref);
    // As many records again fit in the arenas already allocated (emptied ones are pooled, not dropped).
    const again = Array.from({ length: 500 }, (_, i) => log.append({ ...long, at: 500 + i }));
    expect(log.bytes).toBe(filled);
    expect(new Set([...refs, ...again]).size).toBe(1_000);
    expect(() => log.read(refs[0] as number, LINK)).toThrow(/no arena holds record/);
    expect(log.read(again[499] as number, LINK).at).toBe(999);
  });
});

describe("LinkRecords", () => {
  const all = (r: LinkRecords) => Array.from({ length: heldRecords(r) }, (_, i) => recordAt(r, i));

  test("keep a link's records in order, the first inline, and drop them from the front", () => {
    const records: LinkRecords = { first: -1, more: null };
    expect(heldRecords(records)).toBe(0);
    addRecord(records, 10);
    expect(records).toEqual({ first: 10, more: null });
    for (const ref of [11, 12, 13, 14]) addRecord(records, ref);
    expect(all(records)).toEqual([10, 11, 12, 13, 14]);
    dropRecords(records, 0);
    expect(all(records)).toEqual([10, 11, 12, 13, 14]);
    dropRecords(records, 2);
    expect(all(records)).toEqual([12, 13, 14]);
    dropRecords(records, 2);
    expect(records).toEqual({ first: 14, more: null });
    addRecord(records, 15);
    dropRecords(records, 2);
    expect(records).toEqual({ first: -1, more: null });
  });
});
