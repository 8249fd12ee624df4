/**
 * The restore drill: proves, rather than assumes, that the replica brings the database back. Nothing of the live
 * node is changed; everything restored goes into a temp dir.
 *
 * 1. Find the database in the Litestream config.
 * 2. Read the live database's newest heartbeat (read-only), just before restoring: the primary rewrites it
 *    every second, so it says how far the live history reaches.
 * 3. Restore the latest state into the temp dir, timed; `integrity_check` it.
 * 4. RPO = live newest heartbeat − restored newest heartbeat (0 when the replica is level); fail above
 *    --drill-max-rpo. While a primary runs this is the age of the newest replicated heartbeat; when none runs
 *    (nothing new to lose) it still says whether the replica caught up before the writes stopped.
 * 5. Compare links with the live database: none created before the restored heartbeat may be missing from the
 *    copy, and the copy may not hold link ids the live database never handed out.
 * 6. Restore a past point (past-point.ts) and `integrity_check` it; its newest heartbeat must not be later than
 *    that point.
 * 7. Remove the temp dir, whatever happened.
 */
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Config } from "../../config";
import { LitestreamConfigError, readLitestreamConfig } from "../../storage/litestream-config";
import { type CopyFacts, compareLinks, inspectCopy, type LinkComparison } from "../../storage/restored-copy";
import { type CheckResult, fail, pass } from "../checks/check-result";
import { integrityVerdict, linksVerdict, pastHeartbeatVerdict, RUNBOOK, rpoVerdict } from "./drill-verdicts";
import { type LitestreamCall, LitestreamFailed, replicaStart, restoreReplica } from "./litestream-cli";
import { choosePastPoint } from "./past-point";

export interface DrillOptions {
  config: Readonly<Config>;
  /** The environment Litestream runs with (its config may reference credentials and the endpoint). */
  env: Record<string, string | undefined>;
  /** Aborting stops the drill at the next step (and kills a running restore); nothing is then recorded. */
  signal?: AbortSignal;
}

export interface RestoredState {
  restoreSeconds: number;
  txid: string | null;
  heartbeatAt: string | null;
  links: number;
  integrity: string[];
}

export interface DrillReport {
  ok: boolean;
  /** True when the drill was stopped by a signal before it finished. */
  interrupted: boolean;
  startedAt: string;
  finishedAt: string;
  database: string;
  litestreamConfig: string;
  /** How far the replica was behind the live database when the restore started; null when not measured. */
  rpoSeconds: number | null;
  /** Age of the newest replicated heartbeat when the restore finished: an upper bound, as it includes the restore. */
  replicaAgeSeconds: number | null;
  maxRpoSeconds: number;
  /** How long restoring the latest state took. */
  restoreSeconds: number | null;
  live: { heartbeatAt: string | null; links: number } | null;
  latest: RestoredState | null;
  links: LinkComparison | null;
  past: (RestoredState & { at: string; why: string }) | null;
  steps: CheckResult[];
}

const seconds = (ms: number) => Math.round(ms) / 1000;
const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());
const message = (error: unknown) => (error instanceof Error ? error.message : String(error));

/** Runs the drill; never throws for a failed step (each one is in `steps`), and always removes its temp dir. */
export async function runDrill(options: DrillOptions): Promise<DrillReport> {
  const { config } = options;
  const startedAt = Date.now();
  const report: DrillReport = {
    ok: false,
    interrupted: false,
    startedAt: new Date(startedAt).toISOString(),
    finishedAt: "",
    database: config.databasePath,
    litestreamConfig: config.litestreamConfig,
    rpoSeconds: null,
    replicaAgeSeconds: null,
    maxRpoSeconds: seconds(config.drillMaxRpoMs),
    restoreSeconds: null,
    live: null,
    latest: null,
    links: null,
    past: null,
    steps: [],
  };
  const workDir = mkdtempSync(join(tmpdir(), "shortener-drill-"));
  try {
    await drill(options, report, workDir);
  } catch (error) {
    // A step that throws unexpectedly still ends the drill as a failure with a reason, never silently.
    report.steps.push(fail("drill", message(error), `the drill itself could not run; see ${RUNBOOK}`));
  } finally {
    rmSync(workDir, { recursive: true, force: true });
  }
  report.interrupted = options.signal?.aborted ?? false;
  report.ok = !report.interrupted && report.steps.length > 0 && report.steps.every((s) => s.ok);
  report.finishedAt = new Date().toISOString();
  return report;
}

async function drill(options: DrillOptions, report: DrillReport, workDir: string): Promise<void> {
  const { config, env, signal } = options;
  const steps = report.steps;
  const stopped = () => signal?.aborted === true;

  // 1. The database in the Litestream config.
  let databases: string[];
  try {
    databases = readLitestreamConfig(config.litestreamConfig, env).databases;
  } catch (error) {
    if (!(error instanceof LitestreamConfigError)) throw error;
    steps.push(fail("litestream.config", error.message, "point --litestream-config at the file `litestream replicate` runs with"));
    return;
  }
  if (!databases.includes(config.databasePath)) {
    steps.push(
      fail(
        "litestream.config",
        `${config.litestreamConfig} does not replicate ${config.databasePath} (it lists ${databases.join(", ")})`,
        "check --data-dir and the dbs[].path of the Litestream config: they must name the same file",
      ),
    );
    return;
  }
  steps.push(pass("litestream.config", `${config.litestreamConfig} replicates ${config.databasePath}`));
  const call: LitestreamCall = {
    configPath: config.litestreamConfig,
    databasePath: config.databasePath,
    env,
    timeoutMs: config.drillTimeoutMs,
    signal,
  };

  // 2. The live database, just before the restore.
  if (!existsSync(config.databasePath)) {
    steps.push(
      fail("live.database", `no database at ${config.databasePath}`, "run the drill on the node that serves it, with its --data-dir"),
    );
    return;
  }
  let live: CopyFacts;
  try {
    live = inspectCopy(config.databasePath, { integrity: false });
  } catch (error) {
    steps.push(fail("live.database", `cannot read ${config.databasePath}: ${message(error)}`, "run the drill as the service user"));
    return;
  }
  const restoreStartedAt = Date.now();
  report.live = { heartbeatAt: iso(live.heartbeatAt), links: live.links };
  steps.push(pass("live.database", `${live.links} links, newest heartbeat ${iso(live.heartbeatAt) ?? "none"}`));

  // 3. The latest state.
  const latestPath = join(workDir, "latest.db");
  let restored: Awaited<ReturnType<typeof restoreReplica>>;
  try {
    restored = await restoreReplica(call, latestPath);
  } catch (error) {
    if (!(error instanceof LitestreamFailed)) throw error;
    steps.push(fail("restore.latest", error.message, `see ${RUNBOOK}: check the replica's bucket, path, credentials and endpoint`));
    return;
  }
  const restoreFinishedAt = Date.now();
  report.restoreSeconds = seconds(restored.seconds * 1000);
  steps.push(pass("restore.latest", `txid ${restored.txid ?? "?"} in ${report.restoreSeconds.toFixed(2)} s`));
  const latest = inspectOrFail("integrity.latest", latestPath, steps);
  if (latest === null) return;
  report.latest = {
    restoreSeconds: report.restoreSeconds,
    txid: restored.txid,
    heartbeatAt: iso(latest.heartbeatAt),
    links: latest.links,
    integrity: latest.integrity,
  };
  steps.push(integrityVerdict("integrity.latest", latest.integrity));

  // 4. RPO.
  const rpo = rpoVerdict(
    { liveAt: live.heartbeatAt, copyAt: latest.heartbeatAt, restoreStartedAt, restoreFinishedAt },
    config.drillMaxRpoMs,
  );
  report.rpoSeconds = rpo.rpoSeconds;
  report.replicaAgeSeconds = rpo.replicaAgeSeconds;
  steps.push(rpo.result);

  // 5. Links against the live database.
  try {
    report.links = compareLinks(config.databasePath, latestPath, latest.heartbeatAt);
    steps.push(linksVerdict(report.links));
  } catch (error) {
    steps.push(fail("links", `cannot compare the copy with the live database: ${message(error)}`, `see ${RUNBOOK}`));
  }
  if (stopped()) return;

  // 6. A past point.
  const replicaStartedAt = await replicaStartOrFail(call, steps);
  if (replicaStartedAt === null) return;
  const point = choosePastPoint(restoreStartedAt, replicaStartedAt.getTime());
  const pastPath = join(workDir, "past.db");
  let pastRestore: Awaited<ReturnType<typeof restoreReplica>>;
  try {
    pastRestore = await restoreReplica(call, pastPath, point.at);
  } catch (error) {
    if (!(error instanceof LitestreamFailed)) throw error;
    steps.push(fail("restore.past", `to ${point.at.toISOString()}: ${error.message}`, `see ${RUNBOOK}`));
    return;
  }
  steps.push(pass("restore.past", `${point.at.toISOString()} (${point.why}) in ${pastRestore.seconds.toFixed(2)} s`));
  const past = inspectOrFail("integrity.past", pastPath, steps);
  if (past === null) return;
  report.past = {
    restoreSeconds: seconds(pastRestore.seconds * 1000),
    txid: pastRestore.txid,
    at: point.at.toISOString(),
    why: point.why,
    heartbeatAt: iso(past.heartbeatAt),
    links: past.links,
    integrity: past.integrity,
  };
  steps.push(integrityVerdict("integrity.past", past.integrity));
  steps.push(pastHeartbeatVerdict(point.at.getTime(), past.heartbeatAt, latest.heartbeatAt));
}

/** Integrity, heartbeat and links of a restored file; a file SQLite cannot even open fails step `name`. */
function inspectOrFail(name: string, path: string, steps: CheckResult[]): CopyFacts | null {
  try {
    return inspectCopy(path);
  } catch (error) {
    steps.push(
      fail(name, `cannot read the restored copy: ${message(error)}`, `the replica restores a file SQLite cannot read: see ${RUNBOOK}`),
    );
    return null;
  }
}

async function replicaStartOrFail(call: LitestreamCall, steps: CheckResult[]): Promise<Date | null> {
  try {
    return await replicaStart(call);
  } catch (error) {
    if (!(error instanceof LitestreamFailed)) throw error;
    steps.push(fail("restore.past", `cannot list the replica's files: ${error.message}`, `see ${RUNBOOK}`));
    return null;
  }
}
