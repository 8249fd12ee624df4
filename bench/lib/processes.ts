/**
 * Everything a benchmark starts (processes, temp dirs) is registered here and torn down by `cleanup`, which runs
 * on normal exit, on failure and on SIGINT/SIGTERM. Processes are only ever killed by the pid we spawned.
 */
import { closeSync, mkdtempSync, openSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Subprocess } from "bun";

const processes = new Set<Subprocess>();
const dirs = new Set<string>();
let interrupted = false;

/** A temp dir that `cleanup` removes. */
export function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  dirs.add(dir);
  return dir;
}

export interface SpawnOptions {
  /** Pin to this CPU with taskset (taskset execs the command, so the pid is the command's own). */
  cpu?: number;
  /** Append stdout and stderr to this file instead of piping them: a server must never block on a full pipe. */
  logFile?: string;
  env?: Record<string, string>;
}

/** Spawns a tracked process; stdout is piped unless `logFile` is given. */
export function spawn(argv: string[], options: SpawnOptions = {}): Subprocess<"ignore", "pipe" | number, "inherit" | number> {
  const pinned = options.cpu === undefined ? argv : ["taskset", "-c", String(options.cpu), ...argv];
  // One descriptor, opened for appending, for both streams: the same Bun.file given as stdout and stderr is opened
  // twice at offset 0, and each stream then overwrites the other's lines.
  const sink = options.logFile === undefined ? undefined : openSync(options.logFile, "a");
  let proc: Subprocess<"ignore", "pipe" | number, "inherit" | number>;
  try {
    proc = Bun.spawn(pinned, {
      stdin: "ignore",
      stdout: sink ?? "pipe",
      stderr: sink ?? "inherit",
      env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: process.env.HOME ?? "/tmp", ...options.env },
    }) as Subprocess<"ignore", "pipe" | number, "inherit" | number>;
  } finally {
    // The child has its own copy.
    if (sink !== undefined) closeSync(sink);
  }
  processes.add(proc);
  void proc.exited.then(() => processes.delete(proc));
  return proc;
}

/** Sends `signal`, waits for the exit, and SIGKILLs after `timeoutMs`. */
export async function stop(proc: Subprocess, signal: NodeJS.Signals = "SIGTERM", timeoutMs = 15_000): Promise<number> {
  if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
  const timer = setTimeout(() => proc.kill("SIGKILL"), timeoutMs);
  const code = await proc.exited;
  clearTimeout(timer);
  processes.delete(proc);
  return code;
}

/** Runs a command to completion and returns its stdout; throws with stderr on a non-zero exit. */
export async function run(argv: string[], options: SpawnOptions & { timeoutMs?: number } = {}): Promise<string> {
  const proc = Bun.spawn(options.cpu === undefined ? argv : ["taskset", "-c", String(options.cpu), ...argv], {
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: process.env.HOME ?? "/tmp", ...options.env },
  });
  processes.add(proc);
  const timer = setTimeout(() => proc.kill("SIGKILL"), options.timeoutMs ?? 60_000);
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  clearTimeout(timer);
  processes.delete(proc);
  if (code !== 0) throw new Error(`${argv.join(" ")} exited ${code}: ${stderr.trim() || stdout.trim()}`);
  return stdout;
}

/** Kills every tracked process (SIGTERM, then SIGKILL) and removes every temp dir. Safe to call twice. */
export async function cleanup(): Promise<void> {
  await Promise.all([...processes].map((proc) => stop(proc, "SIGTERM", 5_000)));
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  dirs.clear();
}

/**
 * Runs `main` with cleanup on every path. A signal cleans up and exits 130/143; an error prints and exits 1.
 * The synchronous `exit` hook is the last resort when the process dies without unwinding.
 */
export async function runWithCleanup(main: () => Promise<void>): Promise<never> {
  for (const [signal, code] of [
    ["SIGINT", 130],
    ["SIGTERM", 143],
  ] as const) {
    process.on(signal, () => {
      interrupted = true;
      console.error(`\n${signal}: stopping everything this benchmark started`);
      void cleanup().finally(() => process.exit(code));
    });
  }
  process.on("exit", () => {
    for (const proc of processes) proc.kill("SIGKILL");
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });
  let status = 0;
  try {
    await main();
  } catch (error) {
    // After a signal, the failures of the processes we just stopped are expected: the signal handler reports.
    if (interrupted) return new Promise<never>(() => {});
    console.error(`\nFAILED: ${error instanceof Error ? error.message : String(error)}`);
    status = 1;
  }
  await cleanup();
  process.exit(status);
}

/** Pins this process (all its current threads; later ones inherit) to one CPU. */
export async function pinSelf(cpu: number): Promise<void> {
  await run(["taskset", "-a", "-c", "-p", String(cpu), String(process.pid)]);
}

/** A free TCP port on 127.0.0.1, outside the kernel's ephemeral range (as the tests pick theirs). */
export { freePort } from "../../test/support/ports";

/** Polls `probe` until true; throws after `timeoutMs` or when `alive` reports the process died. */
export async function waitFor(what: string, probe: () => Promise<boolean>, alive: () => boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (let attempt = 0; Date.now() < deadline && attempt < 10_000; attempt++) {
    if (!alive()) throw new Error(`${what}: the process exited`);
    if (await probe().catch(() => false)) return;
    await Bun.sleep(25);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}
