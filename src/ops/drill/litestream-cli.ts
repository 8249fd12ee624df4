/**
 * The Litestream command line as the drill uses it: `litestream restore` into a path of our choosing (never over
 * the live database), and `litestream ltx` to learn how far back the replica reaches. Each call has a deadline:
 * an unreachable S3 endpoint makes Litestream wait, not fail.
 */

export interface LitestreamCall {
  /** The Litestream configuration file (--litestream-config). */
  configPath: string;
  /** The database as the configuration names it (`dbs[].path`). */
  databasePath: string;
  /** The environment Litestream expands the configuration with (credentials, endpoint). */
  env: Record<string, string | undefined>;
  timeoutMs: number;
  /** Aborts the call (the drill was interrupted). */
  signal?: AbortSignal;
}

export interface RestoreOutcome {
  /** Wall-clock time of the restore, from spawn to exit. */
  seconds: number;
  /** The last transaction restored, as Litestream reports it (hex), or null if it did not say. */
  txid: string | null;
}

export class LitestreamFailed extends Error {
  constructor(message: string) {
    super(message);
    this.name = "LitestreamFailed";
  }
}

function litestreamBinary(env: Record<string, string | undefined>): string {
  const path = Bun.which("litestream", { PATH: env.PATH ?? "" });
  if (path === null) {
    throw new LitestreamFailed("litestream is not on PATH. Try: install Litestream v0.5.18 or later as /usr/local/bin/litestream");
  }
  return path;
}

/** The most telling line of Litestream's stderr: its `Error:` line, else the last line. */
function reason(stderr: string): string {
  const lines = stderr
    .trim()
    .split("\n")
    .filter((l) => l.trim() !== "");
  return (lines.find((l) => l.startsWith("Error:")) ?? lines.at(-1) ?? "no output").replace(/^Error:\s*/, "");
}

async function runLitestream(args: string[], call: LitestreamCall): Promise<{ stdout: string; seconds: number }> {
  const command = ["litestream", args[0]].join(" ");
  if (call.signal?.aborted) throw new LitestreamFailed(`${command} was not started: the drill was interrupted`);
  const started = performance.now();
  const proc = Bun.spawn([litestreamBinary(call.env), ...args], {
    env: call.env,
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
  let why: string | null = null;
  const kill = (message: string) => {
    why ??= message;
    proc.kill("SIGKILL");
  };
  const timer = setTimeout(() => kill(`${command} timed out after ${call.timeoutMs / 1000} s`), call.timeoutMs);
  const onAbort = () => kill(`${command} was interrupted`);
  call.signal?.addEventListener("abort", onAbort, { once: true });
  try {
    const [stdout, stderr, exitCode] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
    const seconds = (performance.now() - started) / 1000;
    if (why !== null) {
      throw new LitestreamFailed(`${why}. Try: check that the replica's S3 endpoint answers, or raise --drill-timeout`);
    }
    if (exitCode !== 0) throw new LitestreamFailed(`${command} exited ${exitCode}: ${reason(stderr)}`);
    return { stdout, seconds };
  } finally {
    clearTimeout(timer);
    call.signal?.removeEventListener("abort", onAbort);
  }
}

/** Restores the replica (its latest state, or the state at `at`) into `outputPath`, which must not exist yet. */
export async function restoreReplica(call: LitestreamCall, outputPath: string, at?: Date): Promise<RestoreOutcome> {
  const args = ["restore", "-config", call.configPath, "-json", "-o", outputPath];
  if (at !== undefined) args.push("-timestamp", at.toISOString());
  const { stdout, seconds } = await runLitestream([...args, call.databasePath], call);
  let txid: string | null = null;
  try {
    const summary = JSON.parse(stdout) as { txid?: unknown };
    if (typeof summary.txid === "string") txid = summary.txid;
  } catch {
    // The summary is informational; the restored file is what the drill checks.
  }
  return { seconds, txid };
}

/** When each file the replica holds of the database was written (epoch ms), as `litestream ltx` lists them. */
export async function replicaFileTimes(call: LitestreamCall): Promise<number[]> {
  const { stdout } = await runLitestream(["ltx", "-config", call.configPath, "-level", "all", "-json", call.databasePath], call);
  let files: { timestamp?: unknown }[];
  try {
    files = JSON.parse(stdout) as { timestamp?: unknown }[];
  } catch {
    throw new LitestreamFailed(`litestream ltx printed something other than JSON: ${stdout.slice(0, 200)}`);
  }
  return files.map((f) => (typeof f.timestamp === "string" ? Date.parse(f.timestamp) : Number.NaN)).filter(Number.isFinite);
}

/** When the oldest file the replica holds was written: no point in time before it can be restored. */
export async function replicaStart(call: LitestreamCall): Promise<Date> {
  const times = await replicaFileTimes(call);
  if (times.length === 0) throw new LitestreamFailed("the replica holds no backup files yet. Try: is `litestream replicate` running?");
  return new Date(Math.min(...times));
}
