/**
 * `shortener promote`: this node becomes the primary, fenced by the replica lease (DESIGN.md, Failover).
 *
 * 0. Refuse while Litestream has the database open or follows it (`litestream restore -f`): stop litestream-follow.
 * 1. Read the lease. None yet: this is the first primary; take epoch 1 with `If-None-Match: *` and keep the
 *    database as it is (skip to 5). Ours already (replica.env names its epoch and holder): nothing to do.
 * 2. Another node's: watch it unchanged (same ETag) for its whole term. A change means its holder is alive and
 *    renewing: refuse. Once it has lapsed, that holder accepts no more writes (domain/lease-keeper.ts).
 * 3. Restore the newest state of the holder's epoch (`litestream restore`, integrity-checked) into a file beside the
 *    database: everything the old primary's Litestream uploaded, which is every acknowledged write when it could
 *    reach the bucket in the half term before its lease lapsed (and with --durability replicated, always).
 * 4. Note the new holder name in `replica.env.promoting`, then replace the lease with `If-Match` of the version
 *    watched: epoch + 1, this node. A conflict (another node promoted meanwhile): refuse, nothing changed. No answer
 *    (the write may have landed): keep the note and the restored file and ask for a second run, which finishes or
 *    starts over.
 * 5. Swap the restored file in (the old copy kept aside), remove the follow's -txid file, and rename
 *    replica.env.promoting to replica.env: Litestream now replicates to the new epoch's prefix, and the old holder,
 *    should it come back, finds the lease moved on and refuses writes. Interrupted after 4, a second run finds the
 *    lease naming the holder in replica.env.promoting and finishes 5.
 */
import { existsSync, readdirSync, readFileSync, renameSync, rmSync, statSync } from "node:fs";
import { hostname } from "node:os";
import { basename } from "node:path";
import { formatIsoDate } from "../../lib/iso-date";
import { randomString } from "../../lib/random";
import {
  holdsLease,
  promotionNotePath,
  type ReplicaEnv,
  readPromotionNote,
  readReplicaEnv,
  replicaEnvPath,
  writeReplicaEnv,
} from "../../storage/replica-epoch";
import {
  describeLocation,
  type Lease,
  LeaseConflict,
  type LeaseStore,
  LeaseUnavailable,
  type LeaseVersion,
  REQUEST_TIMEOUT_MS,
} from "../../storage/replica-lease";
import { describeHolders, lockHolders } from "../restore/database-in-use";
import { asideName, existingFiles, fsyncDirectory, keepAside, swapIn } from "../restore/database-swap";
import { runRestore } from "../restore/restore-procedure";
import { PromoteError } from "./promote-error";

export interface PromotePlan {
  store: LeaseStore;
  databasePath: string;
  dataDir: string;
  litestreamConfig: string;
  /** The term this node will hold the lease for (--lease-term). */
  termMs: number;
  env: Record<string, string | undefined>;
  /** Progress lines for people (waiting for a lease to lapse). */
  progress: (line: string) => void;
  signal?: AbortSignal;
}

export interface PromoteReport {
  outcome: "first-primary" | "promoted" | "already-primary" | "resumed";
  epoch: number;
  holder: string;
  /** The previous lease's epoch and holder; null for the first. */
  previous: { epoch: number; holder: string } | null;
  /** The restored state put in place of the database; null when the database was kept as it was. */
  restored: { links: number; lastLinkId: number; lastVisitId: number; newestHeartbeat: string | null; txid: string | null } | null;
  keptAside: string[];
  waitedSeconds: number;
  seconds: number;
}

const POLL_MS = 500;

/** `litestream` processes following or holding `databasePath`: they must stop before the file changes hands. */
function litestreamOnDatabase(databasePath: string): string[] {
  const found: string[] = [];
  for (const entry of existsSync("/proc") ? readdirSync("/proc") : []) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    let argv: string[];
    try {
      argv = readFileSync(`/proc/${entry}/cmdline`, "utf8").split("\0");
    } catch {
      continue;
    }
    if (basename(argv[0] ?? "") === "litestream" && argv.includes("restore") && argv.includes(databasePath)) {
      found.push(`pid ${entry} (${argv.filter((a) => a !== "").join(" ")})`);
    }
  }
  const holders = (lockHolders(databasePath) ?? []).filter((h) => h.name === "litestream");
  if (holders.length > 0) found.push(describeHolders(holders));
  return found;
}

/** Step 3's restored state, beside the database until step 5 swaps it in. */
function restoredFileOf(plan: Pick<PromotePlan, "databasePath">): string {
  return `${plan.databasePath}.promoted`;
}

/** How long promote may hold its note before its lease write answers: a younger note may be a running promote's. */
const NOTE_IN_FLIGHT_MS = REQUEST_TIMEOUT_MS + 5_000;

/**
 * Removes the note, and the state restored beside the database, of a promote that never took the lease (a write the
 * store did not answer, then a lease that names someone else); whether there was a note. A note younger than a lease
 * write may take could be a promote's still running on this node, which renames it when done: a PromoteError then.
 */
export function dropUntakenPromotion(plan: Pick<PromotePlan, "dataDir" | "databasePath">): boolean {
  const note = promotionNotePath(plan.dataDir);
  if (!existsSync(note)) return false;
  const age = Date.now() - statSync(note).mtimeMs;
  if (age < NOTE_IN_FLIGHT_MS) {
    throw new PromoteError(
      `promote wrote ${note} ${Math.round(age / 1000)} s ago and may still be running on this node: let it finish, or run this again in ${Math.ceil((NOTE_IN_FLIGHT_MS - age) / 1000)} s`,
    );
  }
  discardPromotion(plan);
  return true;
}

/** The note and the restored state of a promote that did not take the lease. */
function discardPromotion(plan: Pick<PromotePlan, "dataDir" | "databasePath">): void {
  rmSync(restoredFileOf(plan), { force: true });
  rmSync(promotionNotePath(plan.dataDir), { force: true });
}

function newHolder(dataDir: string): string {
  return `${hostname()}:${dataDir}:${randomString(6)}`;
}

/** Step 4's note: the holder name this node is about to write into the lease, in replica.env's form. */
function notePending(dataDir: string, value: ReplicaEnv): void {
  writeReplicaEnv(promotionNotePath(dataDir), value, `shortener promote, ${formatIsoDate(Date.now())}: this node holds the replica lease`);
}

/**
 * Step 4: the note, then the lease written over the version watched (`etag`; null: the first, where none may exist).
 * A conflict is a clear no: the note and the restored file go. A write the store did not answer may have landed, so
 * both stay and the operator runs promote again: it finishes if the lease names the note's holder, else starts over.
 */
async function takeLease(
  plan: PromotePlan,
  next: Lease,
  etag: string | null,
  conflict: string,
  cut: { restoredLinkId: number; restoredVisitId: number } | null = null,
): Promise<void> {
  notePending(plan.dataDir, { epoch: next.epoch, holder: next.holder, ...cut });
  try {
    await (etag === null ? plan.store.create(next) : plan.store.replace(next, etag));
  } catch (error) {
    if (error instanceof LeaseUnavailable) {
      throw new PromoteError(
        `the lease store did not answer whether this node took the lease (${error.message}). Run shortener promote again once it answers: it finishes the promotion if the lease names this node, or starts over`,
      );
    }
    discardPromotion(plan);
    if (error instanceof LeaseConflict) throw new PromoteError(conflict);
    throw error;
  }
}

/**
 * Step 2: the lease unchanged for its whole term; a PromoteError when it changed (its holder is alive). A read the
 * store does not answer is tried again (the old primary cannot renew through that outage either), until a read that
 * began after the term answers, or for another term at most.
 */
export async function waitForLapse(plan: PromotePlan, seen: LeaseVersion): Promise<number> {
  const started = performance.now();
  const termMs = seen.lease.termSeconds * 1000;
  plan.progress(
    `waiting ${seen.lease.termSeconds}s for the lease of ${seen.lease.holder} (epoch ${seen.lease.epoch}, renewed ${seen.lease.renewedAt}) to lapse`,
  );
  let unanswered: string | null = null;
  for (let polls = 0; performance.now() - started <= 2 * termMs && polls < (2 * termMs) / POLL_MS + 20; polls++) {
    await Bun.sleep(POLL_MS);
    if (plan.signal?.aborted) throw new PromoteError("interrupted while waiting for the lease to lapse; nothing was changed");
    const readFrom = performance.now() - started;
    let now: LeaseVersion | null;
    try {
      now = await plan.store.read();
    } catch (error) {
      if (!(error instanceof LeaseUnavailable)) throw error;
      if (unanswered === null) plan.progress(`the lease store did not answer (${error.message}); still waiting`);
      unanswered = error.message;
      continue;
    }
    if (now?.etag !== seen.etag) {
      const who =
        now === null ? "someone removed the lease" : `${now.lease.holder} renewed it at ${now.lease.renewedAt} (epoch ${now.lease.epoch})`;
      throw new PromoteError(
        `the lease is alive: ${who}. Its primary still serves: drain and stop its colours (or lose its VM) first, then promote; nothing was changed`,
      );
    }
    // The lease must be seen unchanged by a read begun after the whole term has gone by.
    if (readFrom > termMs) return (performance.now() - started) / 1000;
  }
  throw new PromoteError(
    `the lease store did not answer after the lease's term (${unanswered ?? "no read finished"}); nothing was changed. Run shortener promote again once it answers`,
  );
}

/** Step 5: the restored file in place, the follow's position gone, replica.env naming this node. */
function takeOver(plan: PromotePlan, restoredFile: string | null): string[] {
  let kept: string[] = [];
  if (restoredFile !== null && existsSync(restoredFile)) {
    if (existingFiles(plan.databasePath).length > 0) kept = keepAside(plan.databasePath, asideName(plan.databasePath, Date.now()));
    swapIn(restoredFile, plan.databasePath);
  }
  rmSync(`${plan.databasePath}-txid`, { force: true });
  renameSync(promotionNotePath(plan.dataDir), replicaEnvPath(plan.dataDir));
  fsyncDirectory(plan.dataDir);
  return kept;
}

export async function runPromote(plan: PromotePlan): Promise<PromoteReport> {
  const started = performance.now();
  const busy = litestreamOnDatabase(plan.databasePath);
  if (busy.length > 0) {
    throw new PromoteError(
      `Litestream has ${plan.databasePath} open: ${busy.join("; ")}. Try: systemctl stop litestream-follow (and litestream), then promote`,
    );
  }
  const mine = readReplicaEnv(plan.dataDir);
  const pending = readPromotionNote(plan.dataDir);
  const restoredFile = restoredFileOf(plan);
  const current = await plan.store.read();
  const report = (outcome: PromoteReport["outcome"], lease: Lease, previous: PromoteReport["previous"]): PromoteReport => ({
    outcome,
    epoch: lease.epoch,
    holder: lease.holder,
    previous,
    restored: null,
    keptAside: [],
    waitedSeconds: 0,
    seconds: Math.round(performance.now() - started) / 1000,
  });
  if (current !== null && holdsLease(mine, current.lease)) return report("already-primary", current.lease, null);
  if (current !== null && holdsLease(pending, current.lease)) {
    const kept = takeOver(plan, restoredFile);
    return { ...report("resumed", current.lease, null), keptAside: kept };
  }
  // A note the lease does not name is an earlier run's that never took it: this run starts over.
  if (pending !== null) dropUntakenPromotion(plan);
  const holder = newHolder(plan.dataDir);
  const lease = (epoch: number): Lease => ({ epoch, holder, renewedAt: new Date().toISOString(), termSeconds: plan.termMs / 1000 });
  if (current === null) {
    if (existsSync(`${plan.databasePath}-txid`)) {
      throw new PromoteError(
        `no node holds the lease at ${describeLocation(plan.store.location)} yet, and ${plan.databasePath} is a standby's copy: promote the primary first (it takes epoch 1), then this node can take over from it`,
      );
    }
    const first = lease(1);
    await takeLease(plan, first, null, "another node took the first lease at the same moment; nothing was changed");
    takeOver(plan, null);
    return report("first-primary", first, null);
  }
  const waitedSeconds = await waitForLapse(plan, current);
  rmSync(restoredFile, { force: true });
  const restored = await runRestore({
    mode: "output",
    databasePath: plan.databasePath,
    dataDir: plan.dataDir,
    opsListen: { hostname: "127.0.0.1", port: 0 },
    litestreamConfig: plan.litestreamConfig,
    at: null,
    target: restoredFile,
    force: true,
    env: { ...plan.env, REPLICA_EPOCH: String(current.lease.epoch) },
    signal: plan.signal,
  });
  const next = lease(current.lease.epoch + 1);
  await takeLease(
    plan,
    next,
    current.etag,
    "the lease changed while this node restored (another node was promoted, or the old one came back); nothing was changed",
    // Kept in replica.env: the old primary's links and visits past these are not here (`shortener import db`, runbook step 7).
    { restoredLinkId: restored.lastLinkId, restoredVisitId: restored.lastVisitId },
  );
  const keptAside = takeOver(plan, restoredFile);
  return {
    ...report("promoted", next, { epoch: current.lease.epoch, holder: current.lease.holder }),
    restored: {
      links: restored.links,
      lastLinkId: restored.lastLinkId,
      lastVisitId: restored.lastVisitId,
      newestHeartbeat: restored.newestHeartbeat,
      txid: restored.txid,
    },
    keptAside,
    waitedSeconds: Math.round(waitedSeconds * 10) / 10,
    seconds: Math.round(performance.now() - started) / 1000,
  };
}
