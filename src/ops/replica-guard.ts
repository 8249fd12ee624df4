/**
 * A node whose data directory holds no database must not create one while its replica holds that database. Litestream,
 * meeting a new database below the replica's position, takes it as the newest state and uploads it: a replacement VM
 * started on the old one's replica path would turn an empty database into what `restore --latest` gives back, and
 * leave the links only in history that retention then deletes. So the commands that create the database (`serve`,
 * `keys create`) first ask the replica, with --replication litestream, and stop with what to do instead.
 */
import { existsSync } from "node:fs";
import type { Config } from "../config";
import { UsageError } from "../errors";
import { formatIsoDate } from "../lib/iso-date";
import { leaseLocationFor } from "../storage/litestream-config";
import { holdsLease, readReplicaEnv, withReplicaEpoch } from "../storage/replica-epoch";
import { LeaseStore } from "../storage/replica-lease";
import { LitestreamFailed, replicaFileTimes } from "./drill/litestream-cli";

/** How long the question may take: an S3 endpoint that does not answer makes Litestream wait, not fail. */
const ASK_TIMEOUT_MS = 30_000;

export async function refuseEmptyDatabaseOverReplica(config: Readonly<Config>, env: Record<string, string | undefined>): Promise<void> {
  if (config.replication !== "litestream" || existsSync(config.databasePath)) return;
  let times: number[];
  try {
    times = await replicaFileTimes({
      configPath: config.litestreamConfig,
      databasePath: config.databasePath,
      env: withReplicaEpoch(config.dataDir, env),
      timeoutMs: ASK_TIMEOUT_MS,
    });
  } catch (error) {
    const why = error instanceof LitestreamFailed ? error.message : String(error);
    throw new Error(
      `there is no database at ${config.databasePath}, and whether the replica holds one cannot be told (${why}); a new empty ` +
        "database could replace the replica's newest state. Try: give this command Litestream's environment (/etc/litestream.env) " +
        "and a store that answers, then run it again",
    );
  }
  if (times.length === 0) return;
  throw new Error(
    `there is no database at ${config.databasePath}, but the replica holds one (${times.length} files, the newest from ` +
      `${formatIsoDate(Math.max(...times))}): a new empty database would replace it as the newest state. Try: shortener restore ` +
      "--latest, then start again (runbooks/first-start.md); to start empty on purpose, give this node a replica path of its own",
  );
}

/**
 * The CLI's writes (`keys create|revoke`, `webhooks create|delete|…`, `import`) go to the primary's database only: a
 * standby's is its copy of the replica, and on a replica with epochs, a node that does not hold the lease is not the
 * primary whatever its role says (its writes would reach no live replica). A usage error (exit 2) naming `command`.
 */
export async function refuseWriteOffPrimary(
  config: Readonly<Config>,
  env: Record<string, string | undefined>,
  command: string,
): Promise<void> {
  const elsewhere = `run \`shortener ${command}\` on the primary (what it writes reaches this node with the replica)`;
  if (config.role === "standby") throw new UsageError(`a standby takes no writes: ${elsewhere}`);
  if (config.replication !== "litestream") return;
  const location = leaseLocationFor(config.litestreamConfig, config.databasePath, env);
  if (location === null) return;
  const mine = readReplicaEnv(config.dataDir);
  const current = await new LeaseStore(location).read();
  if (holdsLease(mine, current?.lease)) return;
  const who = current === null ? "no node holds it yet" : `epoch ${current.lease.epoch} is held by ${current.lease.holder}`;
  throw new UsageError(`this node does not hold the replica lease (${who}), so it is not the primary: ${elsewhere}`);
}
