import { Database } from "bun:sqlite";
import { afterEach, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { lockRetryPause, MAX_LOCK_RETRY_MS, openDatabase, relaxedWrite, relaxedWriteTransaction, writeTransactionIfFree } from "./database";
import { currentVersion, LATEST_VERSION, MIGRATIONS } from "./migrations";

const dirs: string[] = [];
function dbPath(): string {
  const dir = mkdtempSync(join(tmpdir(), "shortener-db-"));
  dirs.push(dir);
  return join(dir, "shortener.db");
}

/** A migrated database, and another connection to it (standing for another process) holding its write lock. */
function lockedByAnother(): { db: Database; other: Database } {
  const path = dbPath();
  const db = openDatabase(path);
  const other = new Database(path);
  other.exec("BEGIN IMMEDIATE");
  return { db, other };
}
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

describe("openDatabase", () => {
  test("sets WAL, synchronous=FULL, busy_timeout=5000 and foreign keys on every connection", () => {
    const db = openDatabase(dbPath());
    expect(db.query("PRAGMA journal_mode").get()).toEqual({ journal_mode: "wal" });
    expect(db.query("PRAGMA synchronous").get()).toEqual({ synchronous: 2 });
    expect(db.query("PRAGMA busy_timeout").get()).toEqual({ timeout: 5000 });
    expect(db.query("PRAGMA foreign_keys").get()).toEqual({ foreign_keys: 1 });
    db.close();
  });

  test("migrates a new database to the latest version, and reopening changes nothing", () => {
    const path = dbPath();
    const first = openDatabase(path);
    expect(currentVersion(first)).toBe(LATEST_VERSION);
    first.run("INSERT INTO short_urls (short_code, long_url, created_at) VALUES ('abc', 'https://example.com/', 1)");
    first.close();
    const again = openDatabase(path);
    expect(currentVersion(again)).toBe(LATEST_VERSION);
    expect(again.query("SELECT count(*) AS n FROM short_urls").get()).toEqual({ n: 1 });
    again.close();
  });

  test("moves visit counters out of short_urls (version 5), keeping every count, after a snapshot beside the file", () => {
    const path = dbPath();
    const old = new Database(path);
    for (const migration of MIGRATIONS.filter((m) => m.version <= 4)) old.exec(migration.sql);
    old.exec("PRAGMA user_version = 4");
    const insert = old.query(
      "INSERT INTO short_urls (short_code, long_url, created_at, visits_total, visits_bots) VALUES (?, 'https://example.com/', 1, ?, ?)",
    );
    insert.run("busy", 1_234, 56);
    insert.run("botty", 7, 7);
    insert.run("quiet", 0, 0);
    old.close();

    const db = openDatabase(path);
    expect(currentVersion(db)).toBe(LATEST_VERSION);
    expect(
      db
        .query("SELECT s.short_code AS code, v.total, v.bots FROM link_visits v JOIN short_urls s ON s.id = v.short_url_id ORDER BY code")
        .all(),
    ).toEqual([
      { code: "botty", total: 7, bots: 7 },
      { code: "busy", total: 1_234, bots: 56 },
    ]);
    const columns = (db.query("PRAGMA table_info(short_urls)").all() as { name: string }[]).map((c) => c.name);
    expect(columns).not.toContain("visits_total");
    expect(columns).not.toContain("visits_bots");
    expect(db.query("PRAGMA integrity_check").get()).toEqual({ integrity_check: "ok" });
    db.close();
    expect(existsSync(`${path}.before-migration-5`)).toBe(true);
  });

  test("re-keys the day roll-ups by day (version 9), keeping every row, after a snapshot beside the file", () => {
    const path = dbPath();
    const old = new Database(path);
    for (const migration of MIGRATIONS.filter((m) => m.version <= 8)) old.exec(migration.sql);
    old.exec("PRAGMA user_version = 8");
    const rows = [
      { short_url_id: 1, day: 20_400, total: 9, bots: 2, visitors: 4 },
      { short_url_id: 1, day: 20_401, total: 3, bots: 0, visitors: 3 },
      { short_url_id: 2, day: 20_400, total: 5, bots: 5, visitors: 1 },
    ];
    const insert = old.query("INSERT INTO visit_days (short_url_id, day, total, bots, visitors) VALUES (?, ?, ?, ?, ?)");
    for (const r of rows) insert.run(r.short_url_id, r.day, r.total, r.bots, r.visitors);
    old.close();

    const db = openDatabase(path);
    expect(currentVersion(db)).toBe(LATEST_VERSION);
    expect(db.query("SELECT short_url_id, day, total, bots, visitors FROM visit_days ORDER BY short_url_id, day").all()).toEqual(rows);
    const key = (db.query("PRAGMA index_info('sqlite_autoindex_visit_days_1')").all() as { name: string }[]).map((c) => c.name);
    expect(key).toEqual(["day", "short_url_id"]);
    const indexes = (
      db.query("SELECT name FROM sqlite_schema WHERE type = 'index' AND tbl_name = 'visit_days' AND sql IS NOT NULL").all() as {
        name: string;
      }[]
    ).map((r) => r.name);
    expect(indexes).toEqual(["visit_days_link"]);
    expect(db.query("PRAGMA integrity_check").get()).toEqual({ integrity_check: "ok" });
    db.close();
    expect(existsSync(`${path}.before-migration-9`)).toBe(true);
  });

  test("renames tags to Shlink's form (version 13), merging those that collide, no link losing one, after a snapshot", () => {
    const path = dbPath();
    const old = new Database(path);
    for (const migration of MIGRATIONS.filter((m) => m.version <= 12)) old.exec(migration.sql);
    old.exec("PRAGMA user_version = 12");
    for (const [id, code] of ["both", "upper", "accented", "none"].entries()) {
      old.run("INSERT INTO short_urls (id, short_code, long_url, created_at) VALUES (?, ?, 'https://example.com/', 1)", [id + 1, code]);
    }
    // foo-bar is newer than "Foo Bar" and "FOO BAR" yet is kept: it already holds the name.
    old.run(
      "INSERT INTO tags (id, name) VALUES (1, 'Foo Bar'), (2, 'FOO BAR'), (3, 'foo-bar'), (4, ' Été '), (5, 'plain'), (6, 'Lonely One')",
    );
    // "both" carries two spellings of one tag; "accented" gets foo-bar through 'Foo Bar', a tag that is not kept.
    old.run("INSERT INTO short_url_tags (short_url_id, tag_id) VALUES (1, 1), (1, 3), (1, 5), (2, 2), (3, 4), (3, 1)");
    old.close();

    const db = openDatabase(path);
    expect(currentVersion(db)).toBe(LATEST_VERSION);
    expect(db.query("SELECT id, name FROM tags ORDER BY name").all()).toEqual([
      { id: 3, name: "foo-bar" },
      { id: 6, name: "lonely-one" },
      { id: 5, name: "plain" },
      { id: 4, name: "été" },
    ]);
    const tagsOf = db.query<{ name: string }, [string]>(
      `SELECT t.name FROM short_url_tags st JOIN tags t ON t.id = st.tag_id JOIN short_urls s ON s.id = st.short_url_id
       WHERE s.short_code = ? ORDER BY t.name`,
    );
    const names = (code: string) => tagsOf.all(code).map((r) => r.name);
    expect(names("both")).toEqual(["foo-bar", "plain"]);
    expect(names("upper")).toEqual(["foo-bar"]);
    expect(names("accented")).toEqual(["foo-bar", "été"]);
    expect(names("none")).toEqual([]);
    expect(db.query("PRAGMA foreign_key_check").all()).toEqual([]);
    expect(db.query("PRAGMA integrity_check").get()).toEqual({ integrity_check: "ok" });
    db.close();
    const snapshot = new Database(`${path}.before-migration-13`, { readonly: true });
    expect(snapshot.query("SELECT count(*) AS n FROM tags").get()).toEqual({ n: 6 });
    snapshot.close();
  });

  test("version 13 copies nothing when every tag is already in Shlink's form, and changes nothing", () => {
    const path = dbPath();
    const old = new Database(path);
    for (const migration of MIGRATIONS.filter((m) => m.version <= 12)) old.exec(migration.sql);
    old.exec("PRAGMA user_version = 12");
    old.run("INSERT INTO tags (id, name) VALUES (1, 'foo-bar'), (2, 'été'), (3, 'x')");
    old.close();
    const db = openDatabase(path);
    expect(currentVersion(db)).toBe(LATEST_VERSION);
    expect(db.query("SELECT id, name FROM tags ORDER BY id").all()).toEqual([
      { id: 1, name: "foo-bar" },
      { id: 2, name: "été" },
      { id: 3, name: "x" },
    ]);
    db.close();
    expect(existsSync(`${path}.before-migration-13`)).toBe(false);
  });

  test("a snapshot cut short (a full disk, a kill) is never taken for one: the next open makes it whole", () => {
    const path = dbPath();
    const old = new Database(path);
    for (const migration of MIGRATIONS.filter((m) => m.version <= 8)) old.exec(migration.sql);
    old.exec("PRAGMA user_version = 8");
    old.close();
    const snapshot = `${path}.before-migration-9`;
    writeFileSync(`${snapshot}.partial`, "SQLite format 3\u0000 and then nothing");
    openDatabase(path).close();
    expect(existsSync(`${snapshot}.partial`)).toBe(false);
    const copy = new Database(snapshot, { readonly: true });
    expect(copy.query("PRAGMA user_version").get()).toEqual({ user_version: 8 });
    expect(copy.query("PRAGMA integrity_check").get()).toEqual({ integrity_check: "ok" });
    copy.close();
  });

  test("refuses a database whose schema is newer than the binary", () => {
    const path = dbPath();
    const db = openDatabase(path);
    db.exec(`PRAGMA user_version = ${LATEST_VERSION + 1}`);
    db.close();
    expect(() => openDatabase(path)).toThrow(/newer than this binary knows/);
  });

  test("keeps (domain, short_code) unique, with the default domain stored as ''", () => {
    const db = openDatabase(dbPath());
    db.run("INSERT INTO short_urls (short_code, long_url, created_at) VALUES ('abc', 'https://a.example/', 1)");
    expect(() => db.run("INSERT INTO short_urls (short_code, long_url, created_at) VALUES ('abc', 'https://b.example/', 1)")).toThrow(
      /UNIQUE/,
    );
    db.run("INSERT INTO short_urls (domain, short_code, long_url, created_at) VALUES ('s.example', 'abc', 'https://c.example/', 1)");
    expect(db.query("SELECT count(*) AS n FROM short_urls WHERE short_code = 'abc'").get()).toEqual({ n: 2 });
    db.close();
  });
});

describe("relaxedWriteTransaction", () => {
  test("throws another connection's write lock at once (SQLITE_BUSY), having run nothing, and restores the pragmas", () => {
    const { db, other } = lockedByAnother();
    let ran = false;
    const started = performance.now();
    expect(() =>
      relaxedWriteTransaction(db, () => {
        ran = true;
      }),
    ).toThrow("database is locked");
    const waited = performance.now() - started;
    other.exec("ROLLBACK");
    expect(ran).toBe(false);
    // SQLite's busy handler would have held this thread for busy_timeout (5 s).
    expect(waited).toBeLessThan(50);
    expect(db.query("PRAGMA busy_timeout").get()).toEqual({ timeout: 5000 });
    expect(db.query("PRAGMA synchronous").get()).toEqual({ synchronous: 2 });
    relaxedWriteTransaction(db, () => db.run("UPDATE heartbeat SET at = 7 WHERE id = 1"));
    expect(db.query("SELECT at FROM heartbeat").get()).toEqual({ at: 7 });
    other.close();
    db.close();
  });

  test("commits, and leaves the connection at synchronous=FULL afterwards, even when the write throws", () => {
    const db = openDatabase(dbPath());
    relaxedWriteTransaction(db, () => db.run("UPDATE heartbeat SET at = 5 WHERE id = 1"));
    expect(db.query("SELECT at FROM heartbeat").get()).toEqual({ at: 5 });
    expect(db.query("PRAGMA synchronous").get()).toEqual({ synchronous: 2 });
    expect(() =>
      relaxedWriteTransaction(db, () => {
        db.run("UPDATE heartbeat SET at = 6 WHERE id = 1");
        throw new Error("boom");
      }),
    ).toThrow("boom");
    expect(db.query("SELECT at FROM heartbeat").get()).toEqual({ at: 5 });
    expect(db.query("PRAGMA synchronous").get()).toEqual({ synchronous: 2 });
    db.close();
  });
});

describe("relaxedWrite", () => {
  test("waits for another connection's write lock on timers, so the event loop runs meanwhile, then commits", async () => {
    const { db, other } = lockedByAnother();
    // Released by a timer on this same thread: only if the write leaves the event loop free while it waits.
    setTimeout(() => other.exec("ROLLBACK"), 150);
    let ticks = 0;
    const ticker = setInterval(() => ticks++, 5);
    const started = performance.now();
    const changed = await relaxedWrite(db, () => db.run("UPDATE heartbeat SET at = 8 WHERE id = 1").changes);
    const waited = performance.now() - started;
    clearInterval(ticker);
    expect(changed).toBe(1);
    expect(db.query("SELECT at FROM heartbeat").get()).toEqual({ at: 8 });
    expect(waited).toBeGreaterThanOrEqual(140);
    expect(ticks).toBeGreaterThanOrEqual(10);
    expect(db.query("PRAGMA synchronous").get()).toEqual({ synchronous: 2 });
    other.close();
    db.close();
  });

  test("fails with the lock's SQLITE_BUSY once it has waited waitMs, having run nothing", async () => {
    const { db, other } = lockedByAnother();
    let ran = false;
    const started = performance.now();
    const write = relaxedWrite(
      db,
      () => {
        ran = true;
      },
      200,
    );
    await expect(write).rejects.toMatchObject({ code: "SQLITE_BUSY" });
    const waited = performance.now() - started;
    other.exec("ROLLBACK");
    expect(ran).toBe(false);
    // It stops before a pause would take it past 200 ms: after at least 200 less the longest pause.
    expect(waited).toBeGreaterThanOrEqual(200 - MAX_LOCK_RETRY_MS - 5);
    expect(waited).toBeLessThan(1000);
    other.close();
    db.close();
  });

  test("pauses 1 ms, then twice as long each try, up to MAX_LOCK_RETRY_MS", () => {
    expect(Array.from({ length: 8 }, (_, tries) => lockRetryPause(tries))).toEqual([
      1,
      2,
      4,
      8,
      16,
      32,
      MAX_LOCK_RETRY_MS,
      MAX_LOCK_RETRY_MS,
    ]);
  });
});

describe("checkpoints", () => {
  test("SQLite checkpoints by itself unless Litestream owns checkpoints", () => {
    const own = openDatabase(dbPath());
    expect(own.query("PRAGMA wal_autocheckpoint").get()).toEqual({ wal_autocheckpoint: 1000 });
    own.close();
    const byLitestream = openDatabase(dbPath(), { noAutomaticCheckpoints: true });
    expect(byLitestream.query("PRAGMA wal_autocheckpoint").get()).toEqual({ wal_autocheckpoint: 0 });
    byLitestream.close();
  });

  test("with walSizeLimitBytes, a WAL file a burst grew is cut back to it when SQLite starts the WAL over", () => {
    const walAfterBurst = (options: Parameters<typeof openDatabase>[1]) => {
      const path = dbPath();
      const db = openDatabase(path, { noAutomaticCheckpoints: true, ...options });
      db.exec("CREATE TABLE filler (x BLOB)");
      db.exec(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 800) INSERT INTO filler (x) SELECT randomblob(4000) FROM n",
      );
      db.exec("PRAGMA wal_checkpoint(PASSIVE)");
      // The next write starts the WAL over (the checkpoint copied all of it).
      db.exec("INSERT INTO filler (x) VALUES (randomblob(10))");
      const size = statSync(`${path}-wal`).size;
      db.close();
      return size;
    };
    expect(walAfterBurst({ walSizeLimitBytes: 1024 * 1024 })).toBeLessThanOrEqual(1024 * 1024);
    expect(walAfterBurst({})).toBeGreaterThan(3 * 1024 * 1024);
  });
});

describe("writeTransactionIfFree", () => {
  test("returns another connection's lock as busy at once, having run nothing, and restores busy_timeout", () => {
    const { db, other } = lockedByAnother();
    let ran = false;
    const started = performance.now();
    const attempt = writeTransactionIfFree(db, () => {
      ran = true;
    });
    const waited = performance.now() - started;
    other.exec("ROLLBACK");
    expect("busy" in attempt && attempt.busy.code).toBe("SQLITE_BUSY");
    expect(ran).toBe(false);
    // SQLite's busy handler would have slept up to busy_timeout (5 s) on this thread.
    expect(waited).toBeLessThan(50);
    expect(db.query("PRAGMA busy_timeout").get()).toEqual({ timeout: 5000 });
    expect(writeTransactionIfFree(db, () => db.run("UPDATE heartbeat SET at = 9 WHERE id = 1").changes)).toEqual({ value: 1 });
    expect(db.query("SELECT at FROM heartbeat").get()).toEqual({ at: 9 });
    other.close();
    db.close();
  });

  test("runs its writes under the full busy_timeout, and rolls them back when they throw", () => {
    const db = openDatabase(dbPath());
    expect(writeTransactionIfFree(db, () => (db.query("PRAGMA busy_timeout").get() as { timeout: number }).timeout)).toEqual({
      value: 5000,
    });
    expect(() =>
      writeTransactionIfFree(db, () => {
        db.run("UPDATE heartbeat SET at = 3 WHERE id = 1");
        throw new Error("boom");
      }),
    ).toThrow("boom");
    expect(db.query("SELECT at FROM heartbeat").get()).not.toEqual({ at: 3 });
    expect(db.query("PRAGMA busy_timeout").get()).toEqual({ timeout: 5000 });
    db.close();
  });
});
