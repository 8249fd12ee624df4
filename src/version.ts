/** Build facts, stamped in by scripts/build.ts with --define; a source run reports "dev". */
import { Database } from "bun:sqlite";

declare const __SHORTENER_VERSION__: string;
declare const __SHORTENER_COMMIT__: string;

export const VERSION = typeof __SHORTENER_VERSION__ === "string" ? __SHORTENER_VERSION__ : "0.1.0-dev";
export const COMMIT = typeof __SHORTENER_COMMIT__ === "string" ? __SHORTENER_COMMIT__ : "unknown";

/** The Shlink server version whose REST API v3 we implement; Shlink's web UI enables features by it. */
export const SHLINK_API_VERSION = "4.0.0";

let sqliteVersion: string | undefined;

export function sqliteVersionString(): string {
  if (sqliteVersion === undefined) {
    const db = new Database(":memory:");
    sqliteVersion = (db.query("SELECT sqlite_version() AS v").get() as { v: string }).v;
    db.close();
  }
  return sqliteVersion;
}
