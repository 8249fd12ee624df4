/** Starts the two servers under test, pinned to the server CPU, with their logs in a file (not a pipe). */
import { chmodSync, copyFileSync, existsSync, mkdirSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import type { Subprocess } from "bun";
import { freePort, run, spawn, stop, waitFor } from "./processes";

export const ROOT = resolve(import.meta.dir, "../..");
/** The binary to benchmark; SHORTENER_BIN benchmarks another build (for example one with a candidate fix). */
export const BINARY = resolve(process.env.SHORTENER_BIN ?? join(ROOT, "dist/shortener"));
let underTest = BINARY;

export function requireBinary(): string {
  if (!existsSync(underTest)) throw new Error(`${underTest} is missing. Try: npm install && npm run build`);
  return underTest;
}

/**
 * Copies the binary into `dir` and uses the copy from now on, so that a rebuild of dist/ during the run (others
 * build in the same checkout) cannot mix two builds in one set of figures. Returns the copy's path.
 */
export function snapshotBinary(dir: string): string {
  const copy = join(dir, "shortener");
  copyFileSync(requireBinary(), copy);
  chmodSync(copy, 0o755);
  underTest = copy;
  return copy;
}

export interface RunningServer {
  name: string;
  proc: Subprocess;
  baseUrl: string;
  logFile: string;
  /** The shortener's ops listener (metrics); absent for other servers. */
  opsUrl?: string;
}

/** Creates an admin API key in `dataDir` (the server need not run) and returns it. */
export async function createApiKey(dataDir: string): Promise<string> {
  return (await run([requireBinary(), "keys", "create", "--name", "bench", "--data-dir", dataDir])).trim();
}

/** `shortener serve` on `dataDir` and free loopback ports; resolves once /readyz answers 200. */
export async function startShortener(
  dataDir: string,
  cpu: number,
  extraArgs: string[] = [],
  env: Record<string, string> = {},
): Promise<RunningServer> {
  const port = freePort();
  const baseUrl = `http://127.0.0.1:${port}`;
  mkdirSync(dataDir, { recursive: true });
  const logFile = join(dataDir, "server.log");
  const opsUrl = `http://127.0.0.1:${freePort()}`;
  const args = [
    "--data-dir",
    dataDir,
    "--listen",
    `127.0.0.1:${port}`,
    "--ops-listen",
    opsUrl.slice("http://".length),
    "--base-url",
    baseUrl,
  ];
  const proc = spawn([requireBinary(), "serve", ...args, ...extraArgs], { cpu, logFile, env });
  await waitFor("shortener readiness", async () => (await fetch(`${baseUrl}/readyz`)).status === 200, alive(proc, logFile));
  return { name: "shortener", proc, baseUrl, logFile, opsUrl };
}

/** bench/otlp-sink.ts on a free loopback port: where a traced shortener exports its spans. */
export async function startOtlpSink(logDir: string, cpu: number): Promise<RunningServer> {
  const port = freePort();
  const baseUrl = `http://127.0.0.1:${port}`;
  const logFile = join(logDir, "otlp-sink.log");
  const proc = spawn([process.execPath, join(ROOT, "bench/otlp-sink.ts"), String(port)], { cpu, logFile });
  await waitFor("OTLP sink readiness", async () => (await fetch(`${baseUrl}/healthz`)).status === 200, alive(proc, logFile));
  return { name: "otlp-sink", proc, baseUrl, logFile };
}

/**
 * bench/reference-server.ts: bare Bun.serve answering 301 from a Map of the same codes; with `spinMicros`, after that
 * much busy work per redirect (named "reference+Nµs").
 */
export async function startReference(codesFile: string, logDir: string, cpu: number, spinMicros = 0): Promise<RunningServer> {
  const port = freePort();
  const baseUrl = `http://127.0.0.1:${port}`;
  const name = spinMicros === 0 ? "reference" : `reference+${spinMicros}µs`;
  const logFile = join(logDir, spinMicros === 0 ? "reference.log" : `reference-spin-${spinMicros}us.log`);
  const argv = [process.execPath, join(ROOT, "bench/reference-server.ts"), String(port), codesFile, String(spinMicros)];
  const proc = spawn(argv, { cpu, logFile });
  await waitFor(`${name} readiness`, async () => (await fetch(`${baseUrl}/healthz`)).status === 200, alive(proc, logFile));
  return { name, proc, baseUrl, logFile };
}

function alive(proc: Subprocess, logFile: string): () => boolean {
  return () => {
    if (proc.exitCode === null && proc.signalCode === null) return true;
    console.error(existsSync(logFile) ? readFileSync(logFile, "utf8").slice(-2000) : "(no log)");
    return false;
  };
}

/** SIGTERM and wait; a non-zero exit is an error (the shortener must shut down cleanly). */
export async function stopServer(server: RunningServer): Promise<void> {
  const code = await stop(server.proc, "SIGTERM", 30_000);
  if (code !== 0) throw new Error(`${server.name} exited ${code} on SIGTERM; log: ${readFileSync(server.logFile, "utf8").slice(-2000)}`);
}

/** Resident set size (with its anonymous and file-backed parts) and its peak, in MiB, from /proc/PID/status. */
export function memoryMiB(pid: number): { rss: number; anon: number; file: number; hwm: number } {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kib = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? Number.NaN);
  return { rss: kib("VmRSS") / 1024, anon: kib("RssAnon") / 1024, file: kib("RssFile") / 1024, hwm: kib("VmHWM") / 1024 };
}
