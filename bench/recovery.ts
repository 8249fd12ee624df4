/**
 * Recovery figures, measured with `shortener drill` itself against dist/shortener, real Litestream and the moto S3
 * server on loopback (the tests' setup, test/support):
 *
 * 1. Steady-state RPO: a primary creating LOAD links a second, replicated every second (sync-interval 1s); SAMPLES
 *    drills at random moments. Each gives the age of the newest replicated heartbeat when its restore finished
 *    (`replicaAgeSeconds`: an upper bound, as it includes the restore's own time), the same age when the restore
 *    started (a lower bound: the replica may take uploads meanwhile), and how far the replica was behind the live
 *    database's newest heartbeat when the restore started (`rpoSeconds`, what the drill gates on).
 *    Target: p99 age <= 2 s.
 * 2. Restore time: a database of LINKS links (seeded straight into SQLite after the binary's own migrations),
 *    replicated, then drilled DRILLS times: how long `litestream restore` of the latest state takes, and the drill.
 *    Target: <= 60 s for 1 000 000 links.
 *
 * Usage: node_modules/.bin/bun bench/recovery.ts [--samples 200] [--load 20] [--links 1000000] [--drills 3]
 * Prints human lines and one RECOVERY_JSON {...} line. Stops what it started on exit, failure, SIGINT or SIGTERM.
 */
import { Database } from "bun:sqlite";
import { statSync } from "node:fs";
import { loadavg } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { runCli, startServer, type TestServer, waitFor } from "../test/support/binary";
import { cleanEnv, LitestreamProcess, writeLitestreamConfig } from "../test/support/litestream";
import { newestHeartbeat, syncReplica } from "../test/support/replica";
import { S3Server } from "../test/support/s3";
import { cleanup, track } from "./lib/disposables";

const { values } = parseArgs({
  options: {
    samples: { type: "string", default: "200" },
    load: { type: "string", default: "20" },
    links: { type: "string", default: "1000000" },
    drills: { type: "string", default: "3" },
  },
});
const SAMPLES = Number(values.samples);
const LOAD = Number(values.load);
const LINKS = Number(values.links);
const DRILLS = Number(values.drills);

interface DrillReport {
  ok: boolean;
  rpoSeconds: number | null;
  replicaAgeSeconds: number | null;
  restoreSeconds: number | null;
  past: { restoreSeconds: number } | null;
  steps: { name: string; ok: boolean; detail: string }[];
}

function summary(values: number[]): { p50: number; p95: number; p99: number; max: number; n: number } {
  const sorted = [...values].sort((a, b) => a - b);
  const at = (p: number) => sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? Number.NaN;
  return { p50: at(50), p95: at(95), p99: at(99), max: sorted.at(-1) ?? Number.NaN, n: sorted.length };
}

/** A primary replicated to `prefix` of the S3 server (`server` as given, or a fresh one). */
async function replicatedNode(s3: S3Server, prefix: string, given?: TestServer) {
  const server = given ?? (await startServer());
  if (given !== undefined) await server.start();
  track(server);
  const databasePath = join(server.dataDir, "shortener.db");
  const { configPath, socketPath } = writeLitestreamConfig({ dir: server.dataDir, databasePath, s3, prefix });
  const litestream = new LitestreamProcess(configPath, socketPath);
  track(litestream);
  await litestream.start();
  await waitFor("the first heartbeat", () => newestHeartbeat(databasePath) > 0);
  return { server, databasePath, configPath, socketPath };
}

async function drill(server: TestServer, configPath: string): Promise<{ report: DrillReport; wallSeconds: number }> {
  const t0 = performance.now();
  const result = await runCli(["drill", "--json", ...server.settings, "--litestream-config", configPath], cleanEnv(), 15 * 60_000);
  const wallSeconds = (performance.now() - t0) / 1000;
  if (result.stdout.trim() === "") throw new Error(`drill printed nothing (exit ${result.exitCode}): ${result.stderr}`);
  return { report: JSON.parse(result.stdout) as DrillReport, wallSeconds };
}

const failedSteps = (report: DrillReport) =>
  report.steps
    .filter((s) => !s.ok)
    .map((s) => `${s.name}: ${s.detail}`)
    .join("; ");

async function measureRpo(s3: S3Server) {
  const node = await replicatedNode(s3, "rpo");
  let creating = true;
  let created = 0;
  const load = (async () => {
    for (let i = 0; creating && i < 10_000_000; i++) {
      const tick = performance.now();
      const response = await node.server.api("/rest/v3/short-urls", {
        method: "POST",
        body: JSON.stringify({ longUrl: `https://example.com/rpo/${i}` }),
      });
      await response.arrayBuffer();
      if (response.status === 200) created++;
      await Bun.sleep(Math.max(0, 1000 / LOAD - (performance.now() - tick)));
    }
  })();
  const ages: number[] = [];
  const agesAtStart: number[] = [];
  const rpos: number[] = [];
  const failures: string[] = [];
  try {
    await syncReplica(node.socketPath, node.databasePath);
    for (let i = 0; i < SAMPLES; i++) {
      // Random moments, so the samples do not lock onto the 1 s heartbeat and sync cadence.
      await Bun.sleep(Math.random() * 1000);
      const { report } = await drill(node.server, node.configPath);
      if (!report.ok) failures.push(failedSteps(report));
      if (report.rpoSeconds !== null) rpos.push(report.rpoSeconds);
      if (report.replicaAgeSeconds !== null && report.restoreSeconds !== null) {
        ages.push(report.replicaAgeSeconds);
        agesAtStart.push(Math.round((report.replicaAgeSeconds - report.restoreSeconds) * 1000) / 1000);
      }
    }
  } finally {
    creating = false;
    await load;
  }
  return {
    samples: SAMPLES,
    loadPerSecond: LOAD,
    linksCreated: created,
    failures,
    replicaAge: summary(ages),
    replicaAgeAtStart: summary(agesAtStart),
    rpo: summary(rpos),
  };
}

/** Starts the binary once on an empty data dir (its migrations make the schema), stops it, inserts `count` links. */
async function seed(count: number): Promise<{ server: TestServer; seconds: number }> {
  const server = await startServer();
  track(server);
  await server.stop();
  server.proc = null;
  const t0 = performance.now();
  const db = new Database(join(server.dataDir, "shortener.db"), { strict: true });
  try {
    const insert = db.query<unknown, [string, string, number]>(
      "INSERT INTO short_urls (short_code, long_url, created_at) VALUES (?, ?, ?)",
    );
    const createdAt = Date.now() - 3_600_000;
    db.transaction(() => {
      for (let i = 0; i < count; i++) insert.run(`b${i.toString(36)}`, `https://example.com/bench/${i}/${crypto.randomUUID()}`, createdAt);
    }).immediate();
  } finally {
    db.close();
  }
  return { server, seconds: (performance.now() - t0) / 1000 };
}

async function measureRestore(s3: S3Server) {
  const seeded = await seed(LINKS);
  console.log(`seeded ${LINKS} links in ${seeded.seconds.toFixed(1)} s`);
  const uploadStarted = performance.now();
  const node = await replicatedNode(s3, "restore", seeded.server);
  await syncReplica(node.socketPath, node.databasePath, 600);
  const uploadSeconds = (performance.now() - uploadStarted) / 1000;
  const databaseBytes = statSync(node.databasePath).size;
  console.log(`database ${(databaseBytes / 2 ** 20).toFixed(0)} MiB; replicated in ${uploadSeconds.toFixed(1)} s`);
  const drills: { ok: boolean; restoreSeconds: number | null; pastRestoreSeconds: number | null; drillSeconds: number; failed: string }[] =
    [];
  for (let i = 0; i < DRILLS; i++) {
    const { report, wallSeconds } = await drill(node.server, node.configPath);
    const failed = failedSteps(report);
    drills.push({
      ok: report.ok,
      restoreSeconds: report.restoreSeconds,
      pastRestoreSeconds: report.past?.restoreSeconds ?? null,
      drillSeconds: wallSeconds,
      failed,
    });
    console.log(
      `drill ${i + 1}: ${report.ok ? "passed" : `FAILED (${failed})`}; latest restored in ${report.restoreSeconds} s, past point in ${report.past?.restoreSeconds} s, whole drill ${wallSeconds.toFixed(1)} s`,
    );
  }
  return { links: LINKS, databaseBytes, uploadSeconds, drills };
}

try {
  const s3 = await S3Server.start();
  track(s3);
  const rpo = await measureRpo(s3);
  const f = (s: { p50: number; p95: number; p99: number; max: number }) => `p50 ${s.p50} s, p95 ${s.p95} s, p99 ${s.p99} s, max ${s.max} s`;
  console.log(
    `steady state, ${rpo.samples} drills under ${LOAD} creates/s (load average ${loadavg()[0]?.toFixed(1)} on ${navigator.hardwareConcurrency} CPUs):`,
  );
  console.log(`  age of the newest replicated heartbeat when the restore finished: ${f(rpo.replicaAge)}`);
  console.log(`  the same when the restore started (a lower bound): ${f(rpo.replicaAgeAtStart)}`);
  console.log(`  replica behind the live database's newest heartbeat (the drill's RPO): ${f(rpo.rpo)}`);
  console.log(`  ${rpo.failures.length} drill(s) failed${rpo.failures.map((x) => `\n    ${x}`).join("")}`);
  const restore = await measureRestore(s3);
  console.log(`RECOVERY_JSON ${JSON.stringify({ rpo, restore, cpus: navigator.hardwareConcurrency, loadAverage: loadavg() })}`);
} finally {
  await cleanup();
}
