/**
 * Putting a restored file in place of a database, atomically and durably. A database is up to four files:
 * `db`, `db-wal`, `db-shm` and (outside WAL mode) `db-journal`. SQLite replays a -wal or -journal it finds beside
 * a database onto it, whatever file that database now is, so the old sidecars must never meet the new file: they go
 * with the old database (kept aside) or are removed, before the new file takes the name.
 */
import { closeSync, existsSync, fsyncSync, linkSync, openSync, renameSync, rmSync } from "node:fs";
import { dirname } from "node:path";

/** The files that make up one SQLite database besides the main file. */
export const SIDECARS = ["-wal", "-shm", "-journal"] as const;
const MAX_NAME_ATTEMPTS = 100;

/** The names of the database files at `path` that exist: the path itself and its sidecars. */
export function existingFiles(path: string): string[] {
  return [path, ...SIDECARS.map((s) => path + s)].filter((p) => existsSync(p));
}

export function fsyncFile(path: string): void {
  const fd = openSync(path, "r");
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Makes renames, links and removals in `dir` survive a power loss. */
export function fsyncDirectory(dir: string): void {
  fsyncFile(dir);
}

/** 20261122T101500Z: ISO 8601 basic format, which sorts by time and needs no quoting in a shell. */
function compactUtc(ms: number): string {
  return new Date(ms)
    .toISOString()
    .replace(/\.\d+Z$/, "Z")
    .replace(/[-:]/g, "");
}

/** `<db>.before-restore-<UTC time>`, with -2, -3, … when a restore in the same second already took that name. */
export function asideName(databasePath: string, now: number): string {
  const base = `${databasePath}.before-restore-${compactUtc(now)}`;
  for (let n = 1; n <= MAX_NAME_ATTEMPTS; n++) {
    const name = n === 1 ? base : `${base}-${n}`;
    if (existingFiles(name).length === 0) return name;
  }
  throw new Error(`${MAX_NAME_ATTEMPTS} files named ${base}* exist already: remove old ones first`);
}

/**
 * Keeps the live database at `databasePath` as `aside` (with the same sidecars) by hard-linking every file: the
 * live names stay complete until the swap. Returns the kept paths; on failure, removes the links it made.
 */
export function keepAside(databasePath: string, aside: string): string[] {
  const kept: string[] = [];
  try {
    for (const suffix of ["", ...SIDECARS]) {
      if (!existsSync(databasePath + suffix)) continue;
      linkSync(databasePath + suffix, aside + suffix);
      kept.push(aside + suffix);
    }
    fsyncDirectory(dirname(databasePath));
  } catch (error) {
    for (const path of kept) rmSync(path, { force: true });
    throw error;
  }
  return kept;
}

/**
 * Replaces the database at `target` with the file `restored` (in the same directory): removes the target's
 * sidecars, renames `restored` over it, and fsyncs the directory. A crash between the removal and the rename
 * leaves the target without its -wal; callers keep a complete copy aside (keepAside) before calling this.
 */
export function swapIn(restored: string, target: string): void {
  for (const suffix of SIDECARS) rmSync(target + suffix, { force: true });
  renameSync(restored, target);
  fsyncDirectory(dirname(target));
}
