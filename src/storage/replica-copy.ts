/**
 * A standby's database is the copy that `litestream restore -f` keeps up to date (DESIGN.md, Failover). Litestream
 * writes the replica's pages straight into that file while it holds SQLite's rollback-journal locks (the PENDING
 * byte and the SHARED range), so a reader is kept out of a half-applied transaction only if it takes those locks
 * too: only if the file is in rollback-journal mode. A restored copy starts with the primary's header, which says
 * WAL, and a connection in WAL mode holds a SHARED lock for as long as it is open: Litestream's next write then
 * waits for ever, and the standby serves the state of its start. Litestream marks the copy rollback-journal itself
 * only when a transaction rewrites page 1, so the standby switches it first (PRAGMA journal_mode = DELETE, which
 * SQLite does under an EXCLUSIVE lock, so never in the middle of Litestream's write), and then reads it read-only.
 */
import { Database, SQLiteError } from "bun:sqlite";
import { closeSync, existsSync, openSync, readFileSync, readSync, statSync } from "node:fs";
import { currentVersion, LATEST_VERSION } from "./migrations";

/** Whether `path` is a copy that `litestream restore -f` follows: it writes its position beside it (`<copy>-txid`). */
export function isFollowedCopy(path: string): boolean {
  return existsSync(`${path}-txid`);
}

/** How long the switch out of WAL mode keeps trying while another process holds the file (Litestream mid-write). */
export const JOURNAL_SWITCH_WAIT_MS = 30_000;
/** Each try's busy_timeout: short, so that Litestream, waiting for our SHARED lock to go, is not held for long. */
const TRY_BUSY_MS = 200;

/** The journal mode in the file's header (bytes 18 and 19: 2 for WAL, 1 for rollback journal), or null when unreadable. */
export function headerJournalMode(path: string): "wal" | "rollback" | null {
  if (!existsSync(path)) return null;
  const fd = openSync(path, "r");
  try {
    const bytes = Buffer.alloc(2);
    if (readSync(fd, bytes, 0, 2, 18) !== 2) return null;
    if (bytes[0] === 2 && bytes[1] === 2) return "wal";
    if (bytes[0] === 1 && bytes[1] === 1) return "rollback";
    return null;
  } finally {
    closeSync(fd);
  }
}

/**
 * Switches the copy at `path` to rollback-journal mode when its header says WAL. While another process holds it
 * (Litestream applying a transaction), each try gives up after a short wait and closes, so Litestream can finish,
 * and the next one starts after a pause; after `waitMs`, throws. A process that keeps the file open in WAL mode is
 * not Litestream: a primary serving it, which a standby must never read.
 */
export async function useRollbackJournal(path: string, waitMs = JOURNAL_SWITCH_WAIT_MS): Promise<void> {
  const deadline = performance.now() + waitMs;
  for (let tries = 1; headerJournalMode(path) === "wal"; tries++) {
    const db = new Database(path, { readwrite: true, create: false, strict: true });
    try {
      db.exec(`PRAGMA busy_timeout = ${TRY_BUSY_MS}`);
      db.query("PRAGMA journal_mode = DELETE").get();
    } catch (error) {
      if (!(error instanceof SQLiteError && (error.code === "SQLITE_BUSY" || error.code === "SQLITE_LOCKED"))) throw error;
    } finally {
      db.close();
    }
    if (headerJournalMode(path) !== "wal") return;
    if (performance.now() + TRY_BUSY_MS > deadline) {
      throw new Error(
        `cannot switch ${path} out of WAL mode: another process has kept it open for ${Math.round(waitMs / 1000)} s (${tries} tries). ` +
          "A standby reads the copy that `litestream restore -f` keeps, never a database a primary serves: point --data-dir at that copy",
      );
    }
    await Bun.sleep(TRY_BUSY_MS);
  }
}

/**
 * Where Litestream's follow stands in the copy: it writes the last transaction it applied to `<copy>-txid` (atomically,
 * after syncing the pages). SQLite cannot tell by itself: it notices another process's change by the change counter
 * in page 1, which Litestream only rewrites when the primary's transaction changed page 1 (in WAL mode, most do
 * not). So the standby reads with no page cache (openDatabase's pageCache: false: every transaction reads its pages
 * afresh, under the locks that keep Litestream out), and drops what it cached above SQLite when this moves.
 */
export class FollowPosition {
  readonly #txidPath: string;
  readonly #inode: number | null;
  #last: string | null;

  constructor(readonly copyPath: string) {
    this.#txidPath = `${copyPath}-txid`;
    this.#inode = inodeOf(copyPath);
    this.#last = this.#read();
  }

  #read(): string | null {
    try {
      return readFileSync(this.#txidPath, "utf8").trim();
    } catch {
      return null;
    }
  }

  /** Whether Litestream has applied a transaction since the last call. */
  moved(): boolean {
    const now = this.#read();
    if (now === this.#last) return false;
    this.#last = now;
    return true;
  }

  /**
   * Whether another file now stands at the copy's path (a fresh restore renamed in): an open connection reads the old
   * one for as long as it lives.
   */
  replaced(): boolean {
    const now = inodeOf(this.copyPath);
    return now !== null && now !== this.#inode;
  }
}

function inodeOf(path: string): number | null {
  try {
    return statSync(path).ino;
  } catch {
    return null;
  }
}

/**
 * Why a standby cannot serve its copy, or null: it serves it only in the schema this build reads (the primary
 * migrates it, a standby cannot), and only while its connection reads the file at the copy's path (`replaced` is set
 * by commands/standby.ts when a fresh restore replaced it).
 */
export function copyProblem(db: Database, copy: { replaced: boolean }): string | null {
  if (copy.replaced) return "the copy was replaced by a fresh restore: restart this node to serve it";
  const found = currentVersion(db);
  if (found === LATEST_VERSION) return null;
  const older = found < LATEST_VERSION ? "the primary runs an older build" : "this node runs an older build than the primary";
  return `the replica's schema is version ${found} and this build reads version ${LATEST_VERSION}: ${older}`;
}
