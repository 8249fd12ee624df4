/**
 * Opens the SQLite database with the pragmas the product relies on and runs pending migrations.
 * Litestream owns checkpoints: the app never runs TRUNCATE or RESTART checkpoints.
 */
import { Database, SQLiteError } from "bun:sqlite";
import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import { type MigrationEvent, runMigrations } from "./migrations";

/** The busy_timeout every connection has, in milliseconds. */
export const BUSY_TIMEOUT_MS = 5000;

export interface OpenOptions {
  readonly?: boolean;
  /** Create the file (and its directory) when missing (default true; `check` reports a missing database instead). */
  create?: boolean;
  /**
   * Bring the file up to date: switch it to WAL and apply pending migrations (default true). `check` passes false
   * so that it inspects the file as found and reports what is out of date instead of fixing it.
   */
  migrate?: boolean;
  /** Told before and after each migration it applies (`serve` logs them). */
  onMigration?: (event: MigrationEvent) => void;
  /**
   * Turn SQLite's automatic checkpoint off on this connection (wal_autocheckpoint=0), because Litestream or the
   * background checkpointer (checkpointer.ts) checkpoints instead. The automatic one runs inside the committing
   * call on the event loop: measured, it stalls redirects by 30-130 ms every ~1000 WAL pages.
   */
  noAutomaticCheckpoints?: boolean;
  /**
   * journal_size_limit on this connection: a WAL file that a burst grew is cut back to this size when SQLite starts
   * the WAL over. For a node that owns its checkpoints; Litestream keeps the WAL's size in check itself.
   */
  walSizeLimitBytes?: number;
  /**
   * Keep read pages between transactions (default true). A standby passes false: Litestream changes its copy without
   * SQLite noticing (replica-copy.ts), so a page kept from one transaction could be stale in the next.
   */
  pageCache?: boolean;
}

/**
 * Opens the database at `path` (creating it if needed) in WAL mode, migrated, with synchronous=FULL and
 * busy_timeout=5000 on this connection.
 */
export function openDatabase(path: string, options: OpenOptions = {}): Database {
  const readonly = options.readonly ?? false;
  const create = !readonly && (options.create ?? true);
  const migrate = !readonly && (options.migrate ?? true);
  if (create) mkdirSync(dirname(path), { recursive: true });
  const db = readonly
    ? new Database(path, { readonly: true, strict: true })
    : new Database(path, { create, readwrite: true, strict: true });
  try {
    db.exec(`PRAGMA busy_timeout = ${BUSY_TIMEOUT_MS}`);
    if (migrate) db.exec("PRAGMA journal_mode = WAL");
    db.exec("PRAGMA synchronous = FULL");
    db.exec("PRAGMA foreign_keys = ON");
    if (options.noAutomaticCheckpoints) db.exec("PRAGMA wal_autocheckpoint = 0");
    if (options.pageCache === false) db.exec("PRAGMA cache_size = 0");
    if (options.walSizeLimitBytes !== undefined) db.exec(`PRAGMA journal_size_limit = ${options.walSizeLimitBytes}`);
    if (migrate) runMigrations(db, path, options.onMigration);
  } catch (error) {
    // Not left open behind a failure that the caller may retry (serve waits out a full disk).
    db.close();
    throw error;
  }
  return db;
}

/** performance.now() when a write transaction of this thread last let go of the write lock (per thread: module state). */
let ownWriteEndedAt = Number.NEGATIVE_INFINITY;

/**
 * Whether this thread held the write lock within the last `withinMs`: while a stream of link writes commits back to
 * back, it is the lock's likely holder, and can let it go by pausing. Another process's lock it cannot hurry.
 */
export function wroteLately(withinMs: number): boolean {
  return performance.now() - ownWriteEndedAt <= withinMs;
}

/** What writeTransactionIfFree did: ran `fn` and committed, or found the write lock held and ran nothing. */
export type LockAttempt<T> = { value: T } | { busy: SQLiteError };

/**
 * Like writeTransaction, but never waits for another process's write lock: when BEGIN IMMEDIATE meets it
 * (SQLITE_BUSY), nothing has run and the error comes back as `busy`, so the caller can wait on a timer instead of
 * holding the event loop in SQLite's busy handler. Once the lock is taken, `fn` runs with the usual busy_timeout.
 */
export function writeTransactionIfFree<T>(db: Database, fn: () => T): LockAttempt<T> {
  let began = false;
  db.exec("PRAGMA busy_timeout = 0");
  try {
    const value = db
      .transaction(() => {
        began = true;
        db.exec(`PRAGMA busy_timeout = ${BUSY_TIMEOUT_MS}`);
        return fn();
      })
      .immediate();
    return { value };
  } catch (error) {
    if (!began && error instanceof SQLiteError && error.code === "SQLITE_BUSY") return { busy: error };
    throw error;
  } finally {
    if (began) ownWriteEndedAt = performance.now();
    else db.exec(`PRAGMA busy_timeout = ${BUSY_TIMEOUT_MS}`);
  }
}

/** The longest pause between two tries for a write lock another process holds (the first is 1 ms, then doubling). */
export const MAX_LOCK_RETRY_MS = 50;

/** The pause before try number `tries` + 1 for another process's write lock: 1 ms, doubling up to MAX_LOCK_RETRY_MS. */
export function lockRetryPause(tries: number): number {
  return Math.min(MAX_LOCK_RETRY_MS, 2 ** tries);
}

/**
 * Like writeTransactionIfFree, but the commit does not wait for fsync (synchronous=NORMAL for this one transaction):
 * for counters and heartbeats, where losing the last second on power loss is acceptable, and an fsync every second
 * on the event loop is not. The next FULL commit (any link write) makes it durable too. Link data never goes
 * through here.
 */
export function relaxedWriteTransactionIfFree<T>(db: Database, fn: () => T): LockAttempt<T> {
  db.exec("PRAGMA synchronous = NORMAL");
  try {
    return writeTransactionIfFree(db, fn);
  } finally {
    db.exec("PRAGMA synchronous = FULL");
  }
}

/** relaxedWriteTransactionIfFree for a caller that cannot wait: another process's write lock throws its SQLITE_BUSY at once. */
export function relaxedWriteTransaction<T>(db: Database, fn: () => T): T {
  const attempt = relaxedWriteTransactionIfFree(db, fn);
  if ("busy" in attempt) throw attempt.busy;
  return attempt.value;
}

/**
 * How long a background write (visit flush, heartbeat, purge, webhook bookkeeping) waits for another process's write
 * lock (the other colour migrating the shared database, or flushing its own visits) before it fails with SQLITE_BUSY
 * and leaves the work to its next run.
 */
export const RELAXED_LOCK_WAIT_MS = 1000;

/**
 * Runs `attempt` until it finds the write lock free, pausing on timers in between (lockRetryPause), so the event loop
 * (every redirect) goes on while another process holds the lock. Once the next pause would pass `waitMs`, throws
 * the last try's SQLITE_BUSY.
 */
export async function whenLockFree<T>(attempt: () => LockAttempt<T>, waitMs: number): Promise<T> {
  const started = performance.now();
  for (let tries = 0; ; tries++) {
    const result = attempt();
    if ("value" in result) return result.value;
    const pause = lockRetryPause(tries);
    if (performance.now() - started + pause > waitMs) throw result.busy;
    await Bun.sleep(pause);
  }
}

/** A relaxed write (relaxedWriteTransactionIfFree) that waits up to `waitMs` for another process's lock, on timers. */
export function relaxedWrite<T>(db: Database, fn: () => T, waitMs = RELAXED_LOCK_WAIT_MS): Promise<T> {
  return whenLockFree(() => relaxedWriteTransactionIfFree(db, fn), waitMs);
}

/** Runs `fn` inside BEGIN IMMEDIATE ... COMMIT, so the write lock is taken up front and busy_timeout applies. */
export function writeTransaction<T>(db: Database, fn: () => T): T {
  return db.transaction(fn).immediate();
}

/** What one checkpoint did: WAL frames in the log, frames now in the database, and how long it took. */
export interface CheckpointResult {
  log: number;
  checkpointed: number;
  busy: number;
  seconds: number;
}

/** A PASSIVE checkpoint on `db` (the only kind the app runs: it never waits for readers or writers). */
export function passiveCheckpoint(db: Database): CheckpointResult {
  const started = performance.now();
  const row = db.query("PRAGMA wal_checkpoint(PASSIVE)").get() as { busy: number; log: number; checkpointed: number };
  return { ...row, seconds: (performance.now() - started) / 1000 };
}

/** Whether `db` answers a query now (readiness asks at every probe). */
export function usableCheck(db: Database): () => boolean {
  const ping = db.query("SELECT 1");
  return () => {
    try {
      ping.get();
      return true;
    } catch {
      return false;
    }
  };
}
