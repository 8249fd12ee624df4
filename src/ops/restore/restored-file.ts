/**
 * Checks a restored file before it may replace anything: `PRAGMA integrity_check` must say exactly "ok", and it
 * must be a shortener database this binary can serve. Opened read-only; the -wal and -shm files SQLite may create
 * beside it are removed when it is closed.
 */
import type { Database } from "bun:sqlite";
import { rmSync } from "node:fs";
import { openDatabase } from "../../storage/database";
import { HeartbeatStore } from "../../storage/heartbeat-store";
import { currentVersion, LATEST_VERSION } from "../../storage/migrations";
import { lastShortUrlId, ShortUrlStore } from "../../storage/short-url-store";
import { lastVisitId } from "../../storage/visit-store";
import { RestoreError } from "./restore-error";

/** The heartbeat table arrived with schema version 2. */
const HEARTBEAT_VERSION = 2;
const MAX_PROBLEMS_SHOWN = 3;

export interface RestoredFacts {
  schemaVersion: number;
  links: number;
  /** The newest heartbeat in the copy (epoch ms): about when the primary last wrote what was restored. */
  heartbeatAt: number | null;
  /**
   * The highest link id the copy ever gave (ids are AUTOINCREMENT, never reused): a link of the same lineage with a
   * higher id was created after this state, 0 when it never had a link.
   */
  lastLinkId: number;
  /**
   * The highest raw visit id in the copy: visits its primary recorded after this state have higher ones (ids are
   * rowids, given in order; only a deletion of the newest rows could hand one out again).
   */
  lastVisitId: number;
}

function integrityProblems(path: string): string[] {
  let db: Database | undefined;
  try {
    db = openDatabase(path, { readonly: true });
    const rows = db.query("PRAGMA integrity_check").all() as { integrity_check: string }[];
    const found = rows.map((r) => r.integrity_check);
    return found.length === 1 && found[0] === "ok" ? [] : found;
  } catch (error) {
    // SQLite may give up on a badly damaged file (SQLITE_CORRUPT) instead of listing problems.
    return [error instanceof Error ? error.message : String(error)];
  } finally {
    db?.close();
  }
}

function facts(path: string): RestoredFacts {
  const db = openDatabase(path, { readonly: true });
  try {
    const schemaVersion = currentVersion(db);
    if (schemaVersion === 0) {
      throw new RestoreError(
        `the restored file is not a shortener database (schema version 0). Try: check that --litestream-config names this node's replica`,
      );
    }
    if (schemaVersion > LATEST_VERSION) {
      throw new RestoreError(
        `the restored database has schema version ${schemaVersion}, newer than this binary knows (${LATEST_VERSION}). Try: restore with the newer shortener binary that wrote it`,
      );
    }
    const links = new ShortUrlStore(db).list({}, { field: "dateCreated", dir: "ASC" }, 0, 0).total;
    const heartbeatAt = schemaVersion >= HEARTBEAT_VERSION ? new HeartbeatStore(db).latest() : null;
    return { schemaVersion, links, heartbeatAt, lastLinkId: lastShortUrlId(db), lastVisitId: lastVisitId(db) };
  } finally {
    db.close();
  }
}

/** Integrity-checks the restored file at `path` and reads what the report shows; throws a RestoreError if unfit. */
export function checkRestoredFile(path: string): RestoredFacts {
  try {
    const problems = integrityProblems(path);
    if (problems.length > 0) {
      throw new RestoreError(
        `the restored copy fails PRAGMA integrity_check (${problems.length} problem(s): ${problems.slice(0, MAX_PROBLEMS_SHOWN).join("; ")}); the replica holds a damaged database at that point. Try: --at an earlier time, from before the damage`,
      );
    }
    return facts(path);
  } finally {
    for (const suffix of ["-wal", "-shm"]) rmSync(`${path}${suffix}`, { force: true });
  }
}
