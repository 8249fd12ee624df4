/**
 * Link creation throughput through the REST API: POST /rest/v3/short-urls from CONCURRENCY clients in flight for
 * SECONDS, against a fresh data dir with the default synchronous=FULL. Each create is a distinct long URL, so
 * every request inserts a row (and group commit shares the fsyncs). Server on SERVER_CPU, this client on CLIENT_CPU.
 * Usage: bun bench/creates.ts [--seconds 10] [--concurrency 48] [--warmup 2]
 * Prints a human line and one CREATES_JSON {...} line.
 */
import { parseArgs } from "node:util";
import { pinSelf, runWithCleanup, tempDir } from "./lib/processes";
import { createApiKey, startShortener, stopServer } from "./lib/servers";
import { percentile } from "./lib/stats";

const { values } = parseArgs({
  options: {
    seconds: { type: "string", default: "10" },
    concurrency: { type: "string", default: "48" },
    warmup: { type: "string", default: "2" },
  },
});
const seconds = Number(values.seconds);
const concurrency = Number(values.concurrency);
const warmup = Number(values.warmup);
const serverCpu = Number(process.env.SERVER_CPU ?? 0);
const clientCpu = Number(process.env.CLIENT_CPU ?? 1);

/** Runs `concurrency` closed-loop clients until `until`; returns the latencies (ms) of the creates that finished. */
async function createFor(baseUrl: string, apiKey: string, until: number, prefix: string): Promise<number[]> {
  const latencies: number[] = [];
  let n = 0;
  const client = async () => {
    // Bounded by time and by count (no server does 10^7 creates in a benchmark run).
    while (performance.now() < until && n < 10_000_000) {
      const body = JSON.stringify({ longUrl: `https://example.com/${prefix}/${n++}` });
      const t0 = performance.now();
      const response = await fetch(`${baseUrl}/rest/v3/short-urls`, {
        method: "POST",
        headers: { "X-Api-Key": apiKey, "Content-Type": "application/json" },
        body,
      });
      const text = await response.text();
      if (response.status !== 200) throw new Error(`create answered ${response.status}: ${text.slice(0, 300)}`);
      latencies.push(performance.now() - t0);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, client));
  return latencies;
}

await runWithCleanup(async () => {
  await pinSelf(clientCpu);
  const dataDir = tempDir("shortener-bench-creates-");
  const apiKey = await createApiKey(dataDir);
  const server = await startShortener(dataDir, serverCpu);
  await createFor(server.baseUrl, apiKey, performance.now() + warmup * 1000, "warmup");
  const started = performance.now();
  const latencies = await createFor(server.baseUrl, apiKey, started + seconds * 1000, "measured");
  const elapsed = (performance.now() - started) / 1000;
  await stopServer(server);
  const sorted = latencies.sort((a, b) => a - b);
  const result = {
    rate: sorted.length / elapsed,
    creates: sorted.length,
    p50ms: percentile(sorted, 50),
    p99ms: percentile(sorted, 99),
    maxMs: sorted[sorted.length - 1] ?? Number.NaN,
  };
  console.log(
    `  ${result.creates} creates in ${elapsed.toFixed(1)} s with ${concurrency} in flight: ${Math.round(result.rate).toLocaleString("en")}/s, ` +
      `p50 ${result.p50ms.toFixed(1)} ms p99 ${result.p99ms.toFixed(1)} ms max ${result.maxMs.toFixed(1)} ms`,
  );
  console.log(`CREATES_JSON ${JSON.stringify(result)}`);
});
