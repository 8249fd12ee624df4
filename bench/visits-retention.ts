/**
 * Does the retention purge hurt redirects? See bench/RESULTS.md.
 *   1. Seed LINKS links (bench/lib/seed.ts), then ROWS raw visit rows 100 days old straight into SQLite (with their
 *      per-day roll-ups), after one start of the binary created the schema. Keep a pristine copy of the file.
 *   2. Idle: start the binary (default --visits-retention 90d) on a copy; the purge starts at once. Time it from
 *      its own log line, with no load.
 *   3. Baseline: a copy with --visits-retention off (no purge), paced redirect load (bench/paced-load.ts) at RATE.
 *   4. Under purge: a fresh copy with the default retention, the same load started as soon as it is ready, for a
 *      window that ends before the idle purge time (a purge under load only takes longer), so the whole measured
 *      window runs during the purge; checked afterwards against the purge's own end time.
 * Server on SERVER_CPU, load client on CLIENT_CPU, as bench/redirects does.
 * Usage: bun bench/visits-retention.ts [--rows 1000000] [--links 10000] [--rate 10000] [--max-seconds 10]
 */
import { Database } from "bun:sqlite";
import { copyFileSync, mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { generateCodes, writeCodes } from "./lib/codes";
import { loadAverage } from "./lib/cpu";
import { type PacedResult, runPaced } from "./lib/paced";
import { freePort, pinSelf, runWithCleanup, tempDir } from "./lib/processes";
import { seedLinks } from "./lib/seed";
import { histogramBuckets, scrapeMetrics } from "./lib/server-metrics";
import { type RunningServer, snapshotBinary, startShortener, stopServer } from "./lib/servers";
import { PACED_WARMUP_SECONDS } from "./lib/settings";
import type { Workload } from "./lib/wrk";

const { values } = parseArgs({
  options: {
    rows: { type: "string", default: "1000000" },
    links: { type: "string", default: "10000" },
    rate: { type: "string", default: "10000" },
    "max-seconds": { type: "string", default: "10" },
  },
});
const ROWS = Number(values.rows);
const LINKS = Number(values.links);
const RATE = Number(values.rate);
const MAX_SECONDS = Number(values["max-seconds"]);
const SERVER_CPU = Number(process.env.SERVER_CPU ?? 0);
const CLIENT_CPU = Number(process.env.CLIENT_CPU ?? 1);
const DAY = 86_400_000;

/** ROWS raw visit rows 100 days old, spread over the links (2 % orphans), with their roll-ups; returns seconds. */
function seedVisits(dbPath: string): number {
  const started = performance.now();
  const db = new Database(dbPath);
  db.exec("PRAGMA busy_timeout = 5000");
  const oldest = Date.now() - 100 * DAY;
  db.transaction(() => {
    const insert = db.query<unknown, [number | null, string | null, number, string]>(
      "INSERT INTO visits (short_url_id, orphan_type, at, potential_bot, referer, user_agent, remote_addr, visited_url, redirect_url, country_code) " +
        "VALUES (?1, ?2, ?3, 0, 'https://news.example/', 'Mozilla/5.0 (X11; Linux x86_64) Firefox/133.0', '203.0.113.0', ?4, 'https://example.com/', 'DE')",
    );
    for (let i = 0; i < ROWS; i++) {
      const orphan = i % 50 === 49;
      // Spread over 10 days, in time order, as the flush writes them.
      insert.run(orphan ? null : 1 + (i % LINKS), orphan ? "regular_404" : null, oldest + Math.floor((i * 10 * DAY) / ROWS), "http://s/x");
    }
    db.exec(`INSERT INTO visit_days (short_url_id, day, total) SELECT short_url_id, at / ${DAY}, count(*) FROM visits
             WHERE short_url_id IS NOT NULL GROUP BY 1, 2`);
    db.exec(
      "INSERT INTO link_visits (short_url_id, total) SELECT short_url_id, count(*) FROM visits WHERE short_url_id IS NOT NULL GROUP BY 1",
    );
    db.exec(`INSERT INTO visit_totals (kind, total) SELECT coalesce(orphan_type, 'non_orphan'), count(*) FROM visits GROUP BY 1`);
  }).immediate();
  db.exec("PRAGMA wal_checkpoint(TRUNCATE)");
  const count = (db.query("SELECT count(*) AS n FROM visits").get() as { n: number }).n;
  db.close();
  if (count !== ROWS) throw new Error(`seeded ${count} visit rows, expected ${ROWS}`);
  return (performance.now() - started) / 1000;
}

interface PurgeLog {
  rows: number;
  seconds: number;
  endedAt: number;
}

/** The purge pass's own log line (`visits_purged`), once it has ended. */
async function purgeLog(server: RunningServer, timeoutMs: number): Promise<PurgeLog> {
  const deadline = Date.now() + timeoutMs;
  for (let i = 0; Date.now() < deadline && i < 100_000; i++) {
    const line = readFileSync(server.logFile, "utf8")
      .split("\n")
      .find((l) => l.includes('"event":"visits_purged"'));
    if (line !== undefined) {
      const entry = JSON.parse(line) as { time: string; rows: number; duration_ms: number };
      return { rows: entry.rows, seconds: entry.duration_ms / 1000, endedAt: Date.parse(entry.time) };
    }
    await Bun.sleep(100);
  }
  throw new Error(`no visits_purged line within ${timeoutMs} ms`);
}

/** The purge transactions' durations, from the server's own histogram: how long a redirect could wait behind one. */
async function batchDurations(opsPort: number): Promise<string> {
  const buckets = histogramBuckets(await scrapeMetrics(`http://127.0.0.1:${opsPort}`), "shortener_visit_purge_batch_duration_seconds");
  const total = buckets.get(Number.POSITIVE_INFINITY) ?? 0;
  const within = (le: number) => buckets.get(le) ?? 0;
  const slowest = [...buckets.keys()].sort((a, b) => a - b).find((le) => within(le) === total);
  return (
    `${total.toLocaleString("en")} transactions: ${((within(0.002) / total) * 100).toFixed(1)} % ≤ 2 ms, ${((within(0.005) / total) * 100).toFixed(1)} % ≤ 5 ms, ` +
    `${((within(0.01) / total) * 100).toFixed(2)} % ≤ 10 ms, all ≤ ${slowest === undefined || slowest === Number.POSITIVE_INFINITY ? "∞" : `${slowest * 1000} ms`}`
  );
}

function describe(result: PacedResult): string {
  const ms = (x: number | null) => (x === null ? "∞" : x.toFixed(2));
  const [d, w] = [result.fromDueMs, result.onWireMs];
  return (
    `${Math.round(result.achieved).toLocaleString("en")} req/s; from due time p50 ${ms(d.p50)} p99 ${ms(d.p99)} p99.9 ${ms(d.p999)} max ${ms(d.max)} ms; ` +
    `on the wire p99 ${ms(w.p99)} max ${ms(w.max)} ms; unanswered ${result.unanswered}; client stall ${ms(result.clientStallMs)} ms; ` +
    `cpu server ${(result.cpu.server * 100).toFixed(0)} %, others on the server CPU ${(result.cpu.serverCpuOther * 100).toFixed(0)} %`
  );
}

async function main(): Promise<void> {
  await pinSelf(CLIENT_CPU);
  const work = tempDir("bench-retention-");
  snapshotBinary(work);
  console.log(`load average at start ${loadAverage()}`);
  const codes = generateCodes(LINKS);
  const codesFile = join(work, "codes.txt");
  writeCodes(codesFile, codes);
  const seedDir = join(work, "seed");
  const linkSeconds = await seedLinks(seedDir, codes, SERVER_CPU);
  const visitSeconds = seedVisits(join(seedDir, "shortener.db"));
  console.log(
    `seeded ${LINKS.toLocaleString("en")} links (${linkSeconds.toFixed(1)} s), ${ROWS.toLocaleString("en")} visit rows (${visitSeconds.toFixed(1)} s)`,
  );
  /** A data dir holding a copy of the seeded database. */
  const copyTo = (name: string) => {
    const dir = join(work, name);
    mkdirSync(dir, { recursive: true });
    copyFileSync(join(seedDir, "shortener.db"), join(dir, "shortener.db"));
    return dir;
  };
  const workload: Workload = { name: "hot", codesFile, hotCount: Math.min(1_000, LINKS), hotShare: 0.9 };

  // 2. The purge alone.
  const idle = await startShortener(copyTo("idle"), SERVER_CPU);
  const idlePurge = await purgeLog(idle, 600_000);
  await stopServer(idle);
  if (idlePurge.rows !== ROWS) throw new Error(`the idle purge deleted ${idlePurge.rows} rows, expected ${ROWS}`);
  console.log(
    `idle purge: ${ROWS.toLocaleString("en")} rows in ${idlePurge.seconds.toFixed(2)} s (${Math.round(ROWS / idlePurge.seconds).toLocaleString("en")} rows/s)`,
  );
  const seconds = Math.min(MAX_SECONDS, Math.floor(idlePurge.seconds - PACED_WARMUP_SECONDS - 0.5));
  if (seconds < 2) throw new Error(`the purge takes ${idlePurge.seconds.toFixed(1)} s: too short to measure under; seed more --rows`);

  // 3. Baseline: the same data, no purge.
  const baselineServer = await startShortener(copyTo("baseline"), SERVER_CPU, ["--visits-retention", "off"]);
  const baseline = await runPaced(baselineServer, workload, { rate: RATE, seconds, serverCpu: SERVER_CPU, clientCpu: CLIENT_CPU });
  await stopServer(baselineServer);
  console.log(`without purge (${seconds} s at ${RATE.toLocaleString("en")} req/s): ${describe(baseline)}`);

  // 4. The same load while the purge runs.
  const opsPort = freePort();
  const purging = await startShortener(copyTo("purging"), SERVER_CPU, ["--ops-listen", `127.0.0.1:${opsPort}`]);
  const loadStarted = Date.now();
  const during = await runPaced(purging, workload, { rate: RATE, seconds, serverCpu: SERVER_CPU, clientCpu: CLIENT_CPU });
  const loadEnded = loadStarted + (PACED_WARMUP_SECONDS + seconds) * 1000;
  const purge = await purgeLog(purging, 600_000);
  const batches = await batchDurations(opsPort);
  await stopServer(purging);
  console.log(`during the purge (${seconds} s at ${RATE.toLocaleString("en")} req/s): ${describe(during)}`);
  console.log(
    `purge under load: ${purge.rows.toLocaleString("en")} rows in ${purge.seconds.toFixed(2)} s; it ended ${((purge.endedAt - loadEnded) / 1000).toFixed(1)} s ` +
      `after the measured window${purge.endedAt < loadEnded ? " (BEFORE its end: the window was not all under purge)" : ""}`,
  );
  console.log(`purge transactions under load: ${batches}`);
  const p99 = during.fromDueMs.p99;
  console.log(
    `\nredirect p99 from due time: ${baseline.fromDueMs.p99?.toFixed(2) ?? "∞"} ms without purge, ${p99?.toFixed(2) ?? "∞"} ms during it ` +
      `(target ≤ 5 ms: ${p99 !== null && p99 <= 5 ? "met" : "missed"}); load average at end ${loadAverage()}`,
  );
}

await runWithCleanup(main);
