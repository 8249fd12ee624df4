/**
 * journald may stall, or fall behind a busy server. The lines it does not read must not pile up in memory without
 * bound (an unread pipe took the server from 74 to 278 MiB in 10 s at 76 000 requests a second): past a backlog,
 * access lines on stdout, and failed requests' lines on stderr, are dropped and counted, the server goes on
 * answering, and once the stream is read again one warning says how many were dropped.
 */
import { expect, test } from "bun:test";
import { closeSync, constants, openSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { collectText, eventLines, requireBinary, TestServer, tempDir, waitFor } from "./support/binary";
import { damageLinksPage } from "./support/damaged-database";

/** Resident memory of a process, in MiB. */
function rssMiB(pid: number): number {
  return Number(/^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1]) / 1024;
}

const CONCURRENCY = 64;
const DROPPED = { stdout: "shortener_access_log_lines_dropped_total", stderr: "shortener_error_log_lines_dropped_total" };

/** Sends about `requests` GETs of `path`, CONCURRENCY at a time, each expected to answer `status`; returns how many. */
async function send(server: TestServer, path: string, requests: number, status: number): Promise<number> {
  const each = Math.ceil(requests / CONCURRENCY);
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      for (let i = 0; i < each; i++) {
        const response = await fetch(`${server.baseUrl}${path}`, { redirect: "manual" });
        await response.arrayBuffer();
        expect(response.status).toBe(status);
      }
    }),
  );
  return each * CONCURRENCY;
}

interface Stalled {
  /** Starts reading the pipe; gives what was read so far. */
  read(): () => string;
  /** Closes the pipe's only reader, unread: the server's writes to it fail from then on (EPIPE). */
  close(): void;
}

/**
 * Starts `server` by hand with one of its streams on a named pipe nobody reads (TestServer reads both, and so would
 * Bun, given a pipe of its own), the other collected into `server.stdout` or `server.stderr`.
 */
async function startStalled(server: TestServer, stalled: "stdout" | "stderr", dispose: AsyncDisposableStack): Promise<Stalled> {
  const fifoDir = tempDir(`stalled-${stalled}-`);
  const fifo = join(fifoDir, stalled);
  expect(Bun.spawnSync(["mkfifo", fifo]).exitCode).toBe(0);
  // A reader that never reads, until `cat` comes to read it: without one, opening the pipe to write would block.
  let idleReader: number | null = openSync(fifo, constants.O_RDONLY | constants.O_NONBLOCK);
  const close = () => {
    if (idleReader !== null) closeSync(idleReader);
    idleReader = null;
  };
  dispose.defer(() => {
    close();
    rmSync(fifoDir, { recursive: true, force: true });
  });
  const writer = openSync(fifo, "w");
  const proc = Bun.spawn([requireBinary(), "serve", ...server.settings], {
    env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/tmp" },
    stdout: stalled === "stdout" ? writer : "pipe",
    stderr: stalled === "stderr" ? writer : "pipe",
    stdin: "ignore",
  });
  closeSync(writer);
  server.proc = proc as unknown as typeof server.proc;
  const other = stalled === "stdout" ? "stderr" : "stdout";
  const otherStream = (stalled === "stdout" ? proc.stderr : proc.stdout) as ReadableStream<Uint8Array>;
  void collectText(otherStream, (text) => {
    server[other] += text;
  });
  await waitFor("server readiness", async () => {
    if (proc.exitCode !== null) throw new Error(`server exited early (${proc.exitCode}): ${server.stderr}`);
    return (await fetch(`${server.baseUrl}/readyz`).catch(() => null))?.status === 200;
  });
  const read = () => {
    let text = "";
    const cat = Bun.spawn(["cat", fifo], { stdout: "pipe", stderr: "ignore", stdin: "ignore" });
    dispose.defer(() => void cat.kill());
    void collectText(cat.stdout, (chunk) => {
      text += chunk;
    });
    return () => text;
  };
  return { read, close };
}

/**
 * What resident memory grew by over readings taken at even steps, by their trend: the median of the slopes between
 * every two readings (Theil and Sen's estimate), times the steps. A single reading lands anywhere between two
 * collections: one on CI read 27 MiB above the reading before it, with nothing kept; another 10 MiB below its
 * neighbours. Such a reading barely moves the median, while a queue kept past the bound raises every later one.
 */
function trendGrowth(readings: readonly number[]): number {
  const slopes = readings.flatMap((from, i) => readings.slice(i + 1).map((to, k) => (to - from) / (k + 1)));
  slopes.sort((a, b) => a - b);
  return (slopes[slopes.length >> 1] ?? 0) * (readings.length - 1);
}

const STEPS = 20;

/**
 * Sends batches of requests for `path` until the counter of lines dropped from `stream` moves, then about `more` in
 * STEPS steps, reading resident memory after each: from then on each of their lines must be dropped, and memory not
 * grow. Returns how many were sent.
 */
async function overflow(
  server: TestServer,
  stream: "stdout" | "stderr",
  path: string,
  status: number,
  batch: number,
  more: number,
): Promise<number> {
  const dropped = () => server.metric(DROPPED[stream]);
  let sent = 0;
  const deadline = Date.now() + 60_000;
  while ((await dropped()) === 0 && sent < 50 * batch && Date.now() < deadline) sent += await send(server, path, batch, status);
  const droppingFrom = await dropped();
  expect(droppingFrom).toBeGreaterThan(0);
  const pid = server.proc?.pid ?? 0;
  const resident: number[] = [];
  let last = 0;
  for (let step = 0; step < STEPS; step++) {
    last += await send(server, path, more / STEPS, status);
    resident.push(rssMiB(pid));
  }
  sent += last;
  const droppedLines = await dropped();
  const grown = trendGrowth(resident);
  console.log(
    `stalled ${stream}: ${sent} requests, ${droppedLines} lines dropped; RSS over the last ${last} (MiB): ${resident.map((mib) => mib.toFixed(1)).join(" ")}; grew ${grown.toFixed(1)} by its trend`,
  );
  expect(droppedLines - droppingFrom).toBeGreaterThanOrEqual(last);
  // Queued, stdout's 300 000 lines would be ~56 MB and stderr's 100 000 ~50 MB: a queue kept past the bound grew 34-57 MiB.
  expect(grown).toBeLessThan(20);
  return sent;
}

/** The warning once `stream` is read again (it goes to stderr); its count must be the counter's: one stall since start. */
async function expectWarning(server: TestServer, stream: "stdout" | "stderr", stderr: () => string): Promise<number> {
  const event = stream === "stdout" ? "access_log_lines_dropped" : "error_log_lines_dropped";
  await waitFor("the warning about dropped lines", () => stderr().includes(`"event":"${event}"`), 20_000, 50);
  const warning = JSON.parse(
    stderr()
      .split("\n")
      .find((line) => line.includes(`"event":"${event}"`)) as string,
  );
  expect(warning.level).toBe("warn");
  const dropped = await server.metric(DROPPED[stream]);
  expect(warning.lines).toBe(dropped);
  expect(warning[`${stream}_stalled_ms`]).toBeGreaterThan(0);
  return dropped;
}

/** Lines read off a stream: each must be whole JSON. */
function wholeLines(text: string): string[] {
  const lines = text.split("\n").filter((line) => line !== "");
  for (const line of lines) expect(() => JSON.parse(line)).not.toThrow();
  return lines;
}

test("with stdout unread, access lines past 8 MiB are dropped and counted, memory stays bounded, and a warning tells once read", async () => {
  await using dispose = new AsyncDisposableStack();
  const server = dispose.use(new TestServer());
  const { read } = await startStalled(server, "stdout", dispose);
  // ~190 bytes a line: 8 MiB is ~45 000 lines; then 300 000 more, ~56 MB had they been queued.
  const sent = await overflow(server, "stdout", "/healthz", 200, 6400, 300_000);

  // stdout is read again: the backlog goes out, then the warning, then new lines as before.
  const stdout = read();
  const dropped = await expectWarning(server, "stdout", () => server.stderr);
  const marked = await fetch(`${server.baseUrl}/healthz`, { headers: { "X-Request-Id": "after-the-stall" } });
  expect(marked.status).toBe(200);
  await waitFor("a new access line", () => stdout().includes('"request_id":"after-the-stall"'), 10_000, 50);
  const lines = wholeLines(stdout());
  expect(lines.filter((line) => line.includes('"event":"request"')).length + dropped).toBeGreaterThanOrEqual(sent);
  expect(await server.stop("SIGTERM")).toBe(0);
});

test("with stderr unread, failed requests' error lines past 8 MiB are dropped and counted, memory stays bounded, and a warning tells once read", async () => {
  await using dispose = new AsyncDisposableStack();
  const server = dispose.use(new TestServer());
  await server.start();
  expect(await server.stop()).toBe(0);
  // Every request for a link on the damaged page answers 500 and logs a `database_corrupt` error line of ~500 bytes.
  const failing = `/${damageLinksPage(server.dataDir).unreadable[0]}`;
  const { read } = await startStalled(server, "stderr", dispose);
  // 8 MiB is ~17 000 lines; then 100 000 more, ~50 MB had they been queued.
  const sent = await overflow(server, "stderr", failing, 500, 3200, 100_000);
  // The failures are counted all the same, and the node stays ready.
  expect(await server.metric('http_request_errors_total{route="/{shortCode}",method="GET",status_class="5xx"}')).toBe(sent);
  expect((await fetch(`${server.baseUrl}/readyz`)).status).toBe(200);

  // stderr is read again: the backlog goes out, then the warning, then new error lines as before.
  const stderr = read();
  const dropped = await expectWarning(server, "stderr", stderr);
  const marked = await fetch(`${server.baseUrl}${failing}`, { redirect: "manual", headers: { "X-Request-Id": "after-the-stall" } });
  expect(marked.status).toBe(500);
  await waitFor("a new error line", () => stderr().includes('"request_id":"after-the-stall"'), 10_000, 50);
  const lines = wholeLines(stderr());
  expect(lines.filter((line) => line.includes('"event":"database_corrupt"')).length + dropped).toBe(sent + 1);
  expect(await server.stop("SIGTERM")).toBe(0);
});

test("with stdout's reader gone (EPIPE), the server says so on stderr once and goes on answering and counting without those lines", async () => {
  await using dispose = new AsyncDisposableStack();
  const server = dispose.use(new TestServer());
  const stalled = await startStalled(server, "stdout", dispose);
  const dropped = () => server.metric(DROPPED.stdout);
  expect(await dropped()).toBe(0);
  stalled.close();
  // The first write after the close fails: access lines go out at least every 100 ms.
  let sent = await send(server, "/healthz", 640, 200);
  await waitFor("the stdout_closed warning", () => eventLines(server.stderr, "stdout_closed").length > 0, 10_000, 20);
  const before = await dropped();
  sent += await send(server, "/healthz", 6400, 200);
  await waitFor("the last access lines, dropped", async () => (await dropped()) >= before + 6400, 10_000, 20);
  expect(eventLines(server.stderr, "stdout_closed")).toHaveLength(1);
  expect(JSON.parse(eventLines(server.stderr, "stdout_closed")[0] as string).error).toContain("EPIPE");
  expect(await dropped()).toBeLessThanOrEqual(sent);
  expect(await server.stop("SIGTERM")).toBe(0);
  expect(server.stderr).not.toContain("fatal");
});
