/**
 * The point-in-time restore. The live database changes in step 5 only, and only if every step before it passed.
 *
 * 0. Refuse if the target is in use: for an in-place restore, a `shortener serve` on this data dir (its ops
 *    listener) or any process with a lock on the database files (the server, `litestream replicate`, a sqlite3
 *    shell); for --output, a process with the output open, or an existing output without --force.
 * 1. `litestream restore [-timestamp T] -o TEMP DB`, TEMP being `<target>.restore-<pid>.tmp` beside the target
 *    (same filesystem, so step 5's rename is atomic).
 * 2. Check TEMP: `PRAGMA integrity_check` exactly "ok", a shortener schema this binary knows. --dry-run reports here.
 * 3. Give TEMP a lineage of its own (storage/database-lineage.ts: `import db` tells the two histories apart), fsync it.
 * 4. In place: check again that nothing opened the database meanwhile, then keep the live database as
 *    `<db>.before-restore-<UTC time>` by hard-linking it and its -wal/-shm (the WAL holds committed transactions
 *    that are not in the main file yet, so it stays with the file it belongs to).
 * 5. Remove the target's -wal/-shm (SQLite would replay a stale WAL onto the restored file), rename TEMP over the
 *    target, fsync the directory.
 * 6. Report, with the instant of step 0's check: nothing had the database open then, so the replica held the
 *    replaced state and nothing newer, and a restore to that instant undoes this one. Whatever happened, TEMP and
 *    the files Litestream and SQLite make beside it are removed.
 */
import { existsSync, mkdirSync, rmSync } from "node:fs";
import { dirname } from "node:path";
import type { HostPort } from "../../config";
import { renewLineage } from "../../storage/database-lineage";
import { describeHolders, lockHolders, serverOnDataDir } from "./database-in-use";
import { asideName, existingFiles, fsyncFile, keepAside, SIDECARS, swapIn } from "./database-swap";
import { litestreamRestore } from "./litestream-restore";
import { RestoreError } from "./restore-error";
import { checkRestoredFile } from "./restored-file";

export type RestoreMode = "in-place" | "output" | "dry-run";

export interface RestorePlan {
  mode: RestoreMode;
  /** The live database, as the Litestream config names it. */
  databasePath: string;
  dataDir: string;
  /** Where the server's ops listener would answer. */
  opsListen: HostPort;
  litestreamConfig: string;
  /** The instant to restore; null for the newest state the replica holds. */
  at: Date | null;
  /** The file the restored copy becomes: the live database, or --output. A dry run restores beside it. */
  target: string;
  /** --output only: replace an existing file. */
  force: boolean;
  env: Record<string, string | undefined>;
  signal?: AbortSignal;
}

export interface RestoreReport {
  mode: RestoreMode;
  /** The instant restored (ISO 8601), or null for the newest state. */
  at: string | null;
  database: string;
  /** The file that now holds the restored state; null after a dry run. */
  restoredTo: string | null;
  /** The previous database files, kept aside by an in-place restore. */
  keptAside: string[];
  /** In place: restoring to this instant (ISO 8601) brings back the state this restore replaced. */
  undoAt: string | null;
  integrityCheck: "ok";
  schemaVersion: number;
  links: number;
  /** The highest link id the restored state ever gave: links created after it have higher ones. */
  lastLinkId: number;
  /** The highest raw visit id in the restored state: visits recorded after it have higher ones. */
  lastVisitId: number;
  /** The newest heartbeat in the restored state (ISO 8601): about the last moment the primary wrote to it. */
  newestHeartbeat: string | null;
  txid: string | null;
  litestreamSeconds: number;
  seconds: number;
  notes: string[];
}

const NO_LOCK_CHECK = "the file-lock check did not run: this system has no /proc/locks";
const STOP_HINT =
  "`shortener drain`, then stop the server (systemctl stop shortener@COLOUR) and Litestream (systemctl stop litestream), then restore; or restore into another file with --output PATH";

async function refuseIfInUse(plan: RestorePlan, notes: string[]): Promise<void> {
  if (plan.mode === "in-place") {
    const server = await serverOnDataDir(plan.opsListen, plan.dataDir);
    if (server !== null) {
      throw new RestoreError(
        `a shortener server (pid ${server.pid}) is running on ${plan.dataDir} (it answers on ${server.address}); restoring now would replace its database under it. Try: ${STOP_HINT}`,
      );
    }
  }
  const holders = lockHolders(plan.target);
  if (holders === null) {
    if (!notes.includes(NO_LOCK_CHECK)) notes.push(NO_LOCK_CHECK);
    return;
  }
  if (holders.length === 0) return;
  const hint = plan.mode === "in-place" ? STOP_HINT : "close it, or choose another --output";
  throw new RestoreError(
    `${plan.target} is open in ${describeHolders(holders)}; replacing it now would pull it out from under them. Try: ${hint}`,
  );
}

function removeTemp(temp: string): void {
  // temp.tmp is where Litestream itself writes before its own rename.
  for (const path of [temp, `${temp}.tmp`, ...SIDECARS.map((s) => temp + s)]) rmSync(path, { force: true });
}

/** Runs the procedure above; throws a RestoreError (live database as it was) when a step fails. */
export async function runRestore(plan: RestorePlan): Promise<RestoreReport> {
  const started = performance.now();
  const notes: string[] = [];
  if (plan.mode === "output" && !plan.force && existingFiles(plan.target).length > 0) {
    throw new RestoreError(`${existingFiles(plan.target).join(", ")} exists already. Try: another --output, or --force to replace it`);
  }
  if (plan.mode !== "dry-run") await refuseIfInUse(plan, notes);
  const checkedAt = Date.now();
  const dir = dirname(plan.target);
  if (plan.mode === "dry-run" && !existsSync(dir)) throw new RestoreError(`${dir} does not exist. Try: --output in an existing directory`);
  mkdirSync(dir, { recursive: true });
  const temp = `${plan.target}.restore-${process.pid}.tmp`;
  removeTemp(temp);
  try {
    const restored = await litestreamRestore({
      configPath: plan.litestreamConfig,
      databasePath: plan.databasePath,
      at: plan.at,
      outputPath: temp,
      env: plan.env,
      signal: plan.signal,
    });
    const facts = checkRestoredFile(temp);
    if (plan.signal?.aborted) throw new RestoreError("interrupted before the swap; nothing was changed");
    let keptAside: string[] = [];
    if (plan.mode !== "dry-run") {
      // From here the restored file gives out again the ids its source gave after this point, to other rows.
      renewLineage(temp);
      fsyncFile(temp);
      await refuseIfInUse(plan, notes);
      if (plan.mode === "in-place") keptAside = keepAside(plan.target, asideName(plan.target, checkedAt));
      swapIn(temp, plan.target);
    }
    return {
      mode: plan.mode,
      at: plan.at?.toISOString() ?? null,
      database: plan.databasePath,
      restoredTo: plan.mode === "dry-run" ? null : plan.target,
      keptAside,
      undoAt: plan.mode === "in-place" ? new Date(checkedAt).toISOString() : null,
      integrityCheck: "ok",
      schemaVersion: facts.schemaVersion,
      links: facts.links,
      lastLinkId: facts.lastLinkId,
      lastVisitId: facts.lastVisitId,
      newestHeartbeat: facts.heartbeatAt === null ? null : new Date(facts.heartbeatAt).toISOString(),
      txid: restored.txid,
      litestreamSeconds: Math.round(restored.seconds * 1000) / 1000,
      seconds: Math.round(performance.now() - started) / 1000,
      notes,
    };
  } finally {
    removeTemp(temp);
  }
}
