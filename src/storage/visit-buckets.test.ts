import { Database } from "bun:sqlite";
import { describe, expect, test } from "bun:test";
import { recordingStatements } from "../../test/support/query-plans";
import { MIGRATIONS, runMigrations } from "./migrations";
import { BUCKET_SQL, bucketOf, VISIT_BUCKET_BITS, VisitBuckets } from "./visit-buckets";
import { VisitDeletionStore } from "./visit-deletion-store";
import { VisitPurgeStore } from "./visit-purge-store";
import { type Lane, VisitQueryStore } from "./visit-query-store";

const BUCKET = 2 ** VISIT_BUCKET_BITS;

interface Row {
  id: number;
  link: number | null;
  orphan: string | null;
  at: number;
  bot: number;
}

/** A deterministic pseudo-random sequence, so a failure reproduces. */
function rng(seed: number) {
  let s = seed;
  return () => {
    s = (s * 1103515245 + 12345) % 2 ** 31;
    return s / 2 ** 31;
  };
}

/**
 * Raw rows with explicit ids in runs around bucket boundaries, spread over five buckets with an empty one between:
 * links 1 and 2, and orphans of two types.
 */
function seeded(): { db: Database; rows: Row[] } {
  const db = new Database(":memory:", { strict: true });
  runMigrations(db, ":memory:");
  const random = rng(11);
  const rows: Row[] = [];
  const starts = [1, BUCKET - 40, 2 * BUCKET - 5, 4 * BUCKET - 30, 5 * BUCKET + 100];
  let at = Date.UTC(2026, 10, 1);
  for (const start of starts) {
    for (let id = start; id < start + 60; id++) {
      at += 1000;
      const r = random();
      const link = r < 0.45 ? 1 : r < 0.8 ? 2 : null;
      const orphan = link === null ? (random() < 0.5 ? "regular_404" : "base_url") : null;
      rows.push({ id, link, orphan, at, bot: random() < 0.3 ? 1 : 0 });
    }
  }
  const insert = db.query("INSERT INTO visits (id, short_url_id, orphan_type, at, potential_bot) VALUES (?, ?, ?, ?, ?)");
  for (const row of rows) insert.run(row.id, row.link, row.orphan, row.at, row.bot);
  return { db, rows };
}

const LANES: Lane[] = [
  { kind: "link", id: 1 },
  { kind: "link", id: 2 },
  { kind: "link", id: 3 },
  { kind: "orphans" },
  { kind: "orphan-type", type: "base_url" },
];

function inLane(lane: Lane, row: Row): boolean {
  if (lane.kind === "link") return row.link === lane.id;
  if (lane.kind === "orphans") return row.link === null;
  return row.orphan === lane.type;
}

describe("VisitBuckets", () => {
  test("lists the buckets of a range, clamped to the ids in the table, in either order", () => {
    const { db } = seeded();
    const buckets = new VisitBuckets(db);
    expect(buckets.between(Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER, "asc")).toEqual([0, 1, 2, 3, 4, 5]);
    expect(buckets.between(BUCKET, 3 * BUCKET, "desc")).toEqual([3, 2, 1]);
    expect(buckets.between(6 * BUCKET, 7 * BUCKET, "asc")).toEqual([]);
    expect(bucketOf(BUCKET - 1)).toBe(0);
    expect(bucketOf(BUCKET)).toBe(1);
    db.exec("DELETE FROM visits");
    expect(buckets.between(Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER, "desc")).toEqual([]);
  });

  test("finds a lane's oldest and newest row of a range across buckets it has no row in, as a filter of the rows does", () => {
    const { db, rows } = seeded();
    // Link 3 has a row in buckets 0, 3 and 5 only: its edges are reached across empty buckets both ways.
    for (const id of [70, 3 * BUCKET + 7, 5 * BUCKET + 170]) {
      db.run("INSERT INTO visits (id, short_url_id, at, potential_bot) VALUES (?, 3, ?, 0)", [id, id]);
      rows.push({ id, link: 3, orphan: null, at: id, bot: 0 });
    }
    rows.sort((a, b) => a.id - b.id);
    const buckets = new VisitBuckets(db);
    const points = [Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER, ...rows.map((r) => r.id)];
    const atOf = new Map(rows.map((r) => [r.id, r.at]));
    const asRow = (id: number | undefined) => (id === undefined ? null : { id, at: atOf.get(id) as number });
    for (let b = 0; b <= 6; b++) points.push(b * BUCKET - 1, b * BUCKET, b * BUCKET + 1);
    const random = rng(3);
    const pick = () => points[Math.floor(random() * points.length)] as number;
    for (const lane of LANES) {
      const mine = rows.filter((r) => inLane(lane, r)).map((r) => r.id);
      for (let i = 0; i < 300; i++) {
        const [lo, hi] = [pick(), pick()].sort((a, b) => a - b) as [number, number];
        const inRange = mine.filter((id) => id >= lo && id <= hi);
        const c = { lane, lo, hi };
        expect({ c, oldest: buckets.edge(lane, lo, hi, "asc") }).toEqual({ c, oldest: asRow(inRange[0]) });
        expect({ c, newest: buckets.edge(lane, lo, hi, "desc") }).toEqual({ c, newest: asRow(inRange.at(-1)) });
      }
    }
  });
});

describe("VisitQueryStore over several buckets", () => {
  test("every lane read matches a brute-force filter of the rows, across bucket boundaries", () => {
    const { db, rows } = seeded();
    const store = new VisitQueryStore(db);
    const random = rng(5);
    const ids = rows.map((r) => r.id);
    const pick = () => (random() < 0.1 ? Number.MAX_SAFE_INTEGER : (ids[Math.floor(random() * ids.length)] as number));
    for (const lane of LANES) {
      const mine = rows.filter((r) => inLane(lane, r));
      expect(store.last(lane)?.id ?? null).toBe(mine.at(-1)?.id ?? null);
      for (let i = 0; i < 40; i++) {
        const [lo, hi] = [pick(), pick()].sort((a, b) => a - b) as [number, number];
        const excludeBots = random() < 0.5;
        const range = mine.filter((r) => r.id >= lo && r.id <= hi && !(excludeBots && r.bot === 1));
        const newestFirst = range.map((r) => r.id).reverse();
        const offset = Math.floor(random() * (range.length + 3));
        const limit = 1 + Math.floor(random() * 50);
        const c = { lane, lo, hi, excludeBots, offset, limit };
        expect({ c, first: store.firstFrom(lane, lo)?.id ?? null }).toEqual({ c, first: mine.find((r) => r.id >= lo)?.id ?? null });
        expect({ c, count: store.countRange(lane, lo, hi, excludeBots) }).toEqual({ c, count: range.length });
        expect({ c, at: store.idAtOffset(lane, lo, hi, excludeBots, offset) }).toEqual({ c, at: newestFirst[offset] ?? null });
        expect({ c, page: store.page(lane, lo, hi, excludeBots, limit).map((r) => r.id) }).toEqual({
          c,
          page: newestFirst.slice(0, limit),
        });
        expect({ c, ids: store.idsBelow(lane, lo, hi, excludeBots, limit) }).toEqual({ c, ids: newestFirst.slice(0, limit) });
        const after = mine.filter((r) => r.id > lo && r.id <= hi).map((r) => r.id);
        expect({ c, after: store.pageAfter(lane, lo, hi, limit).map((r) => r.id) }).toEqual({ c, after: after.slice(0, limit) });
        const oldest = mine.filter((r) => r.id <= hi).map((r) => r.id);
        expect({ c, oldest: store.oldest(lane, hi, limit).map((r) => r.id) }).toEqual({ c, oldest: oldest.slice(0, limit) });
      }
    }
  });

  test("deletes a lane's range in every bucket it spans, and nothing else", () => {
    const { db, rows } = seeded();
    const store = new VisitDeletionStore(db);
    const lane: Lane = { kind: "link", id: 1 };
    const lo = BUCKET - 20;
    const hi = 4 * BUCKET;
    const gone = rows.filter((r) => r.link === 1 && r.id >= lo && r.id <= hi);
    expect(new Set(gone.map((r) => bucketOf(r.id))).size).toBeGreaterThanOrEqual(3);
    expect(store.deleteRange(lane, lo, hi)).toBe(gone.length);
    const left = (db.query("SELECT id FROM visits ORDER BY id").all() as { id: number }[]).map((r) => r.id);
    expect(left).toEqual(rows.filter((r) => !gone.includes(r)).map((r) => r.id));
  });

  test("a deleted link's rows are purged bucket by bucket, in batches, and its roll-ups go only after the last", async () => {
    const { db, rows } = seeded();
    const purge = new VisitPurgeStore(db);
    const link2 = rows.filter((r) => r.link === 2).length;
    let deleted = 0;
    for (let i = 0; i < 100; i++) {
      expect(await purge.dropDeletedLinkRollups(2)).toBe(false);
      const batch = await purge.purgeDeletedLinkRows(2, 7);
      deleted += batch.deleted;
      if (!batch.more) break;
    }
    expect(deleted).toBe(link2);
    expect(db.query("SELECT count(*) AS n FROM visits WHERE short_url_id = 2").get()).toEqual({ n: 0 });
    expect(db.query("SELECT count(*) AS n FROM visits").get()).toEqual({ n: rows.length - link2 });
    expect(await purge.dropDeletedLinkRollups(2)).toBe(true);
  });
});

describe("the lane statements", () => {
  test("seek visits_link or visits_orphan, never scan the table or sort", async () => {
    const { db } = seeded();
    // Records every statement the stores prepare, then asks SQLite how it runs each one that reads a lane.
    const { recording, statements } = recordingStatements(db);
    const store = new VisitQueryStore(recording);
    const purge = new VisitPurgeStore(recording);
    for (const lane of LANES) {
      store.firstFrom(lane, 1);
      store.last(lane);
      store.idAtOffset(lane, 0, 10 * BUCKET, true, 500);
      store.idAtOffset(lane, 0, 10 * BUCKET, false, 5);
      store.page(lane, 0, 10 * BUCKET, true, 10);
      store.pageAfter(lane, 0, 10 * BUCKET, 10);
      store.countRange(lane, 0, 10 * BUCKET, false);
      store.idsBelow(lane, 0, 10 * BUCKET, false, 10);
      store.oldest(lane, 10 * BUCKET, 10);
    }
    await purge.dropDeletedLinkRollups(1);
    purge.linksAfter(0, 10);
    store.daySums({ kind: "link", id: 1 }, 0, 100_000);
    store.linkDays(1, 0, 100_000);
    store.linkSetDaySums({ domain: "" }, 0, 100_000);
    store.linkSetDaySums({}, 0, 100_000);
    store.linkSetDaySums({ tag: "t" }, 0, 100_000);
    // The day roll-ups: the flush writes today's rows together (key led by the day); a link's are found by index.
    const days = [...statements].filter((sql) => /\bvisit_days\b/.test(sql));
    expect(days.length).toBeGreaterThanOrEqual(6);
    for (const sql of days) {
      const params = Array((sql.match(/\?\d*/g) ?? []).length).fill(1);
      // Grouping by domain sorts one entry per domain (a handful), not the day's rows.
      const plan = (db.query(`EXPLAIN QUERY PLAN ${sql}`).all(...params) as { detail: string }[])
        .map((r) => r.detail)
        .filter((step) => !(/GROUP BY s\.domain$/.test(sql) && step === "USE TEMP B-TREE FOR GROUP BY"))
        .join(" | ");
      expect({ sql, plan }).toEqual({ sql, plan: expect.not.stringMatching(/\bSCAN (visit_days|d)\b|TEMP B-TREE/) });
    }
    const lanes = [...statements].filter((sql) => /short_url_id (= \?|IS NULL)|orphan_type = \?/.test(sql) && /FROM visits\b/.test(sql));
    expect(lanes.length).toBeGreaterThanOrEqual(10);
    for (const sql of lanes) {
      const params = Array((sql.match(/\?/g) ?? []).length).fill(1);
      const plan = (db.query(`EXPLAIN QUERY PLAN ${sql}`).all(...params) as { detail: string }[]).map((r) => r.detail).join(" | ");
      expect({ sql, plan }).toEqual({ sql, plan: expect.stringMatching(/USING (COVERING )?INDEX visits_(link|orphan) \(/) });
      expect({ sql, plan }).toEqual({ sql, plan: expect.not.stringMatching(/SCAN visits|TEMP B-TREE FOR ORDER BY/) });
    }
  });

  test("schema 8 swaps the link-led index for the bucketed one on an existing database, keeping every row", () => {
    const db = new Database(":memory:", { strict: true });
    for (const migration of MIGRATIONS.filter((m) => m.version <= 7)) db.exec(migration.sql);
    db.exec("PRAGMA user_version = 7");
    db.run("INSERT INTO visits (id, short_url_id, at, potential_bot) VALUES (5, 1, 1, 0), (?, 1, 2, 1)", [3 * BUCKET]);
    runMigrations(db, ":memory:");
    const indexes = (db.query("SELECT name FROM sqlite_schema WHERE type = 'index' AND tbl_name = 'visits'").all() as { name: string }[])
      .map((r) => r.name)
      .sort();
    expect(indexes).toEqual(["visits_link", "visits_orphan"]);
    expect(new VisitQueryStore(db).page({ kind: "link", id: 1 }, 0, Number.MAX_SAFE_INTEGER, false, 10).map((r) => r.id)).toEqual([
      3 * BUCKET,
      5,
    ]);
  });

  test("schema 19 rebuilds the bucketed index over 2^17 ids on a database at 18, keeping every row findable", () => {
    const db = new Database(":memory:", { strict: true });
    for (const migration of MIGRATIONS.filter((m) => m.version <= 18 && m.sql !== "")) db.exec(migration.sql);
    db.exec("PRAGMA user_version = 18");
    const indexSql = () => (db.query("SELECT sql FROM sqlite_schema WHERE name = 'visits_link'").get() as { sql: string }).sql;
    expect(indexSql()).toContain("(id >> 20)");
    // Ids in three buckets of 2^17 within the first one of 2^20, and one past it.
    const ids = [7, 2 ** 17 + 1, 5 * 2 ** 17 - 1, 2 ** 20 + 9];
    for (const id of ids) db.run("INSERT INTO visits (id, short_url_id, at, potential_bot) VALUES (?, 1, ?, 0)", [id, id]);
    runMigrations(db, ":memory:");
    expect(VISIT_BUCKET_BITS).toBe(17);
    expect(indexSql()).toContain("(id >> 17)");
    const store = new VisitQueryStore(db);
    expect(store.page({ kind: "link", id: 1 }, 0, Number.MAX_SAFE_INTEGER, false, 10).map((r) => r.id)).toEqual([...ids].reverse());
    expect(store.last({ kind: "link", id: 1 })?.id).toBe(2 ** 20 + 9);
    const plan = (
      db.query(`EXPLAIN QUERY PLAN SELECT id FROM visits WHERE ${BUCKET_SQL} = 1 AND short_url_id = 1`).all() as { detail: string }[]
    )
      .map((r) => r.detail)
      .join(" | ");
    expect(plan).toMatch(/USING COVERING INDEX visits_link \(/);
    expect(db.query("PRAGMA integrity_check").get()).toEqual({ integrity_check: "ok" });
  });
});
