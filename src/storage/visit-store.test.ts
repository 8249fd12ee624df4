import { Database } from "bun:sqlite";
import { describe, expect, test } from "bun:test";
import { runMigrations } from "./migrations";
import { plainLinkRow, ShortUrlStore } from "./short-url-store";
import { lastVisitId, UNLOCATED_COLUMNS, VISIT_COLUMNS, VisitStore } from "./visit-store";

describe("VisitStore", () => {
  test("calls its `between` hook once 16 rows were written since the last call, raw visits and visitor hashes alike", () => {
    const db = new Database(":memory:", { strict: true });
    runMigrations(db, ":memory:");
    const id = new ShortUrlStore(db).insert(plainLinkRow("code1")) as number;
    let calls = 0;
    const store = new VisitStore(db, () => calls++);
    const row = (i: number) => [
      id,
      null,
      1_700_000_000_000 + i,
      0,
      null,
      "Mozilla/5.0",
      null,
      "http://s.test/code1",
      "https://example.com/",
    ];
    // 100 unlocated rows (three INSERTs of 32: a call after each, then four single ones) and one located row.
    const located = [...row(100), "PT", "Portugal", "Lisbon", "Lisbon", 38.7, -9.1, "Europe/Lisbon"];
    expect(row(0)).toHaveLength(UNLOCATED_COLUMNS);
    expect(located).toHaveLength(VISIT_COLUMNS.length);
    store.insert([...Array.from({ length: 100 }, (_, i) => row(i)), located]);
    expect(calls).toBe(3);
    expect(db.query("SELECT count(*) AS n FROM visits").get()).toEqual({ n: 101 });
    // Five rows since the last call: the eleventh visitor hash makes 16.
    for (let i = 0; i < 10; i++) store.addVisitor(20_000, id, new Uint8Array([i]));
    expect(calls).toBe(3);
    store.addVisitor(20_000, id, new Uint8Array([10]));
    expect(calls).toBe(4);
    db.close();
  });

  test("lastVisitId: the highest raw visit id, 0 with none, and 0 for a database from before raw visits", () => {
    const db = new Database(":memory:", { strict: true });
    expect(lastVisitId(db)).toBe(0);
    runMigrations(db, ":memory:");
    expect(lastVisitId(db)).toBe(0);
    const id = new ShortUrlStore(db).insert(plainLinkRow("code1")) as number;
    for (const at of [1, 2, 3]) db.run("INSERT INTO visits (short_url_id, at, potential_bot) VALUES (?, ?, 0)", [id, at]);
    expect(lastVisitId(db)).toBe(3);
    db.close();
  });
});
