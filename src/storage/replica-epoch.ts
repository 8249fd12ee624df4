/**
 * `<data-dir>/replica.env`: which epoch of the replica this node writes (a primary, with the lease's holder name)
 * or follows (a standby). It is an environment file, so Litestream's units read it (EnvironmentFile) and Litestream
 * expands `${REPLICA_EPOCH}` in the replica path of litestream.yml; shortener's commands read it the same way when
 * they read that config or run Litestream. `shortener promote` and `shortener lease follow` write it, atomically.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { writeFileAtomic } from "../lib/atomic-file";
import type { Lease } from "./replica-lease";

export const EPOCH_VARIABLE = "REPLICA_EPOCH";
export const HOLDER_VARIABLE = "REPLICA_LEASE_HOLDER";
export const RESTORED_LINK_VARIABLE = "REPLICA_RESTORED_LINK_ID";
export const RESTORED_VISIT_VARIABLE = "REPLICA_RESTORED_VISIT_ID";

export interface ReplicaEnv {
  epoch: number;
  /** Set on the node that holds the lease at that epoch (it wrote it when it took the lease); null on a standby. */
  holder: string | null;
  /**
   * On a node that `promote` made the primary by restoring the old epoch: the highest link id that state had given.
   * A link in the old primary's database with a higher id was created after it, and is not here (`import db`).
   */
  restoredLinkId?: number | null;
  /** The same for visits (raw visit ids): the old primary's visits past it, to links older than the cut, are not here. */
  restoredVisitId?: number | null;
}

export function replicaEnvPath(dataDir: string): string {
  return join(dataDir, "replica.env");
}

/** `promote`'s note of the holder it is about to become, renamed to replica.env once the promotion is done. */
export function promotionNotePath(dataDir: string): string {
  return `${replicaEnvPath(dataDir)}.promoting`;
}

export class ReplicaEnvError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ReplicaEnvError";
  }
}

/** The data dir's replica.env, or null when there is none; a ReplicaEnvError for a file that is not one of ours. */
export function readReplicaEnv(dataDir: string): ReplicaEnv | null {
  return readReplicaEnvFile(replicaEnvPath(dataDir));
}

/** The same for a file of that form at `path` (also `promote`'s note of the holder it is about to become). */
export function readReplicaEnvFile(path: string): ReplicaEnv | null {
  if (!existsSync(path)) return null;
  const values = new Map<string, string>();
  for (const line of readFileSync(path, "utf8").split("\n")) {
    const match = /^([A-Z_][A-Z0-9_]*)=(.*)$/.exec(line.trim());
    if (match) values.set(match[1] as string, match[2] as string);
  }
  const epoch = Number(values.get(EPOCH_VARIABLE));
  if (!Number.isSafeInteger(epoch) || epoch < 1) {
    throw new ReplicaEnvError(
      `${path} has no ${EPOCH_VARIABLE}=N (a whole number from 1). Try: shortener lease follow (a standby), or shortener promote`,
    );
  }
  const holder = values.get(HOLDER_VARIABLE) ?? "";
  const env: ReplicaEnv = { epoch, holder: holder === "" ? null : holder };
  const restoredLinkId = wholeNumber(values.get(RESTORED_LINK_VARIABLE));
  if (restoredLinkId !== null) env.restoredLinkId = restoredLinkId;
  const restoredVisitId = wholeNumber(values.get(RESTORED_VISIT_VARIABLE));
  if (restoredVisitId !== null) env.restoredVisitId = restoredVisitId;
  return env;
}

/** A variable's value as a whole number from 0, or null (absent or not one). */
function wholeNumber(value: string | undefined): number | null {
  const number = value !== undefined && /^\d+$/.test(value) ? Number(value) : Number.NaN;
  return Number.isSafeInteger(number) ? number : null;
}

/** promote's note, or null when there is none (no promotion under way, or it finished: the note became replica.env). */
export function readPromotionNote(dataDir: string): ReplicaEnv | null {
  return readReplicaEnvFile(promotionNotePath(dataDir));
}

/**
 * Whether `shortener promote` made this node the lease's holder, or is doing so now (its note is there): from taking
 * the lease to renaming the note, the database may already have been swapped while replica.env still reads "standby".
 */
export function promotedHere(dataDir: string): boolean {
  if (existsSync(promotionNotePath(dataDir))) return true;
  try {
    return readReplicaEnv(dataDir)?.holder != null;
  } catch (error) {
    if (error instanceof ReplicaEnvError) return false;
    throw error;
  }
}

/** Whether `lease` names this node: the epoch and holder its replica.env (or promote's note) says it took. */
export function holdsLease(mine: ReplicaEnv | null, lease: Lease | null | undefined): boolean {
  return mine !== null && mine.holder !== null && lease != null && lease.epoch === mine.epoch && lease.holder === mine.holder;
}

/** Writes `path` (replicaEnvPath(dataDir), or a file renamed to it later) atomically. */
export function writeReplicaEnv(path: string, value: ReplicaEnv, why: string): void {
  const lines = [
    `# ${why}`,
    "# Written by shortener (promote, lease follow); Litestream's units read it. Do not edit: run those commands.",
    `${EPOCH_VARIABLE}=${value.epoch}`,
    ...(value.holder === null ? [] : [`${HOLDER_VARIABLE}=${value.holder}`]),
    ...(value.restoredLinkId == null ? [] : [`${RESTORED_LINK_VARIABLE}=${value.restoredLinkId}`]),
    ...(value.restoredVisitId == null ? [] : [`${RESTORED_VISIT_VARIABLE}=${value.restoredVisitId}`]),
    "",
  ];
  writeFileAtomic(path, lines.join("\n"), 0o644);
}

/** `env` with this node's epoch in it, as Litestream's unit sees it (the file wins, as the later EnvironmentFile). */
export function withReplicaEpoch(dataDir: string, env: Record<string, string | undefined>): Record<string, string | undefined> {
  const replica = readReplicaEnv(dataDir);
  return replica === null ? env : { ...env, [EPOCH_VARIABLE]: String(replica.epoch) };
}
