/**
 * Opens the SQLite database with the pragmas the product relies on and runs pending migrations.
 * Litestream owns checkpoints: the app never runs TRUNCATE or RESTART checkpoints.
 */
import { Database } from "bun:sqlite";
import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import { runMigrations } from "./migrations";

export interface OpenOptions {
  readonly?: boolean;
  /** Apply pending migrations (the primary does; `check` only inspects). */
  migrate?: boolean;
}

/** Opens (creating if needed) the database at `path` in WAL mode with synchronous=FULL and busy_timeout=5000. */
export function openDatabase(path: string, options: OpenOptions = {}): Database {
  const readonly = options.readonly ?? false;
  if (!readonly) mkdirSync(dirname(path), { recursive: true });
  const db = readonly
    ? new Database(path, { readonly: true, strict: true })
    : new Database(path, { create: true, readwrite: true, strict: true });
  db.exec("PRAGMA busy_timeout = 5000");
  if (!readonly) db.exec("PRAGMA journal_mode = WAL");
  db.exec("PRAGMA synchronous = FULL");
  db.exec("PRAGMA foreign_keys = ON");
  if (!readonly && (options.migrate ?? true)) runMigrations(db, path);
  return db;
}

/** Runs `fn` inside BEGIN IMMEDIATE ... COMMIT, so the write lock is taken up front and busy_timeout applies. */
export function writeTransaction<T>(db: Database, fn: () => T): T {
  return db.transaction(fn).immediate();
}
