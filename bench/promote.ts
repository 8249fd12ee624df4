/**
 * How long a VM loss keeps writes away (DESIGN.md: RTO <= 5 min for a VM loss), measured with dist/shortener, real
 * Litestream and the moto S3 server on loopback (the tests' setup, test/support), as runbooks/promote-standby.md runs:
 *
 * 1. A primary with LINKS links (seeded straight into SQLite), replicating to a path with epochs, holding the lease
 *    (epoch 1, --lease-term TERM); a standby following it (`lease follow`, `litestream restore -f`), serving.
 * 2. A last link created on the primary (--durability replicated), then its server and Litestream are SIGKILLed.
 * 3. The runbook on the standby, whose two colours serve: stop the follow, `shortener promote --json`, and after
 *    OPERATOR_PAUSE seconds (someone reading promote's output), start Litestream, restart blue as the primary, then
 *    stop green (step 4).
 *
 * Prints, from the kill: when promote started and ended (its own wait for the lease to lapse, its restore), when the
 * new primary answered /readyz, and when it accepted its first create; and, from promote's start to green's stop, the
 * longest time between two looks (every 20 ms at /readyz of every colour) that found a node ready: Caddy's
 * no-upstream time.
 *
 * Usage: node_modules/.bin/bun bench/promote.ts [--links 1000000] [--lease-term 30s] [--operator-pause 5]
 * Prints human lines and one PROMOTE_JSON {...} line. Stops what it started on exit, failure, SIGINT or SIGTERM.
 */
import { readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { runCli, TestServer, tempDir, waitFor } from "../test/support/binary";
import { cleanEnv, followCommand, LitestreamProcess, writeLitestreamConfig } from "../test/support/litestream";
import { syncReplica } from "../test/support/replica";
import { S3Server } from "../test/support/s3";
import { ToolProcess } from "../test/support/tool-process";
import { generateCodes } from "./lib/codes";
import { cleanup, track, trackDir } from "./lib/disposables";
import { seedLinks } from "./lib/seed";

const { values } = parseArgs({
  options: {
    links: { type: "string", default: "1000000" },
    "lease-term": { type: "string", default: "30s" },
    "operator-pause": { type: "string", default: "5" },
  },
});
const LINKS = Number(values.links);
const TERM = values["lease-term"];
/** Seconds between promote's end and step 4: an operator reads promote's output before typing the next step. */
const OPERATOR_PAUSE_S = Number(values["operator-pause"]);
const PREFIX = "bench-promote";

async function cli(dir: string, configPath: string, ...args: string[]) {
  const result = await runCli(
    [...args, "--data-dir", dir, "--litestream-config", configPath, "--lease-term", TERM],
    cleanEnv(),
    15 * 60_000,
  );
  if (result.exitCode !== 0) throw new Error(`shortener ${args.join(" ")} exited ${result.exitCode}: ${result.stderr}`);
  return result.stdout;
}

function epochEnv(dir: string): Record<string, string> {
  const epoch = /^REPLICA_EPOCH=(\d+)$/m.exec(readFileSync(join(dir, "replica.env"), "utf8"))?.[1];
  if (epoch === undefined) throw new Error(`${dir}/replica.env names no epoch`);
  return { REPLICA_EPOCH: epoch };
}

const primaryArgs = (configPath: string) => [
  "--replication",
  "litestream",
  "--litestream-config",
  configPath,
  "--durability",
  "replicated",
  "--lease-term",
  TERM,
];

/** Looks at every server's /readyz every 20 ms until stopped; the longest time between two looks that found one ready. */
function watchReadiness(servers: readonly TestServer[]) {
  let stopped = false;
  let lastReady = performance.now();
  let longest = 0;
  const ready = async (server: TestServer) => {
    try {
      return (await fetch(`${server.baseUrl}/readyz`, { signal: AbortSignal.timeout(1000) })).status === 200;
    } catch {
      return false;
    }
  };
  const looking = (async () => {
    for (let looks = 0; !stopped && looks < 200_000; looks++) {
      const found = await Promise.all(servers.map(ready));
      const now = performance.now();
      if (found.some(Boolean)) {
        longest = Math.max(longest, now - lastReady);
        lastReady = now;
      }
      await Bun.sleep(20);
    }
  })();
  return {
    async stop(): Promise<number> {
      stopped = true;
      await looking;
      return Math.round(Math.max(longest, performance.now() - lastReady)) / 1000;
    },
  };
}

try {
  const s3 = await S3Server.start();
  track(s3);
  const aDir = trackDir(tempDir("bench-promote-a-"));
  const bDir = trackDir(tempDir("bench-promote-b-"));
  const prefix = `${PREFIX}/epoch-\${REPLICA_EPOCH}`;
  const a = writeLitestreamConfig({ dir: aDir, databasePath: join(aDir, "shortener.db"), s3, prefix });
  const b = writeLitestreamConfig({ dir: bDir, databasePath: join(bDir, "shortener.db"), s3, prefix });

  const codes = generateCodes(LINKS);
  const seedSeconds = await seedLinks(aDir, codes, 0);
  console.log(`seeded ${LINKS} links in ${seedSeconds.toFixed(1)} s`);
  await cli(aDir, a.configPath, "promote");
  const aLitestream = new LitestreamProcess(a.configPath, a.socketPath, undefined, epochEnv(aDir));
  track(aLitestream);
  await aLitestream.start();
  const primary = new TestServer({ dataDir: aDir, args: primaryArgs(a.configPath) });
  track(primary);
  await primary.createKey();
  await primary.start();
  await syncReplica(a.socketPath, join(aDir, "shortener.db"), 600);
  const databaseBytes = statSync(join(aDir, "shortener.db")).size;

  await cli(bDir, b.configPath, "lease", "follow");
  const follow = new ToolProcess("litestream restore -f");
  track(follow);
  await follow.spawn(followCommand(b.configPath, join(bDir, "shortener.db")), cleanEnv(epochEnv(bDir)));
  const standby = new TestServer({ dataDir: bDir, args: ["--role", "standby"] });
  track(standby);
  const standbyGreen = new TestServer({ dataDir: bDir, args: ["--role", "standby"] });
  track(standbyGreen);
  const lastSeeded = codes.at(-1) as string;
  await standby.start();
  await standbyGreen.start();
  await waitFor(
    "the standby to serve the seeded links",
    async () => (await fetch(`${standby.baseUrl}/${lastSeeded}`, { redirect: "manual" })).status === 302,
    600_000,
    200,
  );

  const last = await primary.api("/rest/v3/short-urls", {
    method: "POST",
    body: JSON.stringify({ longUrl: "https://example.com/last", customSlug: "last" }),
  });
  if (last.status !== 200) throw new Error(`the last create got ${last.status}`);
  primary.proc?.kill("SIGKILL");
  aLitestream.proc?.kill("SIGKILL");
  const killedAt = performance.now();
  const since = () => Math.round(performance.now() - killedAt) / 1000;
  await primary.proc?.exited;

  // Runbook step 2: stop the follow. Step 3: promote.
  await follow[Symbol.asyncDispose]();
  const watched = [standby, standbyGreen];
  const readiness = watchReadiness(watched);
  const promoteStart = since();
  const report = JSON.parse(await cli(bDir, b.configPath, "promote", "--json")) as {
    waitedSeconds: number;
    seconds: number;
    restored: { links: number };
  };
  const promoteEnd = since();
  await Bun.sleep(OPERATOR_PAUSE_S * 1000);
  // Step 4: Litestream, then blue restarted as the primary, then green stopped.
  const bLitestream = new LitestreamProcess(b.configPath, b.socketPath, undefined, epochEnv(bDir));
  track(bLitestream);
  await bLitestream.start();
  await standby.stop();
  const newPrimary = new TestServer({ dataDir: bDir, args: primaryArgs(b.configPath) });
  newPrimary.apiKey = primary.apiKey;
  track(newPrimary);
  watched.push(newPrimary);
  await newPrimary.start();
  const readyAt = since();
  await standbyGreen.stop();
  const noUpstreamSeconds = await readiness.stop();
  let firstWriteAt = 0;
  await waitFor(
    "the new primary's first accepted create",
    async () => {
      const response = await newPrimary.api("/rest/v3/short-urls", {
        method: "POST",
        body: JSON.stringify({ longUrl: "https://example.com/after" }),
      });
      await response.arrayBuffer();
      firstWriteAt = since();
      return response.status === 200;
    },
    120_000,
    100,
  );
  const lastKept =
    (await fetch(`${newPrimary.baseUrl}/last`, { redirect: "manual" })).headers.get("location") === "https://example.com/last";
  const figures = {
    links: LINKS,
    databaseBytes,
    leaseTerm: TERM,
    operatorPauseSeconds: OPERATOR_PAUSE_S,
    promoteStart,
    promoteEnd,
    waitedSeconds: report.waitedSeconds,
    restoredLinks: report.restored.links,
    readyAt,
    firstWriteAt,
    noUpstreamSeconds,
    lastLinkKept: lastKept,
    cpus: navigator.hardwareConcurrency,
  };
  console.log(
    `${LINKS} links (${(databaseBytes / 2 ** 20).toFixed(0)} MiB), --lease-term ${TERM}; from the primary's kill: promote ran ${promoteStart}-${promoteEnd} s ` +
      `(waited ${report.waitedSeconds} s for the lease, restored ${report.restored.links} links), the new primary ready at ${readyAt} s, ` +
      `its first create accepted at ${firstWriteAt} s; at most ${noUpstreamSeconds} s between two looks that found a node ready (promote's start to green's stop); the last acknowledged link ${lastKept ? "kept" : "LOST"}`,
  );
  console.log(`PROMOTE_JSON ${JSON.stringify(figures)}`);
} finally {
  await cleanup();
}
