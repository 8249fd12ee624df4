/**
 * `litestream restore` as `shortener restore` runs it: into a temp path of ours, never over a live file, with
 * Litestream's failures turned into errors that say what happened and what to try.
 */
import { RestoreError } from "./restore-error";

export interface LitestreamRestore {
  /** The Litestream configuration file (--litestream-config). */
  configPath: string;
  /** The database as the configuration names it (`dbs[].path`). */
  databasePath: string;
  /** Restore the state at this instant; null restores the newest state the replica holds. */
  at: Date | null;
  /** Where Litestream writes the restored file; must not exist. */
  outputPath: string;
  /** The environment Litestream runs with: its config may expand credentials and the endpoint from it. */
  env: Record<string, string | undefined>;
  /** Aborting kills Litestream (the operator pressed Ctrl-C). */
  signal?: AbortSignal;
}

export interface LitestreamOutcome {
  seconds: number;
  /** The last transaction restored (hex), as Litestream reports it, or null if it did not say. */
  txid: string | null;
}

/** Litestream's message when no backup can serve the request: an empty replica, or a time before the first one. */
const NO_BACKUP = "no matching backup files available";

function binary(env: Record<string, string | undefined>): string {
  const path = Bun.which("litestream", { PATH: env.PATH ?? "" });
  if (path === null) {
    throw new RestoreError("litestream is not on PATH. Try: install Litestream v0.5.18 or later (e.g. as /usr/local/bin/litestream)");
  }
  return path;
}

/** The telling line of Litestream's output: its `Error:` line, else the last line. */
function reason(output: string): string {
  const lines = output
    .trim()
    .split("\n")
    .filter((l) => l.trim() !== "");
  return (lines.find((l) => l.startsWith("Error:")) ?? lines.at(-1) ?? "no output").replace(/^Error:\s*/, "");
}

async function run(args: string[], env: Record<string, string | undefined>, signal?: AbortSignal) {
  if (signal?.aborted) throw new RestoreError("interrupted before Litestream ran; nothing was changed");
  const proc = Bun.spawn([binary(env), ...args], { env, stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  const kill = () => proc.kill("SIGKILL");
  signal?.addEventListener("abort", kill, { once: true });
  try {
    const [stdout, stderr, exitCode] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
    if (signal?.aborted) throw new RestoreError("interrupted while Litestream was restoring; nothing was changed");
    return { stdout, stderr, exitCode };
  } finally {
    signal?.removeEventListener("abort", kill);
  }
}

/** When the oldest file the replica holds was written (to the second, as `litestream ltx` prints it), or null. */
async function oldestBackup(call: LitestreamRestore): Promise<string | null> {
  const listing = await run(["ltx", "-config", call.configPath, "-level", "all", "-json", call.databasePath], call.env, call.signal);
  if (listing.exitCode !== 0) {
    throw new RestoreError(`litestream ltx failed: ${reason(listing.stderr + listing.stdout)}`);
  }
  const files = JSON.parse(listing.stdout) as { timestamp?: unknown }[];
  const times = files.map((f) => (typeof f.timestamp === "string" ? Date.parse(f.timestamp) : Number.NaN)).filter(Number.isFinite);
  return times.length === 0 ? null : new Date(Math.min(...times)).toISOString();
}

/** Why no backup matched: an empty replica, or a time before its first backup. */
async function noBackupError(call: LitestreamRestore): Promise<RestoreError> {
  const where = `the replica of ${call.databasePath} (${call.configPath})`;
  const oldest = await oldestBackup(call);
  if (oldest === null) {
    return new RestoreError(
      `${where} holds no backups. Try: is \`litestream replicate\` running with this config? \`litestream ltx -config ${call.configPath} ${call.databasePath}\` lists what the replica holds`,
    );
  }
  // On a replica with epochs, each promotion starts a new one: what came before is in the epoch before.
  const epoch = Number(call.env.REPLICA_EPOCH);
  const older = Number.isSafeInteger(epoch) && epoch > 1 ? `, or --epoch ${epoch - 1} (this is epoch ${epoch}, begun at a promotion)` : "";
  return new RestoreError(
    `${call.at?.toISOString()} is before the first backup in ${where}, which is from ${oldest} (to the second). Try: --at a later time, or --latest${older}`,
  );
}

/** Runs `litestream restore [-timestamp T] -o OUTPUT DB`; throws a RestoreError with a hint when it fails. */
export async function litestreamRestore(call: LitestreamRestore): Promise<LitestreamOutcome> {
  const args = ["restore", "-config", call.configPath, "-json", "-o", call.outputPath];
  if (call.at !== null) args.push("-timestamp", call.at.toISOString());
  const started = performance.now();
  const result = await run([...args, call.databasePath], call.env, call.signal);
  const seconds = (performance.now() - started) / 1000;
  if (result.exitCode !== 0) {
    const why = reason(result.stderr + result.stdout);
    if (why.includes(NO_BACKUP)) throw await noBackupError(call);
    throw new RestoreError(
      `litestream restore failed: ${why}. Try: check the replica's endpoint, bucket, path and credentials in ${call.configPath}; \`litestream ltx -config ${call.configPath} ${call.databasePath}\` lists what the replica holds`,
    );
  }
  let txid: string | null = null;
  try {
    const summary = JSON.parse(result.stdout) as { txid?: unknown };
    if (typeof summary.txid === "string" && summary.txid !== "") txid = summary.txid;
  } catch {
    // The summary is informational: the restored file itself is checked next.
  }
  return { seconds, txid };
}
