/** The copy of the database that a migration changing existing tables takes first, so it can be undone by hand. */
import type { Database } from "bun:sqlite";
import { existsSync, renameSync, rmSync } from "node:fs";

/**
 * A copy of the database as it is (VACUUM INTO), made under a temporary name and renamed into place, so that
 * `snapshot` exists only whole: a copy cut short (a full disk, a kill) is removed or replaced at the next try, never
 * taken for the snapshot. An existing snapshot (from an earlier try of the same migration) is kept.
 */
export function snapshotBefore(db: Database, snapshot: string): void {
  if (existsSync(snapshot)) return;
  const partial = `${snapshot}.partial`;
  rmSync(partial, { force: true });
  try {
    db.run("VACUUM INTO ?", [partial]);
    renameSync(partial, snapshot);
  } catch (error) {
    rmSync(partial, { force: true });
    throw error;
  }
}
