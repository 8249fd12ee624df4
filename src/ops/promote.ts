/**
 * `shortener promote`: make this node the primary, fenced by the replica lease (the procedure is in
 * promote/promote-procedure.ts). Exit 0 promoted (or already the primary); 1 refused or failed, with what to do;
 * 2 a misuse. The runbook around it (stopping the follow, starting Litestream and the colours) is
 * runbooks/promote-standby.md.
 */
import type { Command } from "../commands/command";
import { loadConfig } from "../config";
import { UsageError } from "../errors";
import { LitestreamConfigError, leaseLocationFor } from "../storage/litestream-config";
import { ReplicaEnvError } from "../storage/replica-epoch";
import { LeaseStore, LeaseUnavailable } from "../storage/replica-lease";
import { PromoteError } from "./promote/promote-error";
import { type PromoteReport, runPromote } from "./promote/promote-procedure";
import { RestoreError } from "./restore/restore-error";

const EXIT_REFUSED = 1;

/** The replica's lease store for this node's database, or a PromoteError saying why there is none. */
export function leaseStore(litestreamConfig: string, databasePath: string, env: Record<string, string | undefined>): LeaseStore {
  const location = leaseLocationFor(litestreamConfig, databasePath, env);
  if (location === null) {
    throw new PromoteError(
      `the replica path in ${litestreamConfig} has no epoch, so there is no lease to take. Try: path: \${LITESTREAM_S3_PATH}/epoch-\${REPLICA_EPOCH} (README, "Promoting the standby")`,
    );
  }
  return new LeaseStore(location);
}

function print(report: PromoteReport): void {
  const lines: Record<PromoteReport["outcome"], string> = {
    "already-primary": `this node already holds the replica lease (epoch ${report.epoch}); nothing to do`,
    "first-primary": `this node took the first replica lease: epoch 1; its database stays as it is`,
    promoted: `promoted: epoch ${report.epoch}, taken over from ${report.previous?.holder} (epoch ${report.previous?.epoch})`,
    resumed: `finished an interrupted promotion: epoch ${report.epoch}`,
  };
  process.stdout.write(`${lines[report.outcome]}\n`);
  if (report.restored !== null) {
    process.stdout.write(
      `restored the old epoch's newest state: ${report.restored.links} links (ids through ${report.restored.lastLinkId}; visits through ${report.restored.lastVisitId}), newest heartbeat ${report.restored.newestHeartbeat ?? "none"}, txid ${report.restored.txid ?? "?"}\n`,
    );
  }
  if (report.keptAside.length > 0) process.stdout.write(`the previous copy is kept as ${report.keptAside.join(", ")}\n`);
  if (report.outcome !== "already-primary") {
    process.stdout.write(
      `holder ${report.holder}. Next: start Litestream (it replicates to epoch-${report.epoch}), then the colours with SHORTENER_ROLE=primary (runbooks/promote-standby.md)\n`,
    );
  }
}

export const promote: Command = {
  name: "promote",
  usage: "shortener promote [--json] [--lease-term 30s] [--data-dir DIR] [--litestream-config FILE]",
  summary: "make this node the primary: take the replica lease from a lapsed holder, restore its newest state, move to a new epoch",
  booleans: ["json"],
  async run(args) {
    const json = args.flags.has("json");
    if (args.positionals.length > 0) throw new UsageError(`unexpected argument "${args.positionals[0]}"`);
    const config = loadConfig(args.flags, process.env);
    const interrupt = new AbortController();
    const onSignal = () => interrupt.abort();
    process.on("SIGINT", onSignal);
    process.on("SIGTERM", onSignal);
    try {
      const report = await runPromote({
        store: leaseStore(config.litestreamConfig, config.databasePath, process.env),
        databasePath: config.databasePath,
        dataDir: config.dataDir,
        litestreamConfig: config.litestreamConfig,
        termMs: config.leaseTermMs,
        env: process.env,
        progress: (line) => process.stderr.write(`${line}\n`),
        signal: interrupt.signal,
      });
      if (json) process.stdout.write(`${JSON.stringify({ ok: true, ...report })}\n`);
      else print(report);
      return 0;
    } catch (error) {
      const known = [PromoteError, RestoreError, LitestreamConfigError, LeaseUnavailable, ReplicaEnvError];
      if (!known.some((kind) => error instanceof kind)) throw error;
      const message = (error as Error).message;
      if (json) process.stdout.write(`${JSON.stringify({ ok: false, error: message })}\n`);
      process.stderr.write(`shortener promote: ${message}\n`);
      return EXIT_REFUSED;
    } finally {
      process.off("SIGINT", onSignal);
      process.off("SIGTERM", onSignal);
    }
  },
};
