/**
 * Unit tests' databases on disk (WAL needs a real file): each opened with the product's openDatabase in its own
 * temporary directory, and closed and removed after every test. Call at a test file's top level.
 */
import type { Database } from "bun:sqlite";
import { afterEach } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openDatabase } from "../../src/storage/database";

export function scratchDatabases(prefix: string) {
  const dirs: string[] = [];
  const dbs: Database[] = [];
  afterEach(() => {
    for (const db of dbs.splice(0)) db.close();
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  });
  return {
    /** A new migrated database file; `path` lets a test open a second connection (see `closeLater`). */
    open(): { db: Database; path: string } {
      const dir = mkdtempSync(join(tmpdir(), prefix));
      dirs.push(dir);
      const path = join(dir, "shortener.db");
      const db = openDatabase(path);
      dbs.push(db);
      return { db, path };
    },
    /** Closes another connection after the test, with the rest. */
    closeLater(db: Database): Database {
      dbs.push(db);
      return db;
    },
  };
}
