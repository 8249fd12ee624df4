/**
 * How long a VM loss keeps writes away (DESIGN.md: RTO <= 5 min for a VM loss), measured with dist/shortener, real
 * Litestream and the moto S3 server on loopback (the tests' setup, test/support), as runbooks/promote-standby.md runs:
 *
 * 1. A primary with LINKS links (seeded straight into SQLite), replicating to a path with epochs, holding the lease
 *    (epoch 1, --lease-term TERM); a standby following it (`lease follow`, `litestream restore -f`), serving.
 * 2. A last link created on the primary (--durability replicated), then its server and Litestream are SIGKILLed.
 * 3. The runbook on the standby: stop the follow, `shortener promote --json`, start Litestream and the primary.
 *
 * Prints, from the kill: when promote started and ended (its own wait for the lease to lapse, its restore), when the
 * new primary answered /readyz, and when it accepted its first create; and the window in which neither the standby
 * (its copy replaced by the promotion) nor the new primary was ready: Caddy's only no-upstream time.
 *
 * Usage: node_modules/.bin/bun bench/promote.ts [--links 1000000] [--lease-term 30s]
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
  options: { links: { type: "string", default: "1000000" }, "lease-term": { type: "string", default: "30s" } },
});
const LINKS = Number(values.links);
const TERM = values["lease-term"];
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
  const lastSeeded = codes.at(-1) as string;
  await standby.start();
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
  const promoteStart = since();
  const report = JSON.parse(await cli(bDir, b.configPath, "promote", "--json")) as {
    waitedSeconds: number;
    seconds: number;
    restored: { links: number };
  };
  const promoteEnd = since();
  // Step 4: Litestream, then blue restarted as the primary.
  const bLitestream = new LitestreamProcess(b.configPath, b.socketPath, undefined, epochEnv(bDir));
  track(bLitestream);
  await bLitestream.start();
  await standby.stop();
  const newPrimary = new TestServer({ dataDir: bDir, args: primaryArgs(b.configPath) });
  newPrimary.apiKey = primary.apiKey;
  track(newPrimary);
  await newPrimary.start();
  const readyAt = since();
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
    promoteStart,
    promoteEnd,
    waitedSeconds: report.waitedSeconds,
    restoredLinks: report.restored.links,
    readyAt,
    firstWriteAt,
    // The standby stops being ready when promote swaps its copy, just before promote ends: at least this long.
    noUpstreamSeconds: Math.round((readyAt - promoteEnd) * 1000) / 1000,
    lastLinkKept: lastKept,
    cpus: navigator.hardwareConcurrency,
  };
  console.log(
    `${LINKS} links (${(databaseBytes / 2 ** 20).toFixed(0)} MiB), --lease-term ${TERM}; from the primary's kill: promote ran ${promoteStart}-${promoteEnd} s ` +
      `(waited ${report.waitedSeconds} s for the lease, restored ${report.restored.links} links), the new primary ready at ${readyAt} s, ` +
      `its first create accepted at ${firstWriteAt} s; no node ready for ${figures.noUpstreamSeconds} s (promote's end to the new primary's readiness); the last acknowledged link ${lastKept ? "kept" : "LOST"}`,
  );
  console.log(`PROMOTE_JSON ${JSON.stringify(figures)}`);
} finally {
  await cleanup();
}
