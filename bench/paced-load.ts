/**
 * Open-loop load at a fixed rate over keep-alive connections, reporting latency percentiles. Request k is due at
 * t0 + k/rate whether or not earlier ones have finished (as wrk2 does; wrk itself is closed-loop and hides queueing),
 * and its latency is counted from that due time, so client stalls and queueing are charged, not omitted. The
 * on-wire latency (from the write to the last byte) is reported beside it. Both are client-observed on loopback:
 * an upper bound on server-side latency.
 *
 * Raw sockets rather than fetch: fetch costs several times more CPU per request, which would be measured as latency.
 * Usage: taskset -c 1 bun bench/paced-load.ts URL CODES_FILE RATE SECONDS [HOT_COUNT] [HOT_SHARE] [CONNECTIONS]
 * Prints one line: PACED_JSON {...}.
 */
import type { Socket } from "bun";
import { readCodes } from "./lib/codes";
import { PACED_WARMUP_SECONDS as WARMUP_SECONDS } from "./lib/settings";
import { percentile } from "./lib/stats";

const [url, codesFile, rateArg, secondsArg, hotArg = "1000", hotShareArg = "0.9", connectionsArg = "32"] = process.argv.slice(2);
if (url === undefined || codesFile === undefined || rateArg === undefined || secondsArg === undefined) {
  console.error("usage: bun bench/paced-load.ts URL CODES_FILE RATE SECONDS [HOT_COUNT] [HOT_SHARE] [CONNECTIONS]");
  process.exit(1);
}
const target = new URL(url);
const codes = readCodes(codesFile);
const rate = Number(rateArg);
const seconds = Number(secondsArg);
const measuredCount = Math.round(rate * seconds);
const hot = Number(hotArg);
const hotShare = Number(hotShareArg);
const userAgent = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36";
// All requests encoded once into one buffer (offsets in a typed array): 100 000 separate strings or Buffers would
// make every full GC of this client mark them all, and those pauses would be measured as server latency.
const encoded = codes.map((code) => Buffer.from(`GET /${code} HTTP/1.1\r\nHost: ${target.host}\r\nUser-Agent: ${userAgent}\r\n\r\n`));
const offsets = new Int32Array(encoded.length + 1);
encoded.forEach((b, i) => {
  offsets[i + 1] = (offsets[i] as number) + b.length;
});
const requestBytes = Buffer.concat(encoded);
const codeCount = encoded.length;
encoded.length = 0;
codes.length = 0;

/** Writes one request for a code drawn like the wrk workloads. */
function writeRequest(socket: Socket<undefined>): void {
  const n = codeCount;
  const i =
    hot === 0
      ? Math.floor(Math.random() * n)
      : Math.random() < hotShare
        ? Math.floor(Math.random() * hot)
        : hot + Math.floor(Math.random() * (n - hot));
  const from = offsets[i] as number;
  const length = (offsets[i + 1] as number) - from;
  // One small request per idle keep-alive connection always fits the socket buffer; a short write would be a bug.
  if (socket.write(requestBytes, from, length) !== length) fail("short write");
}

interface Connection {
  socket: Socket<undefined>;
  /** Index, due time and write time of the request in flight. */
  index: number;
  due: number;
  sentAt: number;
  /** A response's first bytes, when it arrived in more than one chunk. */
  partial: Buffer | null;
}

// The first WARMUP_SECONDS run at the same rate but are not recorded: both JITs warm up and connections settle.
const warmupCount = Math.round(rate * WARMUP_SECONDS);
const total = warmupCount + measuredCount;
const fromDue = new Float64Array(measuredCount);
const onWire = new Float64Array(measuredCount);
/** The second of the measured run each recorded request fell due in, for the p99 of each second. */
const dueSecond = new Int32Array(measuredCount);
let completed = 0;
let finished = false;
let recorded = 0;
let nonRedirects = 0;
const idle: Connection[] = [];
// Requests fall due in index order, so the backlog is the range [nextIndex, dueCount): no queue to maintain.
let dueCount = 0;
let nextIndex = 0;
let maxBacklog = 0;
const start = performance.now() + 10;
const dueTime = (index: number) => start + (index * 1000) / rate;

function sendNext(connection: Connection): void {
  connection.index = nextIndex++;
  connection.due = dueTime(connection.index);
  connection.sentAt = performance.now();
  writeRequest(connection.socket);
}

// Needles encoded once: Buffer.indexOf(string) encodes its argument on every call, and garbage means GC pauses.
const HEADER_END = Buffer.from("\r\n\r\n");
const CONTENT_LENGTH = Buffer.from("Content-Length:");
const CONTENT_LENGTH_LOWER = Buffer.from("content-length:");

/** Decimal value of the Content-Length header in `data[0, headerEnd)`, 0 when absent. */
function contentLength(data: Buffer, headerEnd: number): number {
  let at = data.indexOf(CONTENT_LENGTH);
  if (at === -1 || at > headerEnd) at = data.indexOf(CONTENT_LENGTH_LOWER);
  if (at === -1 || at > headerEnd) return 0;
  let value = 0;
  for (let i = at + 15; i < headerEnd; i++) {
    const c = data[i] as number;
    if (c >= 48 && c <= 57) value = value * 10 + c - 48;
    else if (c !== 32) break;
  }
  return value;
}

/** Completes the response on `connection` once it has fully arrived (one request is in flight per connection). */
function onData(connection: Connection, chunk: Buffer): void {
  const data = connection.partial === null ? chunk : Buffer.concat([connection.partial, chunk]);
  const headerEnd = data.indexOf(HEADER_END);
  if (headerEnd === -1 || data.length < headerEnd + 4 + contentLength(data, headerEnd)) {
    connection.partial = data;
    return;
  }
  connection.partial = null;
  const now = performance.now();
  // "HTTP/1.1 302": the status class is byte 9.
  if (data[9] !== 51) nonRedirects++;
  if (connection.index >= warmupCount) {
    fromDue[recorded] = now - connection.due;
    onWire[recorded] = now - connection.sentAt;
    dueSecond[recorded] = Math.floor((connection.index - warmupCount) / rate);
    recorded++;
  }
  completed++;
  if (nextIndex < dueCount) sendNext(connection);
  else idle.push(connection);
}

const connections: Connection[] = [];
for (let i = 0; i < Number(connectionsArg); i++) {
  const connection = { index: -1, due: Number.NaN, sentAt: Number.NaN, partial: null } as Connection;
  connection.socket = await Bun.connect({
    hostname: target.hostname,
    port: Number(target.port),
    socket: {
      data: (_socket, chunk) => onData(connection, chunk),
      close: () => {
        if (!finished) fail("the server closed a connection");
      },
      error: (_socket, error) => {
        if (!finished) fail(`socket error: ${error.message}`);
      },
    },
  });
  connections.push(connection);
  idle.push(connection);
}

function fail(why: string): never {
  console.error(`paced-load: ${why} after ${completed} of ${total} requests`);
  process.exit(1);
}

// Dispatch everything due, then yield to I/O with setImmediate: a timer would add ~1 ms of pacing error. Each pass
// first spins (at most SPIN_MS) until the next request is due, so that there are about as many passes as requests:
// a bare setImmediate loop makes millions of passes a second, and the garbage they leave costs GC pauses. Responses
// wait at most SPIN_MS to be read. The largest gap between two passes is this client's own stall (GC, preemption),
// which inflates every figure below.
const SPIN_MS = 0.02;
const measuredStart = start + WARMUP_SECONDS * 1000;
// A server that cannot keep up is given GRACE_MS after the last due time; what is still unanswered then counts as
// infinitely late, so the percentiles stay honest (and the run stays bounded).
const GRACE_MS = 5_000;
const deadline = start + (WARMUP_SECONDS + seconds) * 1000 + GRACE_MS;
let lastTick = start;
let clientStallMs = 0;
await new Promise<void>((resolve) => {
  const tick = () => {
    let now = performance.now();
    const nextDue = dueTime(nextIndex);
    for (const until = Math.min(nextDue, now + SPIN_MS); now < until; now = performance.now()) {}
    if (now > measuredStart) clientStallMs = Math.max(clientStallMs, now - lastTick);
    lastTick = now;
    dueCount = Math.min(total, Math.max(0, Math.floor(((now - start) * rate) / 1000) + 1));
    // First in, first out: every connection takes its turn, so none sits idle long enough at low rates for the
    // server's idle timeout (Bun's default is 10 s) to close it mid-run.
    for (let connection = idle.shift(); connection !== undefined; connection = idle.shift()) {
      if (nextIndex >= dueCount) {
        idle.unshift(connection);
        break;
      }
      sendNext(connection);
    }
    if (now > measuredStart) maxBacklog = Math.max(maxBacklog, dueCount - nextIndex);
    if (completed >= total || now > deadline) resolve();
    else setImmediate(tick);
  };
  tick();
});
finished = true;
const elapsed = Math.min(performance.now() - measuredStart, seconds * 1000 + GRACE_MS) / 1000;
const unanswered = measuredCount - recorded;
for (const connection of connections) connection.socket.end();

/** Percentiles in ms; null stands for infinity (a percentile that falls among the unanswered requests). */
const summary = (values: Float64Array) => {
  const sorted = values.fill(Number.POSITIVE_INFINITY, recorded).sort();
  return { p50: percentile(sorted, 50), p99: percentile(sorted, 99), p999: percentile(sorted, 99.9), max: sorted[sorted.length - 1] ?? 0 };
};
// Per second of due time, before summary() sorts fromDue in place: a tail that is one slow stretch (a burst's
// aftermath, a checkpoint) reads differently from one spread over the run.
const bySecond: number[][] = Array.from({ length: Math.ceil(seconds) }, () => []);
for (let i = 0; i < recorded; i++) bySecond[Math.min(bySecond.length - 1, dueSecond[i] as number)]?.push(fromDue[i] as number);
const byValue = (a: number, b: number) => a - b;
const p99BySecondMs = bySecond.map((values) => (values.length === 0 ? null : percentile(values.sort(byValue), 99)));
console.log(
  `PACED_JSON ${JSON.stringify({ rate, achieved: recorded / elapsed, completed: recorded, unanswered, nonRedirects, maxBacklog, clientStallMs, fromDueMs: summary(fromDue), onWireMs: summary(onWire), p99BySecondMs })}`,
);
