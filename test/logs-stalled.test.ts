/**
 * stdout's reader (journald) may stall, or fall behind a busy server. The access lines it does not read must not
 * pile up in memory without bound (an unread pipe took the server from 74 to 278 MiB in 10 s at 76 000 requests a
 * second): past a backlog, they are dropped and counted, the server goes on answering, and once stdout is read
 * again one warning says how many were dropped.
 */
import { expect, test } from "bun:test";
import { closeSync, constants, openSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { collectText, requireBinary, TestServer, tempDir, waitFor } from "./support/binary";

/** Resident memory of a process, in MiB. */
function rssMiB(pid: number): number {
  return Number(/^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1]) / 1024;
}

const MAX_REQUESTS = 400_000;
/** Requests sent once lines are being dropped: ~54 MB of queued lines before. */
const MORE = 200_000;
const CONCURRENCY = 64;

test("with stdout unread, access lines past 8 MiB are dropped and counted, memory stays bounded, and a warning tells once read", async () => {
  await using server = new TestServer();
  // Started by hand, its stdout a named pipe: TestServer reads stdout (and so would Bun, given a pipe of its own).
  // The pipe has a reader that never reads until `cat` comes to read it.
  const fifoDir = tempDir("stalled-stdout-");
  const fifo = join(fifoDir, "stdout");
  expect(Bun.spawnSync(["mkfifo", fifo]).exitCode).toBe(0);
  const idleReader = openSync(fifo, constants.O_RDONLY | constants.O_NONBLOCK);
  await using _reader = {
    [Symbol.asyncDispose]: async () => {
      closeSync(idleReader);
      rmSync(fifoDir, { recursive: true, force: true });
    },
  };
  const writer = openSync(fifo, "w");
  const proc = Bun.spawn([requireBinary(), "serve", ...server.settings], {
    env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/tmp" },
    stdout: writer,
    stderr: "pipe",
    stdin: "ignore",
  });
  closeSync(writer);
  server.proc = proc as unknown as typeof server.proc;
  void collectText(proc.stderr, (text) => {
    server.stderr += text;
  });
  await waitFor("server readiness", async () => {
    if (proc.exitCode !== null) throw new Error(`server exited early (${proc.exitCode}): ${server.stderr}`);
    return (await fetch(`${server.baseUrl}/readyz`).catch(() => null))?.status === 200;
  });

  // Requests until lines are dropped (~190 bytes a line: 8 MiB is ~45 000 lines), each answered all the same.
  const dropped = () => server.metric("shortener_access_log_lines_dropped_total");
  const send = async (requests: number) => {
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        for (let i = 0; i < requests / CONCURRENCY; i++) expect((await fetch(`${server.baseUrl}/healthz`)).status).toBe(200);
      }),
    );
  };
  let sent = 0;
  const deadline = Date.now() + 60_000;
  while ((await dropped()) === 0 && sent < MAX_REQUESTS && Date.now() < deadline) {
    await send(6400);
    sent += 6400;
  }
  const droppingFrom = await dropped();
  expect(droppingFrom).toBeGreaterThan(0);
  // From then on, every line is dropped and memory stays where it is (before, each line queued: ~270 bytes).
  const before = rssMiB(proc.pid);
  await send(MORE);
  sent += MORE;
  const droppedLines = await dropped();
  const grown = rssMiB(proc.pid) - before;
  console.log(`stalled stdout: ${sent} requests, ${droppedLines} access lines dropped; RSS +${grown.toFixed(1)} MiB over the last ${MORE}`);
  expect(droppedLines - droppingFrom).toBeGreaterThanOrEqual(MORE);
  expect(grown).toBeLessThan(24);

  // stdout is read again: the backlog goes out, then the warning, then new lines as before.
  let stdout = "";
  const cat = Bun.spawn(["cat", fifo], { stdout: "pipe", stderr: "ignore", stdin: "ignore" });
  await using _cat = { [Symbol.asyncDispose]: async () => void cat.kill() };
  void collectText(cat.stdout, (text) => {
    stdout += text;
  });
  await waitFor("the warning about dropped lines", () => server.stderr.includes('"event":"access_log_lines_dropped"'), 20_000, 50);
  const warning = JSON.parse(server.stderr.split("\n").find((line) => line.includes('"event":"access_log_lines_dropped"')) as string);
  // One stall since start: the warning's count is the counter's.
  expect(warning.level).toBe("warn");
  expect(warning.lines).toBe(await dropped());
  expect(warning.stdout_stalled_ms).toBeGreaterThan(0);
  const marked = await fetch(`${server.baseUrl}/healthz`, { headers: { "X-Request-Id": "after-the-stall" } });
  expect(marked.status).toBe(200);
  await waitFor("a new access line", () => stdout.includes('"request_id":"after-the-stall"'), 10_000, 50);
  // Every line that was not dropped went out whole.
  const lines = stdout.split("\n").filter((line) => line !== "");
  for (const line of lines) expect(() => JSON.parse(line)).not.toThrow();
  expect(lines.filter((line) => line.includes('"event":"request"')).length + droppedLines).toBeGreaterThanOrEqual(sent);
  expect(await server.stop("SIGTERM")).toBe(0);
});
