/**
 * Redirect capacity benchmark of the compiled binary against a bare Bun.serve reference; see bench/RESULTS.md.
 *   1. Seed LINKS links (SQLite, directly), verify every code redirects correctly and fill the LRU.
 *   2. For the hot-set and the uniform workload: warm both servers up, then ROUNDS alternating wrk runs
 *      (reference, shortener, …); the medians give the ratio shortener ÷ reference.
 *   3. Latency at a fixed rate of half the shortener's hot-set capacity (bench/paced-load.ts).
 *      Then the same workloads against a standby serving a copy of the database (the node Caddy fails over to).
 *   4. RSS holding RSS_LINKS links with RSS_CACHED of them cached, while serving those at RSS_RATE.
 *   5. Link creation through the API (bench/creates.ts).
 * Servers run on SERVER_CPU, every client (wrk, this script) on CLIENT_CPU.
 */
import { copyFileSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { generateCodes, HOT_SHARE, writeCodes } from "./lib/codes";
import { loadAverage } from "./lib/cpu";
import { type PacedResult, runPaced } from "./lib/paced";
import { pinSelf, run, runWithCleanup, spawn, stop, tempDir } from "./lib/processes";
import { formatRow, type Summary } from "./lib/report";
import { seedLinks } from "./lib/seed";
import { redirectBuckets, type ServerView, serverView } from "./lib/server-metrics";
import {
  BINARY,
  createApiKey,
  memoryMiB,
  ROOT,
  type RunningServer,
  requireBinary,
  snapshotBinary,
  startOtlpSink,
  startReference,
  startShortener,
  stopServer,
} from "./lib/servers";
import { numberSetting, PACED_WARMUP_SECONDS } from "./lib/settings";
import { linearFit, median } from "./lib/stats";
import { startTap, type TapLatency } from "./lib/tap";
import { range, visitCodes } from "./lib/visit-codes";
import { runWrk, type Workload, type WrkResult } from "./lib/wrk";

const PHASES = ["hot", "uniform", "budget", "latency", "tracing", "standby", "rss", "creates"] as const;
type Phase = (typeof PHASES)[number];

const { values: flags } = parseArgs({
  options: {
    rounds: { type: "string" },
    duration: { type: "string" },
    warmup: { type: "string" },
    only: { type: "string" },
    help: { type: "boolean" },
  },
});
if (flags.help) {
  console.log(`usage: bench/redirects [--rounds N] [--duration SECONDS] [--warmup SECONDS] [--only ${PHASES.join(",")}]
environment (flags win): ROUNDS=5 DURATION=6 WARMUP=3 CONNECTIONS=32 LINKS=100000 HOT=1000 RSS_LINKS=1000000
  RSS_CACHED=100000 RSS_RATE=1000 RSS_SECONDS=120
  RSS_SETTLE=10 PACED_SECONDS=10 PACED_RATE=(half the hot-set capacity) CREATES_SECONDS=10 SERVER_CPU=0 CLIENT_CPU=1
  SHORTENER_BIN=path/to/shortener (default dist/shortener)`);
  process.exit(0);
}

function setting(flag: string | undefined, env: string, fallback: number): number {
  return numberSetting(`${env} / --${env.toLowerCase()}`, fallback, flag ?? process.env[env]);
}

const cfg = {
  rounds: setting(flags.rounds, "ROUNDS", 5),
  seconds: setting(flags.duration, "DURATION", 6),
  warmup: setting(flags.warmup, "WARMUP", 3),
  connections: setting(undefined, "CONNECTIONS", 32),
  links: setting(undefined, "LINKS", 100_000),
  hot: setting(undefined, "HOT", 1_000),
  rssLinks: setting(undefined, "RSS_LINKS", 1_000_000),
  rssCached: setting(undefined, "RSS_CACHED", 100_000),
  rssRate: setting(undefined, "RSS_RATE", 1_000),
  rssSeconds: setting(undefined, "RSS_SECONDS", 120),
  rssSettle: setting(undefined, "RSS_SETTLE", 10),
  pacedSeconds: setting(undefined, "PACED_SECONDS", 10),
  /** The latency phase's rate; by default half the hot-set capacity measured in the same run. */
  pacedRate: process.env.PACED_RATE === undefined ? Number.NaN : setting(undefined, "PACED_RATE", 1),
  createsSeconds: setting(undefined, "CREATES_SECONDS", 10),
  serverCpu: Number(process.env.SERVER_CPU ?? 0),
  clientCpu: Number(process.env.CLIENT_CPU ?? 1),
};
const only = new Set((flags.only ?? PHASES.join(",")).split(",") as Phase[]);
for (const phase of only) if (!PHASES.includes(phase)) throw new Error(`--only: unknown phase "${phase}"; phases: ${PHASES.join(", ")}`);
const summary: Summary[] = [];

/** Other processes using more than this share of the server CPU during a run make it a disturbed run. */
const DISTURBED = 0.1;
let disturbedKept = 0;

/**
 * wrk against `server`, repeated while other processes disturb the server CPU (the machine may be shared), as long
 * as `budget.repeats` lasts; a disturbed run that has to be kept is counted and shown in the summary.
 */
async function undisturbedWrk(server: RunningServer, workload: Workload, budget: { repeats: number }): Promise<WrkResult> {
  const options = { seconds: cfg.seconds, connections: cfg.connections, serverCpu: cfg.serverCpu, clientCpu: cfg.clientCpu };
  for (;;) {
    const result = await runWrk(server, workload, options);
    if (result.cpu.serverCpuOther <= DISTURBED) return result;
    if (budget.repeats <= 0) {
      disturbedKept++;
      return result;
    }
    budget.repeats--;
    console.log(`  (${server.name}: other processes used ${pct(result.cpu.serverCpuOther)} of the server CPU; repeating)`);
  }
}

/** Server CPU time per answered request, in microseconds: robust to other load in a way the rate is not. */
const cpuMicros = (r: WrkResult) => (r.cpu.server * cfg.seconds * 1e6) / r.requests;

/**
 * One wrk run per server per round, alternating, after a warm-up of each; returns the median rates and the median
 * server CPU per request.
 */
async function compare(servers: RunningServer[], workload: Workload): Promise<{ rates: Map<string, number>; cpu: Map<string, number> }> {
  const options = { seconds: cfg.warmup, connections: cfg.connections, serverCpu: cfg.serverCpu, clientCpu: cfg.clientCpu };
  for (const server of servers) await runWrk(server, workload, options);
  const rates = new Map<string, number[]>(servers.map((s) => [s.name, []]));
  const cpu = new Map<string, number[]>(servers.map((s) => [s.name, []]));
  const budget = { repeats: cfg.rounds };
  for (let round = 1; round <= cfg.rounds; round++) {
    for (const server of servers) {
      const result = await undisturbedWrk(server, workload, budget);
      rates.get(server.name)?.push(result.rps);
      cpu.get(server.name)?.push(cpuMicros(result));
      console.log(`  ${workload.name} round ${round} ${server.name.padEnd(9)} ${describe(result)}`);
    }
  }
  const medians = (m: Map<string, number[]>) => new Map([...m].map(([name, list]) => [name, median(list)]));
  return { rates: medians(rates), cpu: medians(cpu) };
}

const pct = (x: number) => `${Math.round(x * 100)}%`;

/** One wrk run, with the CPU shares that say what limited it. */
function describe(r: WrkResult): string {
  // wrk near a full CPU means the client, not the server, may have set the rate: the ratio then flatters the shortener.
  const flag = r.cpu.client >= 0.9 ? " (client-bound?)" : "";
  return `${Math.round(r.rps).toLocaleString("en")} req/s  p50 ${r.p50ms.toFixed(2)} ms p99 ${r.p99ms.toFixed(2)} ms  ${cpuMicros(r).toFixed(2)} µs CPU/req  cpu: server ${pct(r.cpu.server)} wrk ${pct(r.cpu.client)}${flag} others-on-server-cpu ${pct(r.cpu.serverCpuOther)}`;
}

/** A paced run and, for the shortener, what its own metrics said of it (the reference has none). */
type PacedRun = PacedResult & { server: ServerView | null; tap: TapLatency };

/** A paced run, printed; for the shortener, with its own view of the run from /metrics. */
async function paced(server: RunningServer, workload: Workload, rate: number): Promise<PacedRun> {
  const ops = server.opsUrl;
  const before = ops === undefined ? null : await redirectBuckets(ops);
  const tap = await startTap(Number(new URL(server.baseUrl).port), tempDir("tap-"), cfg.clientCpu);
  const result = await runPaced(server, workload, { rate, seconds: cfg.pacedSeconds, serverCpu: cfg.serverCpu, clientCpu: cfg.clientCpu });
  const view = ops === undefined || before === null ? null : await serverView(ops, before);
  const wire = await tap.finish(PACED_WARMUP_SECONDS);
  const [d, w] = [result.fromDueMs, result.onWireMs];
  const ms = (x: number | null) => (x === null ? "∞" : x.toFixed(2));
  console.log(
    `  ${server.name.padEnd(9)} ${Math.round(result.achieved).toLocaleString("en")} req/s  from due time: p50 ${ms(d.p50)} p99 ${ms(d.p99)} p99.9 ${ms(d.p999)} max ${ms(d.max)} ms` +
      `  on the wire: p99 ${ms(w.p99)} max ${ms(w.max)} ms`,
  );
  console.log(
    `  ${"".padEnd(9)} server-side, tapped on loopback (${wire.requests.toLocaleString("en")} requests): p50 ${ms(wire.p50Ms)} p99 ${ms(wire.p99Ms)} p99.9 ${ms(wire.p999Ms)} max ${ms(wire.maxMs)} ms`,
  );
  if (result.unanswered > 0) {
    console.log(`  ${"".padEnd(9)} ${result.unanswered} requests unanswered 5 s after the run: the rate was not sustained`);
  }
  // One slow stretch (the aftermath of a burst, a checkpoint) and a tail spread over the run read differently.
  console.log(
    `  ${"".padEnd(9)} p99 from due time, second by second: ${result.p99BySecondMs.map((x) => (x === null ? "∞" : x.toFixed(1))).join(" ")} ms`,
  );
  console.log(
    `  ${"".padEnd(9)} client's longest stall ${ms(result.clientStallMs)} ms, max backlog ${result.maxBacklog}; cpu: server ${pct(result.cpu.server)}, others-on-server-cpu ${pct(result.cpu.serverCpuOther)}`,
  );
  if (view !== null) {
    // Handler time leaves out what a request waits before JavaScript sees it (behind a visit flush's chunk, say):
    // the event loop's lag is the server's view of that wait, the client's figures above include it.
    console.log(
      `  ${"".padEnd(9)} the server's own histogram (handler time, ${view.requests.toLocaleString("en")} redirects): p99 ≤ ${view.p99BoundMs} ms; ` +
        `event loop lag, largest per second over the last 10 s: ${view.loopLagMs.toFixed(1)} ms`,
    );
  }
  return { ...result, server: view, tap: wire };
}

/** A paced run, repeated once if other processes disturbed it. */
async function undisturbedPaced(server: RunningServer, workload: Workload, rate: number): Promise<PacedRun> {
  const first = await paced(server, workload, rate);
  if (first.cpu.serverCpuOther <= DISTURBED) return first;
  console.log(`  (${server.name}: other processes used ${pct(first.cpu.serverCpuOther)} of the server CPU; repeating once)`);
  const second = await paced(server, workload, rate);
  if (second.cpu.serverCpuOther > DISTURBED) disturbedKept++;
  return second;
}

async function redirectPhases(work: string): Promise<void> {
  const codes = generateCodes(cfg.links);
  const codesFile = join(work, "codes.txt");
  writeCodes(codesFile, codes);
  const dataDir = join(work, "data");
  const seeded = await seedLinks(dataDir, codes, cfg.serverCpu);
  console.log(`seeded ${codes.length.toLocaleString("en")} links in ${seeded.toFixed(1)} s`);
  const shortener = await startShortener(dataDir, cfg.serverCpu);
  const reference = await startReference(codesFile, work, cfg.serverCpu);
  // Every code once: checks the seeding end to end and leaves all of them in the LRU (cache size 100 000).
  await visitCodes(shortener.baseUrl, codes, range(codes.length));
  await visitCodes(reference.baseUrl, codes, range(Math.min(codes.length, 1_000)));
  console.log("verified: every code redirects to its target");

  const hot: Workload = { name: "hot", codesFile, hotCount: cfg.hot, hotShare: HOT_SHARE };
  const uniform: Workload = { name: "uniform", codesFile, hotCount: 0, hotShare: 0 };
  let hotCapacity = Number.NaN;
  /** The latency phase's rate, for the standby's paced run too (NaN when the latency phase did not run). */
  let pacedRate = Number.NaN;
  for (const workload of [hot, uniform]) {
    if (!only.has(workload.name)) continue;
    console.log(`\n${workload.name}: ${cfg.rounds} rounds of ${cfg.seconds} s, ${cfg.connections} connections`);
    const { rates, cpu } = await compare([reference, shortener], workload);
    const [ref = Number.NaN, mine = Number.NaN] = [rates.get("reference"), rates.get("shortener")];
    const [refCpu = Number.NaN, myCpu = Number.NaN] = [cpu.get("reference"), cpu.get("shortener")];
    if (workload.name === "hot") hotCapacity = mine;
    console.log(`  median: reference ${Math.round(ref).toLocaleString("en")}, shortener ${Math.round(mine).toLocaleString("en")} req/s`);
    // The figures: hot set >= 0.80 of the reference, uniform (mostly cache misses) >= 0.60.
    const target = workload.name === "hot" ? 0.8 : 0.6;
    summary.push({ name: `${workload.name}-set ratio`, value: mine / ref, unit: "", target, better: "higher", digits: 2 });
    summary.push({ name: `${workload.name}-set shortener`, value: mine, unit: "req/s", digits: 0 });
    // The same comparison by server CPU per request (reference ÷ shortener): it holds up when other processes share
    // the server CPU, where the rates do not. A second view, not the figure.
    console.log(`  median server CPU per request: reference ${refCpu.toFixed(2)} µs, shortener ${myCpu.toFixed(2)} µs`);
    summary.push({ name: `${workload.name}-set CPU-cost ratio`, value: refCpu / myCpu, unit: "", digits: 2 });
  }

  if (only.has("budget")) await budgetPhase(codesFile, work, reference, hot);

  if (only.has("latency")) {
    const fixed = !Number.isNaN(cfg.pacedRate);
    if (Number.isNaN(hotCapacity) && !fixed) hotCapacity = (await runWrk(shortener, hot, { ...cfg, seconds: cfg.seconds })).rps;
    const rate = fixed ? cfg.pacedRate : hotCapacity / 2;
    pacedRate = rate;
    console.log(
      `\nlatency at ${Math.round(rate).toLocaleString("en")} req/s (${fixed ? "PACED_RATE" : "half the hot-set capacity"}), hot workload, ${cfg.pacedSeconds} s`,
    );
    console.log("  client-observed on loopback (an upper bound on server-side latency); 'from due time' counts from when the");
    console.log("  request was scheduled, so stalls are not hidden by requests that could not be sent (coordinated omission)");
    const mine = await undisturbedPaced(shortener, hot, rate);
    const floor = await undisturbedPaced(reference, hot, rate);
    const infinite = (x: number | null) => x ?? Number.POSITIVE_INFINITY;
    // Issue 2's figure is server-side: the tap's. The client's figures beside it include its own queue and stalls.
    summary.push({
      name: "p99 at that rate, server-side (tapped)",
      value: mine.tap.p99Ms,
      unit: "ms",
      target: 2,
      better: "lower",
      digits: 2,
    });
    summary.push({ name: "  same, from due time (client)", value: infinite(mine.fromDueMs.p99), unit: "ms", digits: 2 });
    summary.push({ name: "  same, on the wire (client)", value: infinite(mine.onWireMs.p99), unit: "ms", digits: 2 });
    if (mine.server !== null) {
      summary.push({
        name: "  same, the server's histogram (handler time, at most)",
        value: mine.server.p99BoundMs,
        unit: "ms",
        digits: 2,
      });
      summary.push({ name: "  event loop lag, largest over the last 10 s", value: mine.server.loopLagMs, unit: "ms", digits: 1 });
    }
    summary.push({ name: "  reference at that rate (tapped)", value: floor.tap.p99Ms, unit: "ms", digits: 2 });
    summary.push({ name: "  reference at that rate (from due time)", value: infinite(floor.fromDueMs.p99), unit: "ms", digits: 2 });
  }
  if (only.has("tracing")) await tracingPhase(dataDir, codes, hot, shortener, reference, work);
  await stopServer(shortener);
  if (only.has("standby")) await standbyPhase(dataDir, work, codes, [hot, uniform], reference, pacedRate);
  await stopServer(reference);
}

/**
 * The node Caddy fails over to: `serve --role standby` on a copy of the same database (as `litestream restore -f`
 * leaves it: switched to rollback-journal mode, read with no page cache), every code visited once, then the hot and
 * uniform workloads against the reference. No Litestream applies changes meanwhile, so its cache stays warm, as
 * while the primary is down.
 */
async function standbyPhase(
  dataDir: string,
  work: string,
  codes: string[],
  workloads: Workload[],
  reference: RunningServer,
  pacedRate: number,
): Promise<void> {
  const copyDir = join(work, "standby");
  mkdirSync(copyDir, { recursive: true });
  copyFileSync(join(dataDir, "shortener.db"), join(copyDir, "shortener.db"));
  const standby = { ...(await startShortener(copyDir, cfg.serverCpu, ["--role", "standby"])), name: "standby" };
  try {
    await visitCodes(standby.baseUrl, codes, range(codes.length));
    for (const workload of workloads) {
      console.log(`\nstandby, ${workload.name}: ${cfg.rounds} rounds of ${cfg.seconds} s, ${cfg.connections} connections`);
      const { rates } = await compare([reference, standby], workload);
      const [ref = Number.NaN, mine = Number.NaN] = [rates.get("reference"), rates.get("standby")];
      console.log(`  median: reference ${Math.round(ref).toLocaleString("en")}, standby ${Math.round(mine).toLocaleString("en")} req/s`);
      summary.push({ name: `${workload.name}-set ratio, a standby`, value: mine / ref, unit: "", digits: 2 });
    }
    // Serving everything while the primary is down, a standby also writes its visits to its spool every second.
    if (!Number.isNaN(pacedRate)) {
      console.log(`\nstandby, latency at ${Math.round(pacedRate).toLocaleString("en")} req/s, hot workload, ${cfg.pacedSeconds} s`);
      const run = await undisturbedPaced(standby, workloads[0] as Workload, pacedRate);
      summary.push({ name: "p99 at that rate, a standby (tapped)", value: run.tap.p99Ms, unit: "ms", digits: 2 });
    }
  } finally {
    await stopServer(standby);
  }
}

/** Busy work per redirect added to the reference in the budget phase, in microseconds. */
const BUDGET_SPINS = [2, 5, 10];

/**
 * What a throughput ratio leaves room for on this machine: the reference again with BUDGET_SPINS microseconds of
 * busy work per redirect, alternating with the plain one (hot workload). The time a request takes grows about
 * linearly with that work, so 1/rate = a + b × work is fitted by least squares and solved for each target ratio:
 * the work per redirect, beyond a bare 301 from a Map, that the shortener may spend to reach it. The slope of server
 * CPU per request against the work says what each microsecond of handler work costs the server in all (the kernel's
 * part of a request grows as the server slows, since fewer responses share a wake-up).
 */
async function budgetPhase(codesFile: string, work: string, reference: RunningServer, hot: Workload): Promise<void> {
  console.log(`\nbudget: the reference with ${BUDGET_SPINS.join(", ")} µs of busy work per redirect, hot workload, ${cfg.rounds} rounds`);
  const spun: RunningServer[] = [];
  try {
    for (const spin of BUDGET_SPINS) spun.push(await startReference(codesFile, work, cfg.serverCpu, spin));
    const { rates, cpu } = await compare([reference, ...spun], hot);
    const points = [0, ...BUDGET_SPINS].map((spin, i) => {
      const name = ([reference, ...spun][i] as RunningServer).name;
      return { spin, rate: rates.get(name) ?? Number.NaN, micros: cpu.get(name) ?? Number.NaN };
    });
    const baseRate = points[0]?.rate ?? Number.NaN;
    for (const { spin, rate, micros } of points.slice(1)) {
      console.log(
        `  +${spin} µs: ${Math.round(rate).toLocaleString("en")} req/s, ratio ${(rate / baseRate).toFixed(2)}, ${micros.toFixed(2)} µs CPU/req`,
      );
    }
    const time = linearFit(points.map((p) => [p.spin, 1e6 / p.rate] as const));
    const serverCpu = linearFit(points.map((p) => [p.spin, p.micros] as const));
    for (const target of [0.8, 0.75, 0.7, 0.6]) {
      const budget = (time.intercept * (1 / target - 1)) / time.slope;
      summary.push({ name: `work per redirect that leaves ratio ${target}`, value: budget, unit: "µs", digits: 1 });
    }
    summary.push({ name: "server CPU per µs of handler work", value: serverCpu.slope, unit: "µs", digits: 2 });
  } finally {
    for (const server of spun) await stopServer(server);
  }
}

/**
 * Hot-set throughput with tracing on (OTLP/HTTP export to a loopback sink on the client CPU) and 1 % of requests
 * sampled, against the reference: issue 4's second figure (>= 0.70). The untraced server is stopped meanwhile, so
 * the traced one has the same data dir and CPU to itself.
 */
async function tracingPhase(
  dataDir: string,
  codes: readonly string[],
  hot: Workload,
  untraced: RunningServer,
  reference: RunningServer,
  work: string,
): Promise<void> {
  console.log(`
tracing on, 1 % sampled, exported over OTLP/HTTP: ${cfg.rounds} rounds of ${cfg.seconds} s, hot workload`);
  await stopServer(untraced);
  const sink = await startOtlpSink(work, cfg.clientCpu);
  const traced = await startShortener(dataDir, cfg.serverCpu, [], {
    OTEL_EXPORTER_OTLP_ENDPOINT: sink.baseUrl,
    OTEL_TRACES_SAMPLER: "parentbased_traceidratio",
    OTEL_TRACES_SAMPLER_ARG: "0.01",
  });
  try {
    // Every code once, as the untraced server had: a cache that still misses on the cold 10 % would be measured
    // against a reference that never misses.
    await visitCodes(traced.baseUrl, codes, range(codes.length));
    const tracedNamed = { ...traced, name: "traced" };
    const { rates, cpu } = await compare([reference, tracedNamed], hot);
    const [ref = Number.NaN, mine = Number.NaN] = [rates.get("reference"), rates.get("traced")];
    const stats = (await (await fetch(`${sink.baseUrl}/stats`)).json()) as { exports: number; bytes: number };
    console.log(`  median: reference ${Math.round(ref).toLocaleString("en")}, traced ${Math.round(mine).toLocaleString("en")} req/s`);
    console.log(`  the sink received ${stats.exports} exports (${stats.bytes.toLocaleString("en")} bytes)`);
    if (stats.exports === 0) throw new Error("tracing phase: the OTLP sink received no export, so tracing was not on");
    summary.push({ name: "hot-set ratio, tracing 1 %", value: mine / ref, unit: "", target: 0.7, better: "higher", digits: 2 });
    summary.push({
      name: "  same, CPU-cost ratio",
      value: (cpu.get("reference") ?? Number.NaN) / (cpu.get("traced") ?? Number.NaN),
      unit: "",
      digits: 2,
    });
  } finally {
    await stopServer(traced);
    await stopServer(sink);
  }
  // The latency and later phases expect the untraced server back, on the same data dir.
  Object.assign(untraced, await startShortener(dataDir, cfg.serverCpu));
}

/**
 * Fills the cache with RSS_CACHED distinct codes of RSS_LINKS, then serves those codes at RSS_RATE for RSS_SECONDS
 * (paced, uniform over the cached codes, so every request is a hit) and reads VmRSS every second. The figure is the
 * highest reading after the first RSS_SETTLE seconds. Until the collector next runs, the heap still holds the
 * filling burst's garbage (its requests, and the 100 000 visits the flush has just written): idle, that took 10 s
 * on the test VM; under this traffic, 0-8 s. The reading 2 s after the burst and the peak (VmHWM) are printed beside.
 * RSS saws with the collector: between full collections (every 20-60 s at this rate) the old generation fills with
 * what survived young collections, and when Bun's GC timer has slowed down (its heap looked steady for 30 ticks)
 * the young generation itself grows by tens of MiB before it is collected. A window must hold several such cycles:
 * 30 s held one or none, and read 145-158 MiB where 70-90 s read 153-180 MiB.
 */
async function rssPhase(work: string): Promise<void> {
  console.log(`\nRSS: ${cfg.rssLinks.toLocaleString("en")} links, ${cfg.rssCached.toLocaleString("en")} cached`);
  const codes = generateCodes(cfg.rssLinks);
  const dataDir = join(work, "rss-data");
  const seeded = await seedLinks(dataDir, codes, cfg.serverCpu);
  console.log(`  seeded in ${seeded.toFixed(1)} s`);
  const server = await startShortener(dataDir, cfg.serverCpu);
  const before = memoryMiB(server.proc.pid);
  // Distinct codes spread over the whole table, each requested once.
  const step = Math.max(1, Math.floor(cfg.rssLinks / cfg.rssCached));
  const cached = Array.from(range(cfg.rssCached), (i) => (i * step) % codes.length);
  await visitCodes(server.baseUrl, codes, cached);
  await Bun.sleep(2_000); // the visit flush runs within a second
  const burst = memoryMiB(server.proc.pid);
  console.log(`  VmRSS ${before.rss.toFixed(1)} MiB at start, ${burst.rss.toFixed(1)} MiB 2 s after filling the cache`);
  const cachedFile = join(work, "rss-cached.txt");
  writeCodes(
    cachedFile,
    cached.map((i) => codes[i] as string),
  );
  const samples: ReturnType<typeof memoryMiB>[] = [];
  const started = performance.now();
  const sampler = setInterval(() => samples.push(memoryMiB(server.proc.pid)), 1_000);
  const steady = await runPaced(
    server,
    { name: "uniform", codesFile: cachedFile, hotCount: 0, hotShare: 0 },
    { rate: cfg.rssRate, seconds: cfg.rssSeconds, serverCpu: cfg.serverCpu, clientCpu: cfg.clientCpu },
  );
  clearInterval(sampler);
  const readings = samples.map((m) => m.rss);
  // Readings are a second apart from `started`: those after RSS_SETTLE seconds are the steady state.
  const settled = readings.slice(cfg.rssSettle);
  if (settled.length === 0) throw new Error(`no RSS reading after ${cfg.rssSettle} s of serving (${readings.length} in all)`);
  const highest = Math.max(...settled);
  const top = samples[cfg.rssSettle + settled.indexOf(highest)] as ReturnType<typeof memoryMiB>;
  const peak = memoryMiB(server.proc.pid).hwm;
  console.log(
    `  serving the cached codes at ${Math.round(steady.achieved).toLocaleString("en")} req/s for ` +
      `${Math.round((performance.now() - started) / 1000)} s, VmRSS each second (MiB): ${readings.map((r) => r.toFixed(0)).join(" ")}\n` +
      `  after ${cfg.rssSettle} s: ${Math.min(...settled).toFixed(1)}-${highest.toFixed(1)} MiB (median ${median(settled).toFixed(1)}; ` +
      `the highest ${top.anon.toFixed(1)} anonymous, ${top.file.toFixed(1)} file-backed); VmHWM ${peak.toFixed(1)} MiB`,
  );
  summary.push({
    name: `RSS, ${cfg.rssLinks.toLocaleString("en")} links, ${cfg.rssCached.toLocaleString("en")} cached (serving, highest)`,
    value: highest,
    unit: "MiB",
    target: 150,
    better: "lower",
    digits: 1,
  });
  summary.push({ name: "  same, median reading", value: median(settled), unit: "MiB", digits: 1 });
  summary.push({ name: "  same, 2 s after the filling burst", value: burst.rss, unit: "MiB", digits: 1 });
  summary.push({ name: "  peak (VmHWM)", value: peak, unit: "MiB", digits: 1 });
  // The API's reader worker starts with the first listing: what a node someone browses carries besides.
  const key = await createApiKey(dataDir);
  const listing = await fetch(`${server.baseUrl}/rest/v3/short-urls?itemsPerPage=10`, { headers: { "X-Api-Key": key } });
  if (listing.status !== 200) throw new Error(`listing answered ${listing.status}`);
  await listing.arrayBuffer();
  const browsed = memoryMiB(server.proc.pid);
  console.log(`  VmRSS ${browsed.rss.toFixed(1)} MiB after one listing (the reader worker up)`);
  summary.push({ name: "  after one listing (reader worker up)", value: browsed.rss, unit: "MiB", digits: 1 });
  await stopServer(server);
}

async function createsPhase(): Promise<void> {
  console.log(`\ncreates: bench/creates.ts for ${cfg.createsSeconds} s`);
  const proc = spawn([process.execPath, join(ROOT, "bench/creates.ts"), "--seconds", String(cfg.createsSeconds)], {
    env: { SERVER_CPU: String(cfg.serverCpu), CLIENT_CPU: String(cfg.clientCpu), SHORTENER_BIN: requireBinary() },
  });
  const timer = setTimeout(() => void stop(proc, "SIGTERM"), (cfg.createsSeconds + 120) * 1000);
  const [output, code] = await Promise.all([new Response(proc.stdout as ReadableStream).text(), proc.exited]);
  clearTimeout(timer);
  process.stdout.write(output.replace(/^CREATES_JSON .*\n?/m, ""));
  const line = output.split("\n").find((l) => l.startsWith("CREATES_JSON "));
  if (code !== 0 || line === undefined) throw new Error(`bench/creates.ts exited ${code}`);
  const result = JSON.parse(line.slice("CREATES_JSON ".length)) as { rate: number; p99ms: number; pacedRate: number; pacedP99ms: number };
  summary.push({ name: "creates", value: result.rate, unit: "/s", target: 2000, better: "higher", digits: 0 });
  // Issue 2's p99 is at a sustained 2 000/s; the closed loop's p99 is mostly its own queue (clients ÷ rate).
  summary.push({
    name: `create p99 at ${result.pacedRate.toLocaleString("en")}/s (from due time)`,
    value: result.pacedP99ms,
    unit: "ms",
    target: 20,
    better: "lower",
    digits: 1,
  });
  summary.push({ name: "  create p99 at capacity (48 in flight)", value: result.p99ms, unit: "ms", digits: 1 });
}

await runWithCleanup(async () => {
  requireBinary();
  for (const tool of ["wrk", "taskset"]) {
    if (Bun.which(tool) === null) throw new Error(`${tool} is not on PATH. Try: apt-get install ${tool === "wrk" ? "wrk" : "util-linux"}`);
  }
  await pinSelf(cfg.clientCpu);
  const started = performance.now();
  const cpuModel = /^model name\s*:\s*(.*)$/m.exec(await Bun.file("/proc/cpuinfo").text())?.[1] ?? "unknown CPU";
  const work = tempDir("shortener-bench-");
  const binary = snapshotBinary(work);
  const version = (await run([binary, "version"])).trim().split("\n")[0];
  console.log(`${new Date().toISOString()}  ${cpuModel}, ${navigator.hardwareConcurrency} CPUs, load average ${loadAverage()}`);
  console.log(`${BINARY}: ${version}`);
  console.log(`Bun ${Bun.version} (reference, clients); servers on CPU ${cfg.serverCpu}, clients on CPU ${cfg.clientCpu}`);
  if (["hot", "uniform", "budget", "latency", "tracing", "standby"].some((phase) => only.has(phase as Phase))) await redirectPhases(work);
  if (only.has("rss")) await rssPhase(work);
  if (only.has("creates")) await createsPhase();
  console.log(`\nsummary (${((performance.now() - started) / 1000).toFixed(0)} s, load average at the end ${loadAverage()})`);
  for (const row of summary) console.log(`  ${formatRow(row)}`);
  if (disturbedKept > 0) console.log(`  ${disturbedKept} runs were disturbed by other processes and kept: treat those figures as noisy`);
});
