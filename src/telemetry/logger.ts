/**
 * JSON lines, one object per event, `time`, `level` and `event` first: warnings and errors on stderr, the rest on
 * stdout. Never pass secrets.
 * Lifecycle events are written at once; per-request access lines are buffered and written in batches so the
 * redirect path never waits on stdout.
 */
import { LineSink } from "./line-sink";

type Level = "debug" | "info" | "warn" | "error";

const FLUSH_BYTES = 64 * 1024;
const FLUSH_INTERVAL_MS = 100;
/** Bytes of lines that may wait in memory once stdout's reader falls behind: ~40 000 access lines. */
const MAX_BACKLOG_BYTES = 8 * 1024 * 1024;

/**
 * Access lines wait as UTF-8 bytes in one reused buffer, not as a growing string: a string of up to 100 ms of
 * lines outlived the young collections that came meanwhile, and each of its pieces was promoted to the old
 * generation, to be freed only by a full collection (bench/RESULTS.md, fifteenth session).
 */
const pending = Buffer.allocUnsafe(2 * FLUSH_BYTES);
let used = 0;
let lines = 0;
let timer: Timer | undefined;

/** stdout, queuing at most MAX_BACKLOG_BYTES while unread: access lines past that are dropped and counted. */
const stdout = new LineSink(
  process.stdout,
  MAX_BACKLOG_BYTES,
  (dropped, stalledMs) => log.warn("access_log_lines_dropped", { lines: dropped, stdout_stalled_ms: Math.round(stalledMs) }),
  // Said on stderr, which may still be read (a closed stderr has nowhere to say it); only by a process that logs to
  // stdout (the server): `shortener visits --csv | head` is no news.
  (error) => {
    if (loggedToStdout)
      log.warn("stdout_closed", {
        error: error.message,
        hint: "stdout's reader exited or its terminal hung up: its lines are dropped from now on",
      });
  },
);
let loggedToStdout = false;

/**
 * stderr (warnings and errors), bounded the same way: a failed request's line may be dropped past the backlog, as a
 * 5xx storm writes one per request; other events are queued still.
 */
const stderr = new LineSink(process.stderr, MAX_BACKLOG_BYTES, (dropped, stalledMs) =>
  log.warn("error_log_lines_dropped", { lines: dropped, stderr_stalled_ms: Math.round(stalledMs) }),
);

/** Access lines dropped since start because stdout was not being read (shortener_access_log_lines_dropped_total). */
export function accessLinesDropped(): number {
  return stdout.dropped;
}

/** Failed requests' lines dropped since start because stderr was not being read (shortener_error_log_lines_dropped_total). */
export function errorLinesDropped(): number {
  return stderr.dropped;
}

/** Writes buffered access lines now (also called before exit). */
export function flushLogs(): void {
  if (timer !== undefined) {
    clearTimeout(timer);
    timer = undefined;
  }
  if (used === 0) return;
  // Written, a copy: the stream may hold the chunk until the pipe takes it, and the buffer is reused at once.
  // Dropped, no copy is needed. Taken out of the buffer first: a write that finds stdout gone logs that (below).
  const batch = stdout.refuses(used) ? pending.subarray(0, used) : Buffer.from(pending.subarray(0, used));
  const count = lines;
  used = 0;
  lines = 0;
  loggedToStdout = true;
  stdout.write(batch, { lines: count });
}

const ONE_LINE = { lines: 1 };

function write(level: Level, event: string, fields: Record<string, unknown>, droppable = false): void {
  const line = `${JSON.stringify({ time: new Date().toISOString(), level, event, ...fields })}\n`;
  flushLogs();
  if (level === "error" || level === "warn") stderr.write(line, droppable ? ONE_LINE : null);
  else {
    loggedToStdout = true;
    stdout.write(line);
  }
}

export const log = {
  info: (event: string, fields: Record<string, unknown> = {}) => write("info", event, fields),
  warn: (event: string, fields: Record<string, unknown> = {}) => write("warn", event, fields),
  error: (event: string, fields: Record<string, unknown> = {}) => write("error", event, fields),
  /** A failed request's warning or error: one per request in a storm, so it may be dropped while stderr is unread. */
  request: (level: "warn" | "error", event: string, fields: Record<string, unknown>) => write(level, event, fields, true),
};

/** One answered request. Every string field is either fixed or validated, so only the IP is escaped. */
export interface AccessEntry {
  requestId: string;
  method: string;
  route: string;
  status: number;
  latencyMs: number;
  bytes: number;
  clientIp: string | null;
  /** The trace of a sampled request, so its log line and its spans can be found from each other. */
  traceId?: string;
}

/** Appends an access line to the buffer; it reaches stdout within FLUSH_INTERVAL_MS or FLUSH_BYTES. */
let isoMs = 0;
let isoText = "";

/** The current time as ISO 8601, formatted at most once per millisecond (access lines come many per ms). */
function nowIso(): string {
  const ms = Date.now();
  if (ms !== isoMs) {
    isoMs = ms;
    isoText = new Date(ms).toISOString();
  }
  return isoText;
}

export function logAccess(e: AccessEntry): void {
  const line =
    `{"time":"${nowIso()}","level":"info","event":"request","request_id":"${e.requestId}",` +
    `"method":"${e.method}","route":"${e.route}","status":${e.status},"latency_ms":${Math.round(e.latencyMs * 1000) / 1000},` +
    `"bytes":${e.bytes},"client_ip":${e.clientIp === null ? "null" : JSON.stringify(e.clientIp)}` +
    `${e.traceId === undefined ? "" : `,"trace_id":"${e.traceId}"`}}\n`;
  // Three bytes per UTF-16 unit at most. A line always fits in the emptied buffer: its fields are bounded (ids by
  // their check, addresses by Bun's 16 KiB limit on request headers).
  if (used + line.length * 3 > pending.length) flushLogs();
  used += pending.write(line, used, "utf8");
  lines++;
  if (used >= FLUSH_BYTES) flushLogs();
  else if (timer === undefined) timer = setTimeout(flushLogs, FLUSH_INTERVAL_MS);
}

/** A loggable description of an unknown failure (message and name; stacks stay out of responses). */
export function describeError(error: unknown): Record<string, unknown> {
  if (error instanceof Error) return { error: error.message, error_name: error.name, stack: error.stack };
  return { error: String(error) };
}
