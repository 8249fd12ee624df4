/**
 * `shortener lease show|follow`: the replica lease (storage/replica-lease.ts) from the operator's side. `show` says
 * which node is the primary and at which epoch, and what this node is to it. `follow` points a standby at the
 * epoch the lease names: it writes replica.env, from which litestream-follow's `restore -f` takes the replica path.
 * A copy of another epoch is never followed on (its transaction ids belong to another history): it must go first.
 */
import type { Command } from "../commands/command";
import { type Config, loadConfig } from "../config";
import { UsageError } from "../errors";
import { formatIsoDate } from "../lib/iso-date";
import { LitestreamConfigError } from "../storage/litestream-config";
import {
  holdsLease,
  promotionNotePath,
  type ReplicaEnv,
  ReplicaEnvError,
  readPromotionNote,
  readReplicaEnv,
  replicaEnvPath,
  writeReplicaEnv,
} from "../storage/replica-epoch";
import { describeLocation, LeaseUnavailable, type LeaseVersion } from "../storage/replica-lease";
import { leaseStore } from "./promote";
import { PromoteError } from "./promote/promote-error";
import { dropUntakenPromotion } from "./promote/promote-procedure";
import { existingFiles } from "./restore/database-swap";

const EXIT_REFUSED = 1;

/** A promote that took the lease (epoch N) and stopped before the swap: only a second run of it finishes the job. */
function unfinishedPromotion(epoch: number): string {
  return `this node took the lease (epoch ${epoch}) in a promote that did not finish: run shortener promote again to finish it, then restart the colours as the primary`;
}

/** What this node is to the lease, in a few words. */
export function standing(current: LeaseVersion | null, mine: ReplicaEnv | null, note: ReplicaEnv | null, role: Config["role"]): string {
  if (current !== null && holdsLease(note, current.lease)) return unfinishedPromotion(current.lease.epoch);
  const stale = note === null ? "" : "\npromote's note of a run that never took the lease is left: shortener lease follow removes it";
  return `${held(current, mine, role)}${stale}`;
}

function held(current: LeaseVersion | null, mine: ReplicaEnv | null, role: Config["role"]): string {
  if (mine === null) return "this node has no replica.env: neither primary nor standby of an epoch";
  const epoch = current?.lease.epoch;
  if (mine.holder !== null) {
    if (!holdsLease(mine, current?.lease)) return `this node held epoch ${mine.epoch} and was replaced: it must not serve as the primary`;
    // Between `promote` and the restart of its colours as the primary (runbooks/promote-standby.md, step 4).
    const restart = role === "standby" ? "; its settings still say standby: restart it as the primary" : "";
    return `this node holds it: the primary of epoch ${mine.epoch}${restart}`;
  }
  return epoch === mine.epoch ? `this node follows epoch ${mine.epoch}` : `this node follows epoch ${mine.epoch}, not the live one`;
}

export function follow(databasePath: string, dataDir: string, current: LeaseVersion, mine: ReplicaEnv | null): string {
  const epoch = current.lease.epoch;
  if (holdsLease(mine, current.lease)) {
    throw new PromoteError(`this node holds the lease (epoch ${epoch}): it is the primary, and a standby is another VM`);
  }
  if (holdsLease(readPromotionNote(dataDir), current.lease)) throw new PromoteError(unfinishedPromotion(epoch));
  // A note whose holder the lease never named is left by a promote that stopped before it took the lease: this node
  // stays a standby, and the note must not make a later fresh copy look like its own promotion (promotedHere).
  const cleared = dropUntakenPromotion({ dataDir, databasePath })
    ? `\nremoved ${promotionNotePath(dataDir)}, left by a promote that never took the lease`
    : "";
  const files = existingFiles(databasePath);
  if (files.length > 0) {
    if (mine !== null && mine.holder === null && mine.epoch === epoch) return `this node already follows epoch ${epoch}${cleared}`;
    const what =
      mine === null
        ? "a database of no known epoch"
        : mine.holder === null
          ? `a copy of epoch ${mine.epoch}`
          : `the database this node wrote as the primary of epoch ${mine.epoch}`;
    throw new PromoteError(
      `${databasePath} is ${what}, and the live epoch is ${epoch}: following on from it would mix two histories. Try: stop the colours and litestream-follow, move ${files.join(", ")} aside, then run this again`,
    );
  }
  writeReplicaEnv(
    replicaEnvPath(dataDir),
    { epoch, holder: null },
    `shortener lease follow, ${formatIsoDate(Date.now())}: this standby follows epoch ${epoch}`,
  );
  return `this node now follows epoch ${epoch} (held by ${current.lease.holder}): start litestream-follow, then the colours with SHORTENER_ROLE=standby${cleared}`;
}

export const lease: Command = {
  name: "lease",
  usage: "shortener lease show [--json] | shortener lease follow   [--data-dir DIR] [--litestream-config FILE]",
  summary: "show the replica lease (which node is the primary, at which epoch); follow: point this standby at the live epoch",
  booleans: ["json"],
  async run(args) {
    const [action, extra] = args.positionals;
    if (action !== "show" && action !== "follow") throw new UsageError(`lease needs show or follow, not ${action ?? "nothing"}`);
    if (extra !== undefined) throw new UsageError(`unexpected argument "${extra}"`);
    const config = loadConfig(args.flags, process.env);
    try {
      const store = leaseStore(config.litestreamConfig, config.databasePath, process.env);
      const current = await store.read();
      const mine = readReplicaEnv(config.dataDir);
      const note = readPromotionNote(config.dataDir);
      if (action === "follow") {
        if (current === null)
          throw new PromoteError(`no node holds the lease at ${describeLocation(store.location)} yet: promote the primary first`);
        process.stdout.write(`${follow(config.databasePath, config.dataDir, current, mine)}\n`);
        return 0;
      }
      if (args.flags.has("json")) {
        process.stdout.write(
          `${JSON.stringify({ location: describeLocation(store.location), lease: current?.lease ?? null, node: mine, promoting: note })}\n`,
        );
        return 0;
      }
      const described =
        current === null
          ? "no lease: no node has been promoted yet"
          : `epoch ${current.lease.epoch}, held by ${current.lease.holder}, renewed ${current.lease.renewedAt}, term ${current.lease.termSeconds}s`;
      process.stdout.write(`${describeLocation(store.location)}: ${described}\n${standing(current, mine, note, config.role)}\n`);
      return 0;
    } catch (error) {
      if (![PromoteError, LitestreamConfigError, LeaseUnavailable, ReplicaEnvError].some((kind) => error instanceof kind)) throw error;
      process.stderr.write(`shortener lease: ${(error as Error).message}\n`);
      return EXIT_REFUSED;
    }
  },
};
