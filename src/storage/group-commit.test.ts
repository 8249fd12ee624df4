import { Database } from "bun:sqlite";
import { afterEach, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openDatabase } from "./database";
import { GroupCommit, UnconfirmedCommit } from "./group-commit";

function memoryDb(): Database {
  const db = new Database(":memory:");
  db.exec("CREATE TABLE t (v TEXT PRIMARY KEY)");
  return db;
}

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** A database file with the app's pragmas, and a second connection to it standing for another process. */
function sharedFile(): { db: Database; other: Database } {
  const dir = mkdtempSync(join(tmpdir(), "shortener-group-commit-"));
  dirs.push(dir);
  const db = openDatabase(join(dir, "shortener.db"));
  db.exec("CREATE TABLE t (v TEXT PRIMARY KEY)");
  return { db, other: new Database(join(dir, "shortener.db")) };
}

/** The longest gap between ticks of a 5 ms timer over `ms`: how long the event loop was held meanwhile. */
async function longestTimerGap(ms: number): Promise<number> {
  let last = performance.now();
  let longest = 0;
  const until = last + ms;
  for (let ticks = 0; performance.now() < until && ticks < 10_000; ticks++) {
    await Bun.sleep(5);
    const now = performance.now();
    longest = Math.max(longest, now - last);
    last = now;
  }
  return longest;
}

describe("GroupCommit", () => {
  test("commits writes submitted together in one transaction", async () => {
    const db = memoryDb();
    let commits = 0;
    // Counts outer (immediate) transactions; nested ones are savepoints and are called directly.
    const counting = new Proxy(db, {
      get(target, prop) {
        if (prop === "transaction") {
          return (fn: () => unknown) => {
            const tx = target.transaction(fn);
            const wrapped = () => tx();
            wrapped.immediate = () => {
              commits++;
              return tx.immediate();
            };
            return wrapped;
          };
        }
        const value = Reflect.get(target, prop);
        return typeof value === "function" ? value.bind(target) : value;
      },
    });
    const writes = new GroupCommit(counting);
    const results = await Promise.all(
      Array.from({ length: 50 }, (_, i) => writes.run(() => db.run("INSERT INTO t VALUES (?)", [`v${i}`]).changes)),
    );
    expect(results).toEqual(Array(50).fill(1));
    expect(commits).toBe(1);
    expect(db.query("SELECT count(*) AS n FROM t").get()).toEqual({ n: 50 });
  });

  test("rolls back only the write that throws; the others commit", async () => {
    const db = memoryDb();
    const writes = new GroupCommit(db);
    const outcomes = await Promise.allSettled([
      writes.run(() => db.run("INSERT INTO t VALUES ('a')")),
      writes.run(() => {
        db.run("INSERT INTO t VALUES ('b')");
        throw new Error("refused");
      }),
      writes.run(() => db.run("INSERT INTO t VALUES ('c')")),
    ]);
    expect(outcomes.map((o) => o.status)).toEqual(["fulfilled", "rejected", "fulfilled"]);
    expect(db.query("SELECT v FROM t ORDER BY v").all()).toEqual([{ v: "a" }, { v: "c" }]);
  });

  describe("while another process holds the write lock", () => {
    test("writes wait for it on a timer, leaving the event loop free, and commit in order once it goes", async () => {
      const { db, other } = sharedFile();
      const writes = new GroupCommit(db);
      other.exec("BEGIN IMMEDIATE");
      const first = writes.run(() => db.run("INSERT INTO t VALUES ('a')").changes);
      const second = writes.run(() => db.run("INSERT INTO t VALUES ('b')").changes);
      let settled = false;
      void Promise.allSettled([first, second]).then(() => {
        settled = true;
      });
      // SQLite's busy handler would hold this thread for busy_timeout (5 s) on the first try.
      expect(await longestTimerGap(500)).toBeLessThan(100);
      expect(settled).toBe(false);
      other.exec("ROLLBACK");
      expect(await Promise.all([first, second])).toEqual([1, 1]);
      expect(db.query("SELECT v FROM t ORDER BY rowid").all()).toEqual([{ v: "a" }, { v: "b" }]);
      other.close();
      db.close();
    });

    test("a write still locked out after lockWaitMs fails with SQLITE_BUSY, having changed nothing; a later one commits", async () => {
      const { db, other } = sharedFile();
      const writes = new GroupCommit(db, null, 256, null, 200);
      other.exec("BEGIN IMMEDIATE");
      const started = performance.now();
      const refused = await writes.run(() => db.run("INSERT INTO t VALUES ('a')")).catch((error: unknown) => error);
      const waited = performance.now() - started;
      expect((refused as { code?: string }).code).toBe("SQLITE_BUSY");
      expect(waited).toBeGreaterThanOrEqual(200);
      expect(waited).toBeLessThan(1000);
      const later = writes.run(() => db.run("INSERT INTO t VALUES ('b')").changes);
      await Bun.sleep(20);
      other.exec("ROLLBACK");
      expect(await later).toBe(1);
      expect(db.query("SELECT v FROM t").all()).toEqual([{ v: "b" }]);
      expect(db.query("PRAGMA busy_timeout").get()).toEqual({ timeout: 5000 });
      other.close();
      db.close();
    });
  });

  describe("with an after-commit hook (replicated durability)", () => {
    /** A hook whose runs are counted and finished by hand, like a sync-and-wait on Litestream. */
    function manualHook() {
      const runs: PromiseWithResolvers<void>[] = [];
      const hook = () => {
        const run = Promise.withResolvers<void>();
        runs.push(run);
        return run.promise;
      };
      return { runs, hook };
    }
    /** Lets the queued batch commit and its hook start (GroupCommit drains on setImmediate). */
    const turn = () => new Promise<void>((resolve) => setImmediate(resolve));
    const settled = (promise: Promise<unknown>) => {
      const state = { done: false };
      promise.then(
        () => {
          state.done = true;
        },
        () => {
          state.done = true;
        },
      );
      return state;
    };

    test("a batch of writes shares one hook run, and no write settles before it ends", async () => {
      const db = memoryDb();
      const { runs, hook } = manualHook();
      const writes = new GroupCommit(db, null, 256, hook);
      const pending = Array.from({ length: 20 }, (_, i) => writes.run(() => db.run("INSERT INTO t VALUES (?)", [`v${i}`]).changes));
      const states = pending.map(settled);
      await turn();
      expect(runs.length).toBe(1);
      // Committed (the hook would upload it) but not yet acknowledged.
      expect(db.query("SELECT count(*) AS n FROM t").get()).toEqual({ n: 20 });
      expect(states.some((s) => s.done)).toBe(false);
      runs[0]?.resolve();
      expect(await Promise.all(pending)).toEqual(Array(20).fill(1));
      expect(runs.length).toBe(1);
    });

    test("a failing hook rejects every write of its batch with UnconfirmedCommit carrying its result; the writes stay committed", async () => {
      const db = memoryDb();
      const writes = new GroupCommit(db, null, 256, () => Promise.reject(new Error("replica unreachable")));
      const outcomes = await Promise.allSettled([
        writes.run(() => db.run("INSERT INTO t VALUES ('a')").lastInsertRowid),
        writes.run(() => db.run("INSERT INTO t VALUES ('b')").lastInsertRowid),
      ]);
      const reasons = outcomes.map((o) => (o.status === "rejected" ? o.reason : null));
      expect(reasons.every((r) => r instanceof UnconfirmedCommit)).toBe(true);
      expect(reasons.map((r) => (r as UnconfirmedCommit).value)).toEqual([1, 2]);
      expect((reasons[0] as UnconfirmedCommit).message).toContain("replica unreachable");
      expect(db.query("SELECT v FROM t ORDER BY v").all()).toEqual([{ v: "a" }, { v: "b" }]);
    });

    test("a write that throws waits for the hook too: its own error when confirmed, UnconfirmedCommit when not", async () => {
      const db = memoryDb();
      db.run("INSERT INTO t VALUES ('taken')");
      const { runs, hook } = manualHook();
      const writes = new GroupCommit(db, null, 256, hook);
      const duplicate = () => db.run("INSERT INTO t VALUES ('taken')");
      const first = writes.run(duplicate);
      const state = settled(first);
      await turn();
      expect(state.done).toBe(false);
      runs[0]?.resolve();
      await expect(first).rejects.toThrow(/UNIQUE/);
      const second = writes.run(duplicate);
      await turn();
      runs[1]?.reject(new Error("timeout"));
      await expect(second).rejects.toBeInstanceOf(UnconfirmedCommit);
    });

    test("the next batch commits while an earlier batch still waits for its hook", async () => {
      const db = memoryDb();
      const { runs, hook } = manualHook();
      const writes = new GroupCommit(db, null, 256, hook);
      const first = writes.run(() => db.run("INSERT INTO t VALUES ('first')"));
      const firstState = settled(first);
      await turn();
      const second = writes.run(() => db.run("INSERT INTO t VALUES ('second')"));
      await turn();
      expect(runs.length).toBe(2);
      expect(db.query("SELECT count(*) AS n FROM t").get()).toEqual({ n: 2 });
      runs[1]?.resolve();
      await second;
      expect(firstState.done).toBe(false);
      runs[0]?.resolve();
      await first;
    });
  });
});
