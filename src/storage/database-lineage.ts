/**
 * All SQL for the database's lineage: a random id that names the history this file's ids were given in. A standby's
 * copy and both colours share their primary's; every restore that may be served (`restore`, `promote`) gives the file
 * it swaps in a new one, since from there the same link and visit ids are given out again to other rows than in the
 * file it was restored from. `import db` names the batches of visits it takes from a file by that file's lineage
 * (ops/import-later-visits.ts), so no run takes them twice, and no run from another lineage takes them for its own.
 */
import { Database } from "bun:sqlite";
import { existsSync, statSync } from "node:fs";
import { currentVersion } from "./schema-version";

/** Migration 18: a new table of one row, its id made by SQLite at migration. */
export const LINEAGE_VERSION = 18;
export const DATABASE_LINEAGE_SCHEMA = `
  CREATE TABLE database_lineage (
    id TEXT NOT NULL
  ) STRICT;
  INSERT INTO database_lineage (id) VALUES (lower(hex(randomblob(16))));
`;

/** The lineage of an open database, or null when its schema predates it. */
export function lineageOf(db: Database): string | null {
  if (currentVersion(db) < LINEAGE_VERSION) return null;
  return db.query<{ id: string }, []>("SELECT id FROM database_lineage").get()?.id ?? null;
}

/**
 * Gives the database file at `path` (not in use) a new lineage, when its schema has one (an older file gets its
 * first when it migrates). Returns the new id, or null.
 */
export function renewLineage(path: string): string | null {
  const db = new Database(path, { strict: true });
  let id: string;
  try {
    db.exec("PRAGMA busy_timeout = 5000");
    if (currentVersion(db) < LINEAGE_VERSION) return null;
    const renew = db.query<{ id: string }, []>("UPDATE database_lineage SET id = lower(hex(randomblob(16))) RETURNING id");
    const row = db.transaction(() => renew.get()).immediate();
    if (row === null) throw new Error(`${path} has no lineage row to renew`);
    id = row.id;
  } finally {
    db.close();
  }
  // Closing folds a WAL into the file and removes it: a file moved elsewhere without its WAL must not lose the write.
  if (existsSync(`${path}-wal`) && statSync(`${path}-wal`).size > 0) {
    throw new Error(`the lineage written into ${path} is still in its -wal after closing it`);
  }
  return id;
}
