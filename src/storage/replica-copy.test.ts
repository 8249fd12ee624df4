import { Database } from "bun:sqlite";
import { afterEach, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { FollowPosition, headerJournalMode, useRollbackJournal } from "./replica-copy";

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** A database as the primary leaves it, and so as Litestream restores it: WAL mode, one table with a row. */
function walDatabase(): string {
  const dir = mkdtempSync(join(tmpdir(), "shortener-copy-"));
  dirs.push(dir);
  const path = join(dir, "shortener.db");
  const db = new Database(path, { create: true });
  db.exec("PRAGMA journal_mode = WAL; CREATE TABLE t (v TEXT); INSERT INTO t VALUES ('kept')");
  db.close();
  return path;
}

describe("useRollbackJournal", () => {
  test("switches a WAL copy to rollback-journal mode, keeping its rows, and leaves no WAL beside it", async () => {
    const path = walDatabase();
    expect(headerJournalMode(path)).toBe("wal");
    await useRollbackJournal(path);
    expect(headerJournalMode(path)).toBe("rollback");
    expect(existsSync(`${path}-wal`)).toBe(false);
    const db = new Database(path, { readonly: true });
    expect(db.query("SELECT v FROM t").all()).toEqual([{ v: "kept" }]);
    expect(db.query("PRAGMA journal_mode").get()).toEqual({ journal_mode: "delete" });
    db.close();
    // Again: nothing to do.
    await useRollbackJournal(path);
    expect(headerJournalMode(path)).toBe("rollback");
  });

  test("waits while Litestream's write lock is held (its PENDING byte and SHARED range), then switches", async () => {
    const path = walDatabase();
    // The locks Litestream's follow takes around each transaction it applies (fcntl, as its internal/lock_unix.go).
    const script = [
      "import fcntl, os, sys, time",
      `fd = os.open(${JSON.stringify(path)}, os.O_RDWR)`,
      "fcntl.lockf(fd, fcntl.LOCK_EX, 1, 0x40000000)",
      "fcntl.lockf(fd, fcntl.LOCK_EX, 510, 0x40000002)",
      "print('locked', flush=True)",
      "time.sleep(0.8)",
    ].join("\n");
    const litestream = Bun.spawn(["python3", "-c", script], { stdout: "pipe", stderr: "inherit" });
    // Until its whole first line has come (a pipe may hand it over in pieces), or the pipe ends.
    const reader = litestream.stdout.getReader();
    let said = "";
    for (let reads = 0; !said.includes("\n") && reads < 100; reads++) {
      const { value, done } = await reader.read();
      if (done) break;
      said += new TextDecoder().decode(value);
    }
    expect(said).toBe("locked\n");
    const started = performance.now();
    await useRollbackJournal(path, 10_000);
    const waited = performance.now() - started;
    expect(await litestream.exited).toBe(0);
    expect(headerJournalMode(path)).toBe("rollback");
    expect(waited).toBeGreaterThan(500);
  });

  test("gives up on a database another connection keeps open in WAL mode (a primary's), naming what to do", async () => {
    const path = walDatabase();
    const primary = new Database(path);
    primary.query("SELECT count(*) FROM t").get();
    try {
      await expect(useRollbackJournal(path, 800)).rejects.toThrow(
        /cannot switch .*shortener\.db out of WAL mode: another process has kept it open .* never a database a primary serves/,
      );
      expect(headerJournalMode(path)).toBe("wal");
    } finally {
      primary.close();
    }
  });
});

describe("FollowPosition", () => {
  test("moves when Litestream writes another transaction id beside the copy, and only then", () => {
    const path = walDatabase();
    const txid = `${path}-txid`;
    writeFileSync(txid, "0000000000000007\n");
    const position = new FollowPosition(path);
    expect(position.moved()).toBe(false);
    // Litestream writes a temporary file and renames it over the old one.
    writeFileSync(`${txid}.tmp`, "0000000000000008\n");
    renameSync(`${txid}.tmp`, txid);
    expect(position.moved()).toBe(true);
    expect(position.moved()).toBe(false);
    expect(position.replaced()).toBe(false);
  });

  test("says when another file stands at the copy's path (a fresh restore renamed in)", () => {
    const path = walDatabase();
    const position = new FollowPosition(path);
    writeFileSync(`${path}.tmp`, "");
    renameSync(`${path}.tmp`, path);
    expect(position.replaced()).toBe(true);
  });
});
