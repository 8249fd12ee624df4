/**
 * Link creation through the REST API, against a fresh data dir with the default synchronous=FULL. Each create is a
 * distinct long URL, so every request inserts a row (and group commit shares the fsyncs). Two runs of SECONDS:
 *   - capacity: CONCURRENCY clients in flight, each sending its next create when the last one answered. Its
 *     latencies are mostly queueing (CONCURRENCY ÷ rate), so they depend on the client count chosen;
 *   - latency at a load: creates sent open-loop at RATE per second (issue 2 asks for 2 000/s sustained with p99
 *     ≤ 20 ms), each timed from when it was due, so a server stall counts for every create it held up.
 * Server on SERVER_CPU, this client on CLIENT_CPU.
 * Usage: bun bench/creates.ts [--seconds 10] [--concurrency 48] [--rate 2000] [--warmup 2]
 * Prints human lines and one CREATES_JSON {...} line.
 */
import { parseArgs } from "node:util";
import { pinSelf, runWithCleanup, tempDir } from "./lib/processes";
import { createApiKey, startShortener, stopServer } from "./lib/servers";
import { percentile } from "./lib/stats";

const { values } = parseArgs({
  options: {
    seconds: { type: "string", default: "10" },
    concurrency: { type: "string", default: "48" },
    rate: { type: "string", default: "2000" },
    warmup: { type: "string", default: "2" },
  },
});
const seconds = Number(values.seconds);
const concurrency = Number(values.concurrency);
const rate = Number(values.rate);
const warmup = Number(values.warmup);
const serverCpu = Number(process.env.SERVER_CPU ?? 0);
const clientCpu = Number(process.env.CLIENT_CPU ?? 1);

/** One create of a distinct long URL; throws unless it answered 200. */
async function create(baseUrl: string, apiKey: string, longUrl: string): Promise<void> {
  const response = await fetch(`${baseUrl}/rest/v3/short-urls`, {
    method: "POST",
    headers: { "X-Api-Key": apiKey, "Content-Type": "application/json" },
    body: JSON.stringify({ longUrl }),
  });
  const text = await response.text();
  if (response.status !== 200) throw new Error(`create answered ${response.status}: ${text.slice(0, 300)}`);
}

/** Runs `concurrency` closed-loop clients until `until`; returns the latencies (ms) of the creates that finished. */
async function createFor(baseUrl: string, apiKey: string, until: number, prefix: string): Promise<number[]> {
  const latencies: number[] = [];
  let n = 0;
  const client = async () => {
    // Bounded by time and by count (no server does 10^7 creates in a benchmark run).
    while (performance.now() < until && n < 10_000_000) {
      const t0 = performance.now();
      await create(baseUrl, apiKey, `https://example.com/${prefix}/${n++}`);
      latencies.push(performance.now() - t0);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, client));
  return latencies;
}

/** Creates due every 1/rate s for `seconds`, open-loop; returns each one's latency (ms) from its due time. */
async function createPaced(baseUrl: string, apiKey: string, seconds: number, prefix: string): Promise<number[]> {
  const count = Math.round(rate * seconds);
  const latencies: number[] = [];
  const sent: Promise<void>[] = [];
  const start = performance.now();
  for (let i = 0; i < count; i++) {
    const due = start + (i * 1000) / rate;
    // Pacing, not a readiness wait: the next create is not due yet.
    const early = due - performance.now();
    if (early >= 1) await Bun.sleep(early);
    sent.push(create(baseUrl, apiKey, `https://example.com/${prefix}/${i}`).then(() => void latencies.push(performance.now() - due)));
  }
  await Promise.all(sent);
  return latencies;
}

function summarize(latencies: number[], elapsedSeconds: number) {
  const sorted = latencies.sort((a, b) => a - b);
  return {
    rate: sorted.length / elapsedSeconds,
    creates: sorted.length,
    p50ms: percentile(sorted, 50),
    p99ms: percentile(sorted, 99),
    maxMs: sorted[sorted.length - 1] ?? Number.NaN,
  };
}

await runWithCleanup(async () => {
  await pinSelf(clientCpu);
  const dataDir = tempDir("shortener-bench-creates-");
  const apiKey = await createApiKey(dataDir);
  const server = await startShortener(dataDir, serverCpu);
  await createFor(server.baseUrl, apiKey, performance.now() + warmup * 1000, "warmup");
  let started = performance.now();
  const latencies = await createFor(server.baseUrl, apiKey, started + seconds * 1000, "measured");
  const result = summarize(latencies, (performance.now() - started) / 1000);
  console.log(
    `  capacity: ${result.creates} creates in ${seconds} s with ${concurrency} in flight: ${Math.round(result.rate).toLocaleString("en")}/s, ` +
      `p50 ${result.p50ms.toFixed(1)} ms p99 ${result.p99ms.toFixed(1)} ms max ${result.maxMs.toFixed(1)} ms`,
  );
  started = performance.now();
  const paced = summarize(await createPaced(server.baseUrl, apiKey, seconds, "paced"), (performance.now() - started) / 1000);
  await stopServer(server);
  console.log(
    `  at ${rate.toLocaleString("en")}/s offered: ${Math.round(paced.rate).toLocaleString("en")}/s done, from due time ` +
      `p50 ${paced.p50ms.toFixed(1)} ms p99 ${paced.p99ms.toFixed(1)} ms max ${paced.maxMs.toFixed(1)} ms`,
  );
  const json = { ...result, pacedRate: rate, pacedP50ms: paced.p50ms, pacedP99ms: paced.p99ms, pacedMaxMs: paced.maxMs };
  console.log(`CREATES_JSON ${JSON.stringify(json)}`);
});
