/**
 * Read-only SQL over a restored copy of the database and the live one, for `shortener drill`: integrity, the
 * newest heartbeat, and how the copy's links compare with the live database's. Both are opened read-only.
 */
import type { Database } from "bun:sqlite";
import { openDatabase } from "./database";
import { HeartbeatStore } from "./heartbeat-store";
import { lastShortUrlId } from "./short-url-store";

/** Heartbeats and link creation times come from the same clock; this allows for it stepping back a little. */
const CLOCK_SLACK_MS = 1000;

export interface CopyFacts {
  /** `PRAGMA integrity_check` rows: exactly ["ok"] for a sound file. */
  integrity: string[];
  /** The newest heartbeat (epoch ms), or null if the copy has none. */
  heartbeatAt: number | null;
  links: number;
}

export interface LinkComparison {
  liveLinks: number;
  restoredLinks: number;
  /** Live links the copy lacks that were created after its newest heartbeat: the replica's lag explains them. */
  newerThanCopy: number;
  /** Live links the copy lacks although they were created before its newest heartbeat: lost by the replica. */
  missingFromCopy: number;
  /** Links in the copy that the live database no longer has (deleted since the copy's state). */
  deletedSince: number;
  /** The highest link id ever handed out (ids are never reused), live and in the copy. */
  liveLastId: number;
  restoredLastId: number;
}

function integrityRows(db: Database): string[] {
  try {
    return (db.query("PRAGMA integrity_check").all() as { integrity_check: string }[]).map((r) => r.integrity_check);
  } catch (error) {
    // SQLite may give up on a badly damaged file (SQLITE_CORRUPT) instead of listing problems.
    return [error instanceof Error ? error.message : String(error)];
  }
}

const linkCount = (db: Database, schema: string) => (db.query(`SELECT count(*) AS n FROM ${schema}.short_urls`).get() as { n: number }).n;

/** Integrity, newest heartbeat and link count of the database file at `path`. */
export function inspectCopy(path: string, options: { integrity: boolean } = { integrity: true }): CopyFacts {
  const db = openDatabase(path, { readonly: true });
  try {
    return {
      integrity: options.integrity ? integrityRows(db) : ["ok"],
      heartbeatAt: new HeartbeatStore(db).latest(),
      links: linkCount(db, "main"),
    };
  } finally {
    db.close();
  }
}

/**
 * Compares the restored copy's links with the live database's, in one read transaction over both. The copy's
 * newest heartbeat `copyHeartbeatAt` splits the live links it lacks into those its lag explains and those it lost.
 */
export function compareLinks(livePath: string, copyPath: string, copyHeartbeatAt: number | null): LinkComparison {
  const db = openDatabase(livePath, { readonly: true });
  try {
    db.run("ATTACH DATABASE ? AS copy", [copyPath]);
    const cutoff = copyHeartbeatAt === null ? Number.MIN_SAFE_INTEGER : copyHeartbeatAt - CLOCK_SLACK_MS;
    return db.transaction(() => {
      const lacking = db
        .query(
          `SELECT coalesce(sum(l.created_at < ?1), 0) AS missing, coalesce(sum(l.created_at >= ?1), 0) AS newer
           FROM main.short_urls l WHERE NOT EXISTS (SELECT 1 FROM copy.short_urls c WHERE c.id = l.id)`,
        )
        .get(cutoff) as { missing: number; newer: number };
      const deleted = db
        .query("SELECT count(*) AS n FROM copy.short_urls c WHERE NOT EXISTS (SELECT 1 FROM main.short_urls l WHERE l.id = c.id)")
        .get() as { n: number };
      return {
        liveLinks: linkCount(db, "main"),
        restoredLinks: linkCount(db, "copy"),
        newerThanCopy: lacking.newer,
        missingFromCopy: lacking.missing,
        deletedSince: deleted.n,
        liveLastId: lastShortUrlId(db, "main"),
        restoredLastId: lastShortUrlId(db, "copy"),
      };
    })();
  } finally {
    db.close();
  }
}
