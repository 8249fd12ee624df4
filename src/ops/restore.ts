/**
 * `shortener restore --at T | --latest`: point-in-time restore from the Litestream replica, integrity-checked and
 * swapped in atomically, the old database kept aside (the procedure is in restore/restore-procedure.ts). Refuses
 * while a server or Litestream has the database open; `--output PATH` restores into another file instead and never
 * touches the live one. Exit 0 restored; 1 refused or failed, the live database as it was; 2 a misuse.
 */
import { resolve } from "node:path";
import type { Command } from "../commands/command";
import { loadConfig } from "../config";
import { UsageError } from "../errors";
import type { ParsedArgs } from "../lib/args";
import { LitestreamConfigError, readLitestreamConfig } from "../storage/litestream-config";
import { ReplicaEnvError, withReplicaEpoch } from "../storage/replica-epoch";
import { stringFlag } from "./flags";
import { RestoreError } from "./restore/restore-error";
import { type RestoreMode, type RestoreReport, runRestore } from "./restore/restore-procedure";
import { parseRestoreTime } from "./restore/restore-time";

const EXIT_REFUSED = 1;

/** `env` with --epoch's epoch (the history of an earlier primary, on a replica with epochs) in place of the node's. */
function replicaEpoch(args: ParsedArgs, env: Record<string, string | undefined>): Record<string, string | undefined> {
  const epoch = stringFlag(args, "epoch");
  if (epoch === undefined) return env;
  if (!/^[1-9]\d{0,8}$/.test(epoch)) throw new UsageError(`--epoch "${epoch}" is not an epoch number (1, 2, …)`);
  return { ...env, REPLICA_EPOCH: epoch };
}

/** The instant to restore, or null for --latest. */
function instant(args: ParsedArgs): Date | null {
  const at = stringFlag(args, "at");
  const latest = args.flags.has("latest");
  if (at !== undefined && latest) throw new UsageError("give --at TIME or --latest, not both");
  if (at === undefined && !latest) {
    throw new UsageError("restore needs --at TIME (RFC 3339, e.g. 2026-11-22T10:15:00Z) or --latest for the newest state");
  }
  return at === undefined ? null : parseRestoreTime(at, Date.now());
}

function print(report: RestoreReport): void {
  const state = report.at === null ? "its newest replicated state" : `its state at ${report.at}`;
  const lines =
    report.mode === "dry-run"
      ? [`dry run: the replica of ${report.database} restores to ${state}; nothing was changed`]
      : [`restored ${report.restoredTo} to ${state}${report.mode === "output" ? ` (from the replica of ${report.database})` : ""}`];
  lines.push(
    `  integrity_check ok; ${report.links} links; newest heartbeat ${report.newestHeartbeat ?? "none"}; schema version ${report.schemaVersion}; txid ${report.txid ?? "unknown"}`,
  );
  if (report.mode === "in-place") {
    const [main, ...sidecars] = report.keptAside;
    lines.push(
      main === undefined
        ? "  there was no database to keep aside"
        : `  the previous database is kept aside as ${main}${sidecars.length === 0 ? "" : ` (with its ${sidecars.map((p) => p.slice(main.length)).join(", ")})`}`,
    );
  }
  lines.push(`  took ${report.seconds.toFixed(1)} s (litestream restore ${report.litestreamSeconds.toFixed(1)} s)`);
  for (const note of report.notes) lines.push(`  note: ${note}`);
  if (report.mode === "in-place") {
    lines.push("next: start Litestream, then the server (runbooks/restore-point-in-time.md)");
    lines.push(`to undo: stop them again, then shortener restore --at ${report.undoAt}`);
  }
  process.stdout.write(`${lines.join("\n")}\n`);
}

export const restore: Command = {
  name: "restore",
  usage:
    "shortener restore --at TIME | --latest [--output PATH [--force]] [--dry-run] [--json] [--epoch N] [--data-dir DIR] [--litestream-config FILE] (TIME: RFC 3339, e.g. 2026-11-22T10:15:00Z)",
  summary:
    "point-in-time restore from the Litestream replica, integrity-checked, swapped in atomically; refuses while the server runs unless --output",
  booleans: ["latest", "dry-run", "force", "json"],
  options: ["at", "output", "epoch"],
  async run(args) {
    const json = args.flags.has("json");
    if (args.positionals.length > 0) throw new UsageError(`unexpected argument "${args.positionals[0]}"`);
    const config = loadConfig(args.flags, process.env);
    const at = instant(args);
    const output = stringFlag(args, "output");
    const target = output === undefined ? config.databasePath : resolve(output);
    if (target === config.databasePath && output !== undefined) {
      throw new UsageError(`--output ${output} is the live database; leave --output out to restore in place`);
    }
    if (args.flags.has("force") && output === undefined) {
      throw new UsageError("--force goes with --output; an in-place restore always keeps the old database aside");
    }
    const mode: RestoreMode = args.flags.has("dry-run") ? "dry-run" : output === undefined ? "in-place" : "output";
    const interrupt = new AbortController();
    const onSignal = () => interrupt.abort();
    process.on("SIGINT", onSignal);
    process.on("SIGTERM", onSignal);
    try {
      const litestream = readLitestreamConfig(config.litestreamConfig, process.env);
      if (!litestream.databases.includes(config.databasePath)) {
        throw new RestoreError(
          `the Litestream config ${litestream.file} does not list the database ${config.databasePath} (it lists ${litestream.databases.join(", ")}). Try: --data-dir the directory Litestream replicates, or --litestream-config the file that lists ${config.databasePath}`,
        );
      }
      const report = await runRestore({
        mode,
        databasePath: config.databasePath,
        dataDir: config.dataDir,
        opsListen: config.opsListen,
        litestreamConfig: litestream.file,
        at,
        target,
        force: args.flags.has("force"),
        env: replicaEpoch(args, withReplicaEpoch(config.dataDir, process.env)),
        signal: interrupt.signal,
      });
      if (json) process.stdout.write(`${JSON.stringify({ ok: true, ...report })}\n`);
      else print(report);
      return 0;
    } catch (error) {
      if (!(error instanceof RestoreError || error instanceof LitestreamConfigError || error instanceof ReplicaEnvError)) throw error;
      if (json) process.stdout.write(`${JSON.stringify({ ok: false, error: error.message })}\n`);
      process.stderr.write(`shortener restore: ${error.message}\n`);
      return EXIT_REFUSED;
    } finally {
      process.off("SIGINT", onSignal);
      process.off("SIGTERM", onSignal);
    }
  },
};
