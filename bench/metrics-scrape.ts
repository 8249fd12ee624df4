/**
 * How long a Prometheus scrape of /metrics takes with LINKS links served; see bench/RESULTS.md.
 *   1. Seed LINKS links (bench/lib/seed.ts), serve them, and send traffic that fills every series a real node has:
 *      each link followed once (the cache then holds them all, the default --cache-size), unknown codes, REST reads
 *      with a key and without one.
 *   2. Time REPEAT sequential scrapes of the ops listener's /metrics (after WARMUP), each alternating with a
 *      GET /control/status on the same listener: that small JSON answer is the round trip's floor in the same run,
 *      so "scrape − floor" estimates the server's time to collect and serialise the registry.
 * The round trip is an upper bound of the server's time: if it is within the target, the server's time is too.
 * Server on SERVER_CPU, this script on CLIENT_CPU.
 * Usage: bun bench/metrics-scrape.ts   (environment: LINKS=100000 REPEAT=200 WARMUP=20 SERVER_CPU=0 CLIENT_CPU=1)
 */
import { join } from "node:path";
import { generateCodes } from "./lib/codes";
import { loadAverage } from "./lib/cpu";
import { freePort, pinSelf, runWithCleanup, tempDir } from "./lib/processes";
import { seedLinks } from "./lib/seed";
import { createApiKey, startShortener, stopServer } from "./lib/servers";
import { numberSetting } from "./lib/settings";
import { median, percentile } from "./lib/stats";

const cfg = {
  links: numberSetting("LINKS", 100_000),
  repeat: numberSetting("REPEAT", 200),
  warmup: numberSetting("WARMUP", 20),
  serverCpu: Number(process.env.SERVER_CPU ?? 0),
  clientCpu: Number(process.env.CLIENT_CPU ?? 1),
};
const TARGET_MS = 10;

/** `count` requests, `parallel` at a time; every answer read to the end. */
async function send(count: number, parallel: number, request: (i: number) => Promise<Response>): Promise<void> {
  for (let start = 0; start < count; start += parallel) {
    const batch = Array.from({ length: Math.min(parallel, count - start) }, (_, j) => request(start + j).then((r) => r.arrayBuffer()));
    await Promise.all(batch);
  }
}

async function timed(url: string): Promise<{ ms: number; body: string }> {
  const started = performance.now();
  const response = await fetch(url);
  const body = await response.text();
  const ms = performance.now() - started;
  if (response.status !== 200) throw new Error(`${url} answered ${response.status}`);
  return { ms, body };
}

function describe(name: string, ms: number[]): string {
  const sorted = [...ms].sort((a, b) => a - b);
  return `${name.padEnd(28)} median ${median(sorted).toFixed(2)} ms  p99 ${percentile(sorted, 99).toFixed(2)} ms  max ${(sorted.at(-1) ?? Number.NaN).toFixed(2)} ms`;
}

await runWithCleanup(async () => {
  await pinSelf(cfg.clientCpu);
  console.log(`${new Date().toISOString()}  load average ${loadAverage().toFixed(2)}`);
  const work = tempDir("shortener-bench-metrics-");
  const dataDir = join(work, "data");
  const codes = generateCodes(cfg.links);
  const seeded = await seedLinks(dataDir, codes, cfg.serverCpu);
  console.log(`seeded ${cfg.links.toLocaleString("en")} links in ${seeded.toFixed(1)} s`);
  const apiKey = await createApiKey(dataDir);
  const opsUrl = `http://127.0.0.1:${freePort()}`;
  const server = await startShortener(dataDir, cfg.serverCpu, ["--ops-listen", opsUrl.slice("http://".length)]);

  await send(codes.length, 64, (i) => fetch(`${server.baseUrl}/${codes[i]}`, { redirect: "manual" }));
  await send(500, 16, (i) => fetch(`${server.baseUrl}/no-such-${i}`, { redirect: "manual" }));
  const rest = [
    "/rest/v3/short-urls?page=1",
    "/rest/v3/short-urls?page=50&itemsPerPage=10",
    "/rest/v3/tags",
    "/rest/v3/domains",
    "/rest/v3/visits",
  ];
  await send(500, 8, (i) => fetch(`${server.baseUrl}${rest[i % rest.length]}`, { headers: { "X-Api-Key": apiKey } }));
  await send(100, 8, () => fetch(`${server.baseUrl}/rest/v3/short-urls`));

  const scrapes: number[] = [];
  const floors: number[] = [];
  let last = "";
  for (let i = 0; i < cfg.warmup + cfg.repeat; i++) {
    const scrape = await timed(`${opsUrl}/metrics`);
    const floor = await timed(`${opsUrl}/control/status`);
    if (i < cfg.warmup) continue;
    scrapes.push(scrape.ms);
    floors.push(floor.ms);
    last = scrape.body;
  }
  // The scrape must describe the node the traffic built: every link cached, and the redirects counted.
  const cached = Number(/^shortener_cache_entries (\d+)$/m.exec(last)?.[1]);
  if (cached !== cfg.links) throw new Error(`the scrape says ${cached} links cached, expected ${cfg.links}`);
  const samples = last.split("\n").filter((line) => line !== "" && !line.startsWith("#")).length;
  await stopServer(server);

  const floor = median(floors);
  const estimate = [...scrapes].sort((a, b) => a - b).map((ms) => ms - floor);
  console.log(
    `\n${cfg.repeat} scrapes of ${samples.toLocaleString("en")} samples (${(last.length / 1024).toFixed(1)} KiB), each after a status request:`,
  );
  console.log(`  ${describe("GET /metrics (round trip)", scrapes)}`);
  console.log(`  ${describe("GET /control/status (floor)", floors)}`);
  console.log(`  ${describe("scrape - median floor", estimate)}`);
  const p99 = percentile(
    [...scrapes].sort((a, b) => a - b),
    99,
  );
  console.log(
    `\nsummary: /metrics p99 round trip ${p99.toFixed(2)} ms (target <= ${TARGET_MS} ms server time: ${p99 <= TARGET_MS ? "ok" : "MISSED"}); load average at end ${loadAverage().toFixed(2)}`,
  );
});
