/**
 * Checks of the app's own database connection, as `createApp` left it: synchronous and busy_timeout are set per
 * connection, so reading them here proves the app sets them; journal mode and schema version belong to the file.
 */
import type { Database } from "bun:sqlite";
import type { Role } from "../../config";
import { currentVersion, LATEST_VERSION } from "../../storage/migrations";
import { type Check, fail, pass } from "./check-result";

const MIN_BUSY_TIMEOUT_MS = 5000;
const SYNCHRONOUS = ["OFF", "NORMAL", "FULL", "EXTRA"];

function pragma<T>(db: Database, name: string): T {
  return Object.values(db.query(`PRAGMA ${name}`).get() as Record<string, T>)[0] as T;
}

function check(name: string, run: Check["run"]): Check {
  return { name, run };
}

/**
 * The database checks, in the order `check` prints them. A standby's database is its copy of the primary's replica:
 * read in rollback-journal mode (storage/replica-copy.ts), and migrated by the primary, never here.
 */
export function databaseChecks(db: Database, role: Role = "primary"): Check[] {
  return [
    check("database.quick_check", async () => {
      let problems: string[];
      try {
        problems = (db.query("PRAGMA quick_check").all() as { quick_check: string }[]).map((r) => r.quick_check);
      } catch (error) {
        // SQLite may give up on a badly damaged file (SQLITE_CORRUPT) instead of listing problems.
        problems = [error instanceof Error ? error.message : String(error)];
      }
      if (problems.length === 1 && problems[0] === "ok") return pass("database.quick_check", "ok");
      return fail(
        "database.quick_check",
        `${problems.length} problem(s): ${problems.slice(0, 3).join("; ")}`,
        "the database is damaged: keep a copy of the file, then restore it from the replica or a backup",
      );
    }),
    check("database.journal_mode", async () => {
      const mode = pragma<string>(db, "journal_mode");
      if (role === "standby") {
        if (mode === "delete") return pass("database.journal_mode", "delete (a standby's copy, which Litestream's follow writes)");
        return fail(
          "database.journal_mode",
          `${mode}, want delete on a standby`,
          "start `shortener serve` with SHORTENER_ROLE=standby: it switches its copy to rollback-journal mode, which Litestream's follow needs",
        );
      }
      if (mode === "wal") return pass("database.journal_mode", "wal");
      return fail(
        "database.journal_mode",
        `${mode}, want wal`,
        "start `shortener serve` once: it switches the file to WAL (Litestream replicates only WAL databases)",
      );
    }),
    check("database.synchronous", async () => {
      const level = pragma<number>(db, "synchronous");
      const label = `${SYNCHRONOUS[level] ?? "unknown"} (${level})`;
      if (level === 2) return pass("database.synchronous", label);
      return fail(
        "database.synchronous",
        `${label} on the app's connection, want FULL (2)`,
        "the app must set synchronous=FULL on every connection (src/storage/database.ts), or an acknowledged link can be lost on power failure",
      );
    }),
    check("database.busy_timeout", async () => {
      const ms = pragma<number>(db, "busy_timeout");
      if (ms >= MIN_BUSY_TIMEOUT_MS) return pass("database.busy_timeout", `${ms} ms`);
      return fail(
        "database.busy_timeout",
        `${ms} ms on the app's connection, want at least ${MIN_BUSY_TIMEOUT_MS} ms`,
        "the app must set busy_timeout on every connection (src/storage/database.ts), or concurrent writers fail with SQLITE_BUSY",
      );
    }),
    check("database.migrations", async () => {
      const version = currentVersion(db);
      if (version === LATEST_VERSION) return pass("database.migrations", `schema version ${version}, none pending`);
      if (version > LATEST_VERSION) {
        return fail(
          "database.migrations",
          `schema version ${version} is newer than this binary knows (${LATEST_VERSION})`,
          role === "standby"
            ? "the primary runs a newer build: upgrade this node too"
            : "run the newer shortener binary that migrated it, or restore a backup taken before that upgrade",
        );
      }
      return fail(
        "database.migrations",
        `schema version ${version}, this binary expects ${LATEST_VERSION} (${LATEST_VERSION - version} migration(s) pending)`,
        role === "standby"
          ? "the primary runs an older build and migrates the replica when it is upgraded: upgrade it"
          : "run `shortener serve` once: it migrates forward on start, snapshotting the file first when a migration changes existing tables",
      );
    }),
  ];
}
