/**
 * `serve` on a full disk. SQLite cannot open a WAL database without room for its -shm and -wal files (a clean stop
 * of the last connection deletes them), and a pending migration needs room for its snapshot and its writes. Exiting
 * would have systemd restart the node five times in ten seconds and then give up, so the node would stay down
 * after the disk is freed. Instead serve waits: it logs `database_open_failed` (then once a minute) with the free
 * space and a hint, tries again every few seconds without listening (a health-checking proxy sends traffic to the
 * other node meanwhile), and starts as soon as the database opens (`database_open_recovered`).
 */
import { SQLiteError } from "bun:sqlite";
import { FailureStreak } from "../telemetry/failure-streak";
import { diskFreeBytes } from "../telemetry/system-stats";

/** Below this much free space an I/O error opening the database is taken for a full disk. */
const NEARLY_FULL_BYTES = 1024 * 1024;
const RETRY_MS = 2000;

/** Whether `error` means the data directory's disk has no room for what SQLite had to write. */
export function isOutOfSpace(error: unknown, dataDir: string): boolean {
  if ((error as NodeJS.ErrnoException).code === "ENOSPC") return true;
  if (!(error instanceof SQLiteError)) return false;
  if (error.code === "SQLITE_FULL") return true;
  return error.code?.startsWith("SQLITE_IOERR") === true && freeBytes(dataDir) < NEARLY_FULL_BYTES;
}

function freeBytes(dataDir: string): number {
  try {
    return diskFreeBytes(dataDir);
  } catch {
    return Number.POSITIVE_INFINITY;
  }
}

/** Runs `open` until it succeeds, waiting while it fails for want of space; any other failure is thrown. */
export async function openWhenSpace<T>(open: () => T, dataDir: string, retryMs = RETRY_MS): Promise<T> {
  const streak = new FailureStreak("database_open");
  for (;;) {
    try {
      const opened = open();
      streak.succeeded();
      return opened;
    } catch (error) {
      if (!isOutOfSpace(error, dataDir)) throw error;
      streak.failed({
        error: error instanceof Error ? error.message : String(error),
        data_dir: dataDir,
        free_bytes: freeBytes(dataDir),
        hint: "the data directory's disk is full: free space (runbooks/disk-filling.md); serve starts once the database opens",
      });
      await Bun.sleep(retryMs);
    }
  }
}
