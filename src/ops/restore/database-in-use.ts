/**
 * Whether a database file is in use, so a restore never replaces it under a running process. Two independent
 * signs: a `shortener serve` on this data dir answering its ops listener's `GET /control/status`, and any
 * process holding a SQLite file lock on the database or its -wal/-shm files (Linux lists every POSIX lock in
 * /proc/locks; a SQLite connection in WAL mode holds one on the -shm file for as long as it is open, and so does
 * `litestream replicate`).
 */
import { existsSync, readFileSync, statSync } from "node:fs";
import type { HostPort } from "../../config";

const STATUS_TIMEOUT_MS = 2000;
const PROC_LOCKS = "/proc/locks";

export interface RunningServer {
  pid: number;
  address: string;
}

export interface LockHolder {
  /** -1 when the kernel does not know (an open-file-description lock). */
  pid: number;
  /** The process's name (/proc/PID/comm), when readable. */
  name: string | null;
}

/** The shortener answering /control/status on `ops` when it serves `dataDir`, else null. */
export async function serverOnDataDir(ops: HostPort, dataDir: string): Promise<RunningServer | null> {
  const host = ops.hostname === "0.0.0.0" ? "127.0.0.1" : ops.hostname === "::" ? "::1" : ops.hostname;
  const address = `${host.includes(":") ? `[${host}]` : host}:${ops.port}`;
  let status: { service?: unknown; pid?: unknown; dataDir?: unknown };
  try {
    const response = await fetch(`http://${address}/control/status`, {
      signal: AbortSignal.timeout(STATUS_TIMEOUT_MS),
      redirect: "manual",
    });
    if (!response.ok) return null;
    status = (await response.json()) as typeof status;
  } catch {
    // Nothing answers there, or not a shortener: no server on this ops address. The lock check still runs.
    return null;
  }
  if (status.service !== "shortener" || status.dataDir !== dataDir) return null;
  return { pid: typeof status.pid === "number" ? status.pid : -1, address };
}

/** Linux's st_dev as /proc/locks prints it: MAJOR:MINOR in hex. */
function deviceOf(dev: bigint): string {
  const major = ((dev >> 8n) & 0xfffn) | ((dev >> 32n) & ~0xfffn);
  const minor = (dev & 0xffn) | ((dev >> 12n) & ~0xffn);
  return `${major.toString(16).padStart(2, "0")}:${minor.toString(16).padStart(2, "0")}`;
}

function processName(pid: number): string | null {
  try {
    return readFileSync(`/proc/${pid}/comm`, "utf8").trim();
  } catch {
    return null;
  }
}

/**
 * The processes holding a lock on `path`, its -wal, -shm or -journal file, from /proc/locks; null when the system
 * has no /proc/locks (not Linux), so the caller can say the lock check did not run.
 */
export function lockHolders(path: string): LockHolder[] | null {
  if (!existsSync(PROC_LOCKS)) return null;
  const files = new Set<string>();
  for (const suffix of ["", "-wal", "-shm", "-journal"]) {
    if (!existsSync(path + suffix)) continue;
    const st = statSync(path + suffix, { bigint: true });
    files.add(`${deviceOf(st.dev)}:${st.ino}`);
  }
  if (files.size === 0) return [];
  const pids = new Set<number>();
  // "1: POSIX  ADVISORY  READ 8312 fe:00:10027269 128 128"; a waiter's line has "->" after the number.
  for (const line of readFileSync(PROC_LOCKS, "utf8").split("\n")) {
    const match = /^\d+:\s+(?:->\s+)?\S+\s+\S+\s+\S+\s+(-?\d+)\s+([0-9a-f]+:[0-9a-f]+:\d+)\s/.exec(line);
    if (match && files.has(match[2] as string) && Number(match[1]) !== process.pid) pids.add(Number(match[1]));
  }
  return [...pids].sort((a, b) => a - b).map((pid) => ({ pid, name: pid > 0 ? processName(pid) : null }));
}

export function describeHolders(holders: readonly LockHolder[]): string {
  return holders.map((h) => (h.pid > 0 ? `pid ${h.pid}${h.name === null ? "" : ` (${h.name})`}` : "a process of unknown pid")).join(", ");
}
