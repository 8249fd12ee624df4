import type { Database } from "bun:sqlite";

/**
 * The schema version a database is at (PRAGMA user_version). Its own module, so that a store whose table a migration
 * creates can read it without importing migrations.ts, which imports that store's schema.
 */
export function currentVersion(db: Database): number {
  return (db.query("PRAGMA user_version").get() as { user_version: number }).user_version;
}
