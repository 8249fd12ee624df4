/**
 * `lease`, with --replication litestream on a replica that has epochs (storage/replica-lease.ts): a primary holds the
 * lease at the epoch its replica.env names (else it refuses writes and fails /readyz); a standby follows the epoch the
 * lease names (else its copy is of a history no primary writes any more).
 */
import type { Config } from "../../config";
import { LitestreamConfigError, leaseLocationFor } from "../../storage/litestream-config";
import { holdsLease, promotionNotePath, ReplicaEnvError, readPromotionNote, readReplicaEnv } from "../../storage/replica-epoch";
import { describeLocation, LeaseStore, LeaseUnavailable } from "../../storage/replica-lease";
import { type Check, type CheckResult, fail, pass } from "./check-result";

const RUNBOOK = "runbooks/promote-standby.md";

/** The check, or none for a replica without epochs (or a config `litestream.config` already fails). */
export function leaseChecks(config: Readonly<Config>, env: Record<string, string | undefined>): Check[] {
  let store: LeaseStore;
  try {
    const location = leaseLocationFor(config.litestreamConfig, config.databasePath, env);
    if (location === null) return [];
    store = new LeaseStore(location);
  } catch (error) {
    if (error instanceof LitestreamConfigError) return [];
    throw error;
  }
  return [{ name: "lease", run: () => leaseCheck(config, store) }];
}

export async function leaseCheck(config: Readonly<Config>, store: LeaseStore): Promise<CheckResult> {
  let mine: ReturnType<typeof readReplicaEnv>;
  let note: ReturnType<typeof readReplicaEnv>;
  let current: Awaited<ReturnType<LeaseStore["read"]>>;
  try {
    mine = readReplicaEnv(config.dataDir);
    note = readPromotionNote(config.dataDir);
    current = await store.read();
  } catch (error) {
    if (!(error instanceof ReplicaEnvError || error instanceof LeaseUnavailable)) throw error;
    return fail("lease", error.message, `the lease lives at ${describeLocation(store.location)}, read with Litestream's credentials`);
  }
  if (current === null) {
    return fail(
      "lease",
      `no node holds the lease at ${describeLocation(store.location)}`,
      `on the primary: shortener promote (${RUNBOOK})`,
    );
  }
  const { epoch, holder } = current.lease;
  if (holdsLease(note, current.lease)) {
    return fail(
      "lease",
      `this node took the lease (epoch ${epoch}) in a promote that did not finish: no node takes writes`,
      `run shortener promote again to finish it, then restart it as the primary (${RUNBOOK}, step 4)`,
    );
  }
  if (config.role === "primary") {
    if (holdsLease(mine, current.lease)) {
      return pass("lease", `this node holds epoch ${epoch} (renewed ${current.lease.renewedAt})`);
    }
    const was = mine?.holder == null ? "this node never took it" : `this node held epoch ${mine.epoch}`;
    return fail(
      "lease",
      `epoch ${epoch} is held by ${holder}; ${was}`,
      `this node must not serve as the primary: make it a standby (${RUNBOOK})`,
    );
  }
  if (note !== null) {
    // Left by a promote that stopped before the lease named it: a copy replaced later would be taken for a promotion.
    return fail(
      "lease",
      `${promotionNotePath(config.dataDir)} is left by a promote that never took the lease`,
      `if this node stays a standby: shortener lease follow (it removes the note); else run shortener promote again (${RUNBOOK})`,
    );
  }
  if (mine !== null && mine.holder === null && mine.epoch === epoch)
    return pass("lease", `this standby follows epoch ${epoch}, held by ${holder}`);
  // Between `promote` and the restart as the primary: its colours serve the old copy and no node takes writes.
  if (holdsLease(mine, current.lease)) {
    return fail(
      "lease",
      `this node took the lease (epoch ${epoch}) and still runs as a standby: no node takes writes`,
      `restart it as the primary, with SHORTENER_ROLE=primary (${RUNBOOK}, step 4)`,
    );
  }
  const follows = mine === null ? "this standby has no replica.env" : `this standby follows epoch ${mine.epoch}`;
  return fail(
    "lease",
    `${follows}, and the live epoch is ${epoch} (held by ${holder})`,
    `follow the live epoch afresh: shortener lease follow (${RUNBOOK})`,
  );
}
