/**
 * Black-box test support: runs the compiled binary (dist/shortener, built by `npm test` before the tests)
 * on a temp data dir and free loopback ports, and waits for readiness by polling with a deadline.
 */
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import type { Subprocess } from "bun";
import { freePort } from "./ports";

export { freePort };

export const BINARY = resolve(import.meta.dir, "../../dist/shortener");

export function requireBinary(): string {
  if (!existsSync(BINARY)) throw new Error(`${BINARY} is missing: run \`npm run build\` (npm test builds it first)`);
  return BINARY;
}

export function tempDir(prefix = "shortener-test-"): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** Polls `probe` until it returns true, or throws after `timeoutMs`. */
export async function waitFor(what: string, probe: () => Promise<boolean> | boolean, timeoutMs = 15_000, intervalMs = 25): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (let attempt = 0; Date.now() < deadline && attempt < 100_000; attempt++) {
    if (await probe()) return;
    await Bun.sleep(intervalMs);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

/** The JSON log lines of `output` (a server's stdout and stderr) whose event is `event`. */
export function eventLines(output: string, event: string): string[] {
  return output.split("\n").filter((line) => line.includes(`"event":"${event}"`));
}

/** An error event's log lines, parsed: the request it answered, the SQLite code and the hint. */
export function loggedErrors(output: string, event: string): { request_id: string; code: string; hint: string }[] {
  return eventLines(output, event).map((line) => JSON.parse(line) as { request_id: string; code: string; hint: string });
}

/** Reads a child's output stream to its end, handing each decoded piece to `append` as it arrives. */
export async function collectText(stream: ReadableStream<Uint8Array>, append: (text: string) => void): Promise<void> {
  const decoder = new TextDecoder();
  const reader = stream.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return;
    append(decoder.decode(value, { stream: true }));
  }
}

export interface RunResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

/** Runs a one-shot command of the binary (keys, version, ...) and collects its output. */
export async function runCli(args: string[], env: Record<string, string> = {}, timeoutMs = 30_000): Promise<RunResult> {
  const proc = Bun.spawn([requireBinary(), ...args], {
    env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/tmp", ...env },
    stdout: "pipe",
    stderr: "pipe",
    stdin: "ignore",
  });
  const timer = setTimeout(() => proc.kill("SIGKILL"), timeoutMs);
  const [stdout, stderr, exitCode] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  clearTimeout(timer);
  return { exitCode, stdout, stderr };
}

export interface ServerOptions {
  dataDir?: string;
  /** --drain-grace for this server (default 50ms). */
  drainGrace?: string;
  args?: string[];
  env?: Record<string, string>;
  /** A command that runs the server, given its data directory: it gets the server's argv and must exec it (test/support/small-disk.ts). */
  wrap?: (dataDir: string) => string[];
}

/** A running `shortener serve` with its own data dir, ports and one admin API key. */
export class TestServer implements AsyncDisposable {
  readonly port: number;
  readonly opsPort: number;
  readonly dataDir: string;
  readonly baseUrl: string;
  apiKey = "";
  /** Every key created for this server: none may ever appear in its output. */
  readonly keys: string[] = [];
  proc: Subprocess<"ignore", "pipe", "pipe"> | null = null;
  stdout = "";
  stderr = "";
  #ownsDir: boolean;

  constructor(private readonly options: ServerOptions = {}) {
    this.port = freePort();
    this.opsPort = freePort();
    this.#ownsDir = options.dataDir === undefined;
    this.dataDir = options.dataDir ?? tempDir();
    this.baseUrl = `http://127.0.0.1:${this.port}`;
  }

  /** Settings every command needs to find this node. */
  get settings(): string[] {
    return [
      "--data-dir",
      this.dataDir,
      "--listen",
      `127.0.0.1:${this.port}`,
      "--ops-listen",
      `127.0.0.1:${this.opsPort}`,
      "--base-url",
      this.baseUrl,
      // A short drain grace keeps stops fast; the drain tests set their own.
      "--drain-grace",
      this.options.drainGrace ?? "50ms",
    ];
  }

  /** A scrape of the ops listener's /metrics: each series, name and labels as written, with its value. */
  async metrics(): Promise<Map<string, number>> {
    const text = await (await fetch(`http://127.0.0.1:${this.opsPort}/metrics`)).text();
    const samples = new Map<string, number>();
    for (const line of text.split("\n")) {
      if (line.startsWith("#") || line.trim() === "") continue;
      const space = line.lastIndexOf(" ");
      samples.set(line.slice(0, space), Number(line.slice(space + 1)));
    }
    return samples;
  }

  /** One series' value in a scrape (for example `name{label="x"}`); throws when the scrape lacks it. */
  async metric(series: string): Promise<number> {
    const value = (await this.metrics()).get(series);
    if (value === undefined) throw new Error(`${series} is not in /metrics`);
    return value;
  }

  /** Creates an admin key (before or while the server runs) and remembers it. */
  async createKey(name = "admin", role = "admin"): Promise<string> {
    const result = await runCli(["keys", "create", "--name", name, "--role", role, "--data-dir", this.dataDir]);
    if (result.exitCode !== 0) throw new Error(`keys create failed: ${result.stderr}`);
    const key = result.stdout.trim();
    this.keys.push(key);
    if (this.apiKey === "") this.apiKey = key;
    return key;
  }

  /** Starts the server and waits until /readyz answers 200, or with `until: "live"` until /healthz does (a node kept not ready). */
  async start(until: "ready" | "live" = "ready"): Promise<this> {
    this.proc = Bun.spawn(
      [...(this.options.wrap?.(this.dataDir) ?? []), requireBinary(), "serve", ...this.settings, ...(this.options.args ?? [])],
      {
        env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/tmp", ...(this.options.env ?? {}) },
        stdout: "pipe",
        stderr: "pipe",
        stdin: "ignore",
      },
    );
    void this.#collect(this.proc.stdout, "stdout");
    void this.#collect(this.proc.stderr, "stderr");
    await waitFor("server readiness", async () => {
      if (this.proc?.exitCode !== null) throw new Error(`server exited early (${this.proc?.exitCode}): ${this.stderr}`);
      try {
        return (await fetch(`${this.baseUrl}/${until === "ready" ? "readyz" : "healthz"}`)).status === 200;
      } catch {
        return false;
      }
    });
    return this;
  }

  #collect(stream: ReadableStream<Uint8Array>, into: "stdout" | "stderr"): Promise<void> {
    return collectText(stream, (text) => {
      this[into] += text;
    });
  }

  /** Waits for the process to exit on its own (SIGKILL after the deadline) and returns its exit code. */
  async waitForExit(timeoutMs = 20_000): Promise<number> {
    const proc = this.proc;
    if (proc === null) return 0;
    const timer = setTimeout(() => proc.kill("SIGKILL"), timeoutMs);
    const code = await proc.exited;
    clearTimeout(timer);
    return code;
  }

  /** Sends a signal and waits for the exit code (SIGKILL after the deadline). */
  async stop(signal: NodeJS.Signals = "SIGTERM", timeoutMs = 20_000): Promise<number> {
    const proc = this.proc;
    if (proc === null) return 0;
    if (proc.exitCode !== null) return proc.exitCode;
    proc.kill(signal);
    const timer = setTimeout(() => proc.kill("SIGKILL"), timeoutMs);
    const code = await proc.exited;
    clearTimeout(timer);
    return code;
  }

  /** fetch against this server with the admin key. */
  api(path: string, init: RequestInit = {}): Promise<Response> {
    const headers = new Headers(init.headers);
    if (!headers.has("X-Api-Key") && this.apiKey !== "") headers.set("X-Api-Key", this.apiKey);
    if (init.body !== undefined && !headers.has("Content-Type")) headers.set("Content-Type", "application/json");
    return fetch(`${this.baseUrl}${path}`, { ...init, headers, redirect: "manual" });
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop("SIGTERM");
    // Secrets never reach the logs: every black-box test's server output is checked for the keys it made.
    const leaked = this.keys.filter((key) => this.stdout.includes(key) || this.stderr.includes(key));
    if (leaked.length > 0) throw new Error(`an API key appeared in the server's output (${leaked.length} key(s))`);
    if (this.#ownsDir) rmSync(this.dataDir, { recursive: true, force: true });
  }
}

/** Starts a server with an admin key already created. */
export async function startServer(options: ServerOptions = {}): Promise<TestServer> {
  const server = new TestServer(options);
  await server.createKey();
  return server.start();
}
