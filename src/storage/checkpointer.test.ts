import { afterEach, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { CheckpointResult } from "./checkpoint-worker";
import { BackgroundCheckpointer } from "./checkpointer";
import { openDatabase } from "./database";

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

describe("BackgroundCheckpointer", () => {
  test("copies the WAL into the database file from its own thread, while the writer's automatic checkpoint is off", async () => {
    const dir = mkdtempSync(join(tmpdir(), "shortener-checkpoint-"));
    dirs.push(dir);
    const path = join(dir, "shortener.db");
    const db = openDatabase(path, { noAutomaticCheckpoints: true });
    const sizeBefore = statSync(path).size;
    const insert = db.query("INSERT INTO heartbeat (id, at) VALUES (1, ?) ON CONFLICT (id) DO UPDATE SET at = excluded.at");
    db.exec("CREATE TABLE filler (x BLOB)");
    const fill = db.query("INSERT INTO filler (x) VALUES (randomblob(4000))");
    db.transaction(() => {
      for (let i = 0; i < 2000; i++) fill.run();
    })();
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
});
