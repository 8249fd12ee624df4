/**
 * What taking a standby's visits costs a primary's redirects: after a failover the primary takes the shipments the
 * standby spilled while it served (one file a second; domain/visit-inbox.ts), from the bucket or, promoted in place,
 * from its own spool. See bench/RESULTS.md.
 * Seeds LINKS links (bench/lib/seed.ts), starts the binary, follows the hot set once, then runs paced hot-set load
 * (bench/paced-load.ts: 90 % of requests to 1 000 codes) at RATE in alternating rounds on the same server: with nothing
 * to take, and with FILES shipments of VISITS visits each (a second's visits at that rate, to links drawn like the
 * load) renamed into its data dir's visit-spool as the round starts. Prints each round's p99 and p99.9 from due time
 * and the worst second's p99, and for the catch-up rounds how long the server took to write every visit
 * (shortener_standby_visits_taken_total); then the medians. Server on SERVER_CPU; the load client on CLIENT_CPU.
 * Usage: bun bench/catch-up.ts [--rate 20000] [--files 8] [--visits 24000] [--rounds 3] [--seconds 12] [--links 100000]
 */
import { mkdirSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { encodeShipment, type ShippedVisit } from "../src/domain/visit-shipment";
import { shipmentName } from "../src/storage/shipment-store";
import { targetFor } from "./lib/codes";
import { loadAverage } from "./lib/cpu";
import { type PacedResult, runPaced } from "./lib/paced";
import { runWithCleanup, tempDir } from "./lib/processes";
import { seededServer } from "./lib/seed";
import { sampleValue, scrapeMetrics } from "./lib/server-metrics";
import { type RunningServer, snapshotBinary, stopServer } from "./lib/servers";
import { median } from "./lib/stats";
import type { Workload } from "./lib/wrk";

const { values } = parseArgs({
  options: {
    rate: { type: "string", default: "20000" },
    files: { type: "string", default: "8" },
    visits: { type: "string", default: "24000" },
    rounds: { type: "string", default: "3" },
    seconds: { type: "string", default: "12" },
    links: { type: "string", default: "100000" },
  },
});
const SERVER_CPU = Number(process.env.SERVER_CPU ?? 0);
const CLIENT_CPU = Number(process.env.CLIENT_CPU ?? 1);
/** How long a round waits, after its load, for the server to have taken every shipment. */
const CATCH_UP_DEADLINE_MS = 300_000;
const HOT = 1000;

/** `count` visits as a standby serving the same load would ship them: anonymised addresses, one visitor hash each. */
function shipment(codes: readonly string[], count: number, at: number): string {
  const visits: ShippedVisit[] = [];
  for (let i = 0; i < count; i++) {
    const index = Math.random() < 0.9 ? Math.floor(Math.random() * HOT) : HOT + Math.floor(Math.random() * (codes.length - HOT));
    const code = codes[index] as string;
    visits.push({
      // Seeded in order: the link of codes[i] has id i + 1.
      link: { id: index + 1, shortCode: code, domain: "" },
      orphanType: null,
      at: at + Math.floor((i * 1000) / count),
      bot: false,
      referer: null,
      userAgent: "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36",
      remoteAddr: `203.0.${i % 250}.0`,
      visitedUrl: `http://127.0.0.1/${code}`,
      redirectUrl: targetFor(index),
      location: null,
      visitor: Buffer.from(crypto.getRandomValues(new Uint8Array(16))).toString("hex"),
    });
  }
  return encodeShipment(visits);
}

async function visitsTaken(server: RunningServer): Promise<number> {
  return sampleValue(await scrapeMetrics(server.opsUrl as string), "shortener_standby_visits_taken_total");
}

async function main(): Promise<void> {
  const rate = Number(values.rate);
  const files = Number(values.files);
  const perFile = Number(values.visits);
  const rounds = Number(values.rounds);
  const seconds = Number(values.seconds);
  snapshotBinary(tempDir("catch-up-binary-"));
  // Every code followed once, as bench/redirects does: the load's 10 % outside the hot set finds them cached.
  const links = Number(values.links);
  const { work, codes, codesFile, dataDir, server } = await seededServer("catch-up-", links, SERVER_CPU, links);
  const workload: Workload = { name: "hot", codesFile, hotCount: HOT, hotShare: 0.9 };
  const spool = join(dataDir, "visit-spool");
  const staging = join(work, "staging");
  mkdirSync(spool, { recursive: true });
  mkdirSync(staging, { recursive: true });
  console.log(
    `catch-up: ${rate} req/s hot set for ${seconds} s a round; ${files} shipments of ${perFile} visits to take in every other round ` +
      `(load average ${loadAverage().toFixed(2)})`,
  );
  const results = { without: [] as PacedResult[], with: [] as PacedResult[], catchUpS: [] as number[] };
  const show = (label: string, r: PacedResult, extra = "") =>
    console.log(
      `  ${label.padEnd(14)} p99 from due ${r.fromDueMs.p99?.toFixed(2) ?? "∞"} ms, p99.9 ${r.fromDueMs.p999?.toFixed(2) ?? "∞"} ms, ` +
        `worst second's p99 ${worstSecond(r).toFixed(2)} ms, server CPU ${(r.cpu.server * 100).toFixed(0)} %, achieved ${Math.round(r.achieved)}/s${extra}`,
    );
  /** A paced round with the server's metrics scraped every second beside it (in both kinds of round, alike). */
  const round = async (expected: number, started: number) => {
    const watch = watchTaken(server, expected, started);
    try {
      return { result: await runPaced(server, workload, { rate, seconds, serverCpu: SERVER_CPU, clientCpu: CLIENT_CPU }), watch };
    } finally {
      watch.loadEnded();
    }
  };
  for (let r = 1; r <= rounds; r++) {
    const plain = await round(Number.POSITIVE_INFINITY, performance.now());
    await plain.watch.caughtUp;
    show("nothing to take", plain.result);
    results.without.push(plain.result);
    // Written beforehand (not on the server's CPU), renamed in as the round starts, as a promoted node finds its spool.
    const names = Array.from({ length: files }, (_, i) => {
      const name = shipmentName(Date.now() - (files - i) * 1000);
      writeFileSync(join(staging, name), shipment(codes, perFile, Date.now() - (files - i) * 1000));
      return name;
    });
    const before = await visitsTaken(server);
    const started = performance.now();
    for (const name of names) renameSync(join(staging, name), join(spool, name));
    const taking = await round(before + files * perFile, started);
    const catchUp = await taking.watch.caughtUp;
    results.with.push(taking.result);
    results.catchUpS.push(catchUp);
    show("taking", taking.result, `; all ${files * perFile} visits taken ${catchUp.toFixed(1)} s after they came`);
  }
  await stopServer(server);
  const p = (rs: PacedResult[], f: (r: PacedResult) => number) => median(rs.map(f)).toFixed(2);
  const p99 = (r: PacedResult) => r.fromDueMs.p99 ?? Number.POSITIVE_INFINITY;
  const p999 = (r: PacedResult) => r.fromDueMs.p999 ?? Number.POSITIVE_INFINITY;
  console.log(
    `median of ${rounds}: p99 from due ${p(results.without, p99)} ms with nothing to take, ${p(results.with, p99)} ms taking; ` +
      `p99.9 ${p(results.without, p999)} / ${p(results.with, p999)} ms; worst second's p99 ${p(results.without, worstSecond)} / ` +
      `${p(results.with, worstSecond)} ms; caught up in ${median(results.catchUpS).toFixed(1)} s`,
  );
}

/**
 * Scrapes the server's metrics every second from `started` until it has taken `expected` visits in all, and the load
 * has ended; `caughtUp` is the seconds until the first.
 */
function watchTaken(server: RunningServer, expected: number, started: number) {
  let loadEnded = false;
  const caughtUp = (async () => {
    let at = Number.NaN;
    for (let polls = 0; Number.isNaN(at) || !loadEnded; polls++) {
      const taken = await visitsTaken(server);
      if (taken >= expected && Number.isNaN(at)) at = (performance.now() - started) / 1000;
      if (Number.isNaN(at) && (performance.now() - started > CATCH_UP_DEADLINE_MS || polls > CATCH_UP_DEADLINE_MS / 1000)) {
        throw new Error(`the server had taken ${taken} of ${expected} visits after ${CATCH_UP_DEADLINE_MS} ms`);
      }
      if (expected === Number.POSITIVE_INFINITY && loadEnded) return Number.NaN;
      await Bun.sleep(1000);
    }
    return at;
  })();
  return {
    caughtUp,
    loadEnded: () => {
      loadEnded = true;
    },
  };
}

/** The highest per-second p99 of the run (a second with no answer at all counts as infinite). */
function worstSecond(r: PacedResult): number {
  return Math.max(...r.p99BySecondMs.map((ms) => ms ?? Number.POSITIVE_INFINITY));
}

await runWithCleanup(main);
