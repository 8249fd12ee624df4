import { afterEach, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BackgroundCheckpointer } from "./checkpointer";
import { type CheckpointResult, openDatabase } from "./database";

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** A database in a fresh directory, automatic checkpoints off, and `write(rows)`: that many ~4 KB rows in one transaction. */
function walDatabase() {
  const dir = mkdtempSync(join(tmpdir(), "shortener-checkpoint-"));
  dirs.push(dir);
  const path = join(dir, "shortener.db");
  const db = openDatabase(path, { noAutomaticCheckpoints: true });
  db.exec("CREATE TABLE filler (x BLOB)");
  const fill = db.query("INSERT INTO filler (x) VALUES (randomblob(4000))");
  const write = (rows: number) =>
    db.transaction(() => {
      for (let i = 0; i < rows; i++) fill.run();
    })();
  return { path, db, write };
}

describe("BackgroundCheckpointer", () => {
  test("copies the WAL into the database file from its own thread, while the writer's automatic checkpoint is off", async () => {
    const { path, db, write } = walDatabase();
    const sizeBefore = statSync(path).size;
    const insert = db.query("INSERT INTO heartbeat (id, at) VALUES (1, ?) ON CONFLICT (id) DO UPDATE SET at = excluded.at");
    write(2000);
    insert.run(42);
    // Nothing checkpointed yet: the automatic checkpoint would have run past 1000 pages.
    expect(statSync(path).size).toBe(sizeBefore);

    const results: CheckpointResult[] = [];
    const failures: string[] = [];
    const checkpointer = new BackgroundCheckpointer(path, 20, { checkpointed: (r) => results.push(r), failed: (m) => failures.push(m) });
    checkpointer.start();
    const deadline = Date.now() + 10_000;
    while (results.length === 0 && failures.length === 0 && Date.now() < deadline) await Bun.sleep(10);
    await checkpointer.stop();
    expect(failures).toEqual([]);
    const first = results[0] as CheckpointResult;
    expect(first.log).toBeGreaterThan(2000);
    expect(first.checkpointed).toBe(first.log);
    expect(statSync(path).size).toBeGreaterThan(sizeBefore + 2000 * 4000);
    // The writer goes on after the checkpoint, and its data is there.
    insert.run(43);
    expect(db.query("SELECT at FROM heartbeat").get()).toEqual({ at: 43 });
    db.close();
  });

  test("asked for after each burst of writes, it finishes between them and the WAL starts over instead of growing", async () => {
    const { path, db, write } = walDatabase();
    db.exec("PRAGMA synchronous = NORMAL");
    const results: CheckpointResult[] = [];
    const failures: string[] = [];
    // Its own timer alone (80 ms after the last one) would mostly land inside a burst: never a whole WAL.
    const checkpointer = new BackgroundCheckpointer(path, 40, { checkpointed: (r) => results.push(r), failed: (m) => failures.push(m) });
    checkpointer.start();
    let frames = 0;
    const deadline = Date.now() + 20_000;
    for (let burst = 0; burst < 12 && Date.now() < deadline; burst++) {
      // 50 ms of back-to-back write transactions (as a visit flush run), then the ask and a wait for its result.
      const end = performance.now() + 50;
      while (performance.now() < end) {
        write(5);
        frames += 6;
      }
      const seen = results.length;
      checkpointer.afterWrites();
      while (results.length === seen && failures.length === 0 && Date.now() < deadline) await Bun.sleep(2);
    }
    await checkpointer.stop();
    expect(failures).toEqual([]);
    expect(results.length).toBeGreaterThanOrEqual(12);
    // Each checkpoint found only the last burst's frames in the WAL, and copied them all.
    const largest = Math.max(...results.map((r) => r.log));
    expect(largest).toBeLessThan(frames / 4);
    expect(results.filter((r) => r.checkpointed === r.log).length).toBeGreaterThanOrEqual(10);
    expect(statSync(`${path}-wal`).size).toBeLessThan((frames / 4) * 4096);
    db.close();
  }, 30_000);

  test("postponed (a checkpoint ran on another connection), its own timer waits an interval from then", async () => {
    const { path, db, write } = walDatabase();
    write(10);
    const results: CheckpointResult[] = [];
    // Its own timer: two intervals (2 s) after the last checkpoint, unless asked for sooner.
    const checkpointer = new BackgroundCheckpointer(path, 1_000, { checkpointed: (r) => results.push(r), failed: () => {} });
    checkpointer.start();
    const started = performance.now();
    for (let i = 0; i < 100 && performance.now() - started < 3_000; i++) {
      checkpointer.postpone();
      await Bun.sleep(50);
    }
    // Three seconds, more than its two, and none ran.
    expect(performance.now() - started).toBeGreaterThanOrEqual(3_000);
    expect(results).toEqual([]);
    const deadline = Date.now() + 10_000;
    while (results.length === 0 && Date.now() < deadline) await Bun.sleep(10);
    await checkpointer.stop();
    expect((results[0] as CheckpointResult).log).toBeGreaterThan(10);
    db.close();
  }, 20_000);

  test("catchUp() checkpoints the whole WAL while nothing writes, so the next write starts it over", async () => {
    const { path, db, write } = walDatabase();
    const results: CheckpointResult[] = [];
    const checkpointer = new BackgroundCheckpointer(path, 60_000, { checkpointed: (r) => results.push(r), failed: () => {} });
    expect(await checkpointer.catchUp()).toBe(false);
    checkpointer.start();
    write(500);
    expect(await checkpointer.catchUp()).toBe(true);
    expect((results.at(-1) as CheckpointResult).log).toBeGreaterThan(500);
    // The WAL started over: the next checkpoint finds only the one new transaction in it.
    write(1);
    expect(await checkpointer.catchUp()).toBe(true);
    expect((results.at(-1) as CheckpointResult).log).toBeLessThan(10);
    await checkpointer.stop();
    expect(await checkpointer.catchUp()).toBe(false);
    db.close();
  });

  test("a worker that cannot open the database says so once, and still stops when asked", async () => {
    const dir = mkdtempSync(join(tmpdir(), "shortener-checkpoint-"));
    dirs.push(dir);
    const failures: string[] = [];
    // A directory is no database.
    const checkpointer = new BackgroundCheckpointer(dir, 1, { checkpointed: () => {}, failed: (m) => failures.push(m) });
    checkpointer.start();
    const deadline = Date.now() + 10_000;
    while (failures.length === 0 && Date.now() < deadline) await Bun.sleep(5);
    checkpointer.afterWrites();
    const stopping = performance.now();
    await checkpointer.stop();
    // It answered "stop": a dead thread would have been waited for WORKER_STOP_TIMEOUT_MS (5 s), then terminated.
    expect(performance.now() - stopping).toBeLessThan(2_000);
    expect(failures).toHaveLength(1);
    expect(failures[0]).toStartWith("checkpoint worker: ");
  });
});
