/**
 * Visits API benchmark on a large database; see bench/RESULTS.md.
 *   1. Start the binary once on an empty data dir (its migrations create the schema) and stop it.
 *   2. Seed LINKS links and VISITS raw visits straight into SQLite, in time order over a year, with one hot link
 *      holding HOT_VISITS of them (the others' visits cluster in a few hours each, as links do); then the roll-ups
 *      (visit_days, domain_visit_days, visit_totals) and the links' counters from those rows, as the flush would have written them.
 *   3. Serve it, and time REPEAT sequential requests of each kind (after WARMUP): the server's own time (latency_ms of
 *      the access log, matched by request id) and the client's; medians and p99.
 *   4. Unless DELETE=0, delete the hot link's visits through the API while a client follows another link in a loop: how long the
 *      deletion takes, and the slowest redirect meanwhile (the batches must not stall redirects).
 * Server on SERVER_CPU, this script on CLIENT_CPU.
 */
import { Database } from "bun:sqlite";
import { existsSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { loadAverage } from "./lib/cpu";
import { pinSelf, run, runWithCleanup, tempDir } from "./lib/processes";
import { type RunningServer, requireBinary, snapshotBinary, startShortener, stopServer } from "./lib/servers";
import { numberSetting } from "./lib/settings";
import { median, percentile } from "./lib/stats";

const cfg = {
  links: numberSetting("LINKS", 100_000),
  visits: numberSetting("VISITS", 10_000_000),
  hotVisits: numberSetting("HOT_VISITS", 1_000_000),
  repeat: numberSetting("REPEAT", 200),
  warmup: numberSetting("WARMUP", 20),
  serverCpu: Number(process.env.SERVER_CPU ?? 0),
  clientCpu: Number(process.env.CLIENT_CPU ?? 1),
};

const DAY = 86_400_000;
const HOT = "hot";
const USER_AGENTS = [
  "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36",
  "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148",
  "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
];

/** Seeds links, raw visits, roll-ups and counters; returns seconds taken. */
function seed(dataDir: string): number {
  const started = performance.now();
  const db = new Database(join(dataDir, "shortener.db"), { strict: true });
  try {
    db.exec("PRAGMA busy_timeout = 5000");
    db.exec("PRAGMA synchronous = OFF");
    const now = Date.now();
    const insertLink = db.query<unknown, [string, string, number]>(
      "INSERT INTO short_urls (domain, short_code, long_url, created_at) VALUES ('', ?, ?, ?)",
    );
    db.transaction(() => {
      insertLink.run(HOT, "https://example.com/hot", now - 400 * DAY);
      for (let i = 1; i < cfg.links; i++) insertLink.run(`l${i}`, `https://example.com/${i}`, now - 400 * DAY);
    }).immediate();
    const hotId = (db.query("SELECT id FROM short_urls WHERE short_code = ?").get(HOT) as { id: number }).id;
    const insert = db.query<unknown, [number, number, number, string, string, string]>(
      `INSERT INTO visits (short_url_id, at, potential_bot, user_agent, remote_addr, visited_url, redirect_url)
       VALUES (?, ?, ?, ?, '203.0.113.0', ?, ?)`,
    );
    const start = now - 365 * DAY;
    const step = (365 * DAY) / cfg.visits;
    const hotEvery = Math.round(cfg.visits / cfg.hotVisits);
    const others = cfg.links - 1;
    const chunk = 200_000;
    for (let from = 0; from < cfg.visits; from += chunk) {
      db.transaction(() => {
        for (let i = from; i < Math.min(cfg.visits, from + chunk); i++) {
          const at = Math.floor(start + i * step);
          // Other links are active in turn, each for a few hours: (i * others / visits) walks through them.
          const link = i % hotEvery === 0 ? hotId : hotId + 1 + ((Math.floor((i * others) / cfg.visits) + (i % 50)) % others);
          const ua = i % 5;
          const code = link === hotId ? HOT : `l${link - hotId}`;
          insert.run(link, at, ua === 2 ? 1 : 0, USER_AGENTS[ua % 3] as string, `http://s.test/${code}`, "https://example.com/");
        }
      }).immediate();
      if ((from / chunk) % 10 === 9) console.log(`  ${((from + chunk) / 1e6).toFixed(1)} M visits seeded`);
    }
    // Roll-ups and counters exactly as the flush keeps them (visitors: one per visit is close enough here).
    db.transaction(() => {
      db.run(`INSERT INTO visit_days (short_url_id, day, total, bots, visitors)
              SELECT short_url_id, at / ${DAY}, count(*), sum(potential_bot), count(*) FROM visits GROUP BY 1, 2`);
      db.run(`INSERT INTO visit_totals (kind, total, bots) SELECT 'non_orphan', count(*), sum(potential_bot) FROM visits`);
      db.run("INSERT INTO link_visits (short_url_id, total, bots) SELECT short_url_id, sum(total), sum(bots) FROM visit_days GROUP BY 1");
      db.run(`INSERT INTO domain_visit_days (domain, day, total, bots) SELECT s.domain, d.day, sum(d.total), sum(d.bots)
              FROM visit_days d JOIN short_urls s ON s.id = d.short_url_id GROUP BY 1, 2`);
    }).immediate();
    db.exec("ANALYZE");
    const hot = db.query("SELECT total FROM link_visits WHERE short_url_id = ?").get(hotId) as { total: number };
    console.log(`  hot link: ${hot.total.toLocaleString("en")} visits`);
  } finally {
    db.close();
  }
  return (performance.now() - started) / 1000;
}

interface Timing {
  name: string;
  /** Request ids of the measured (not warm-up) requests, to find their server time in the access log. */
  ids: string[];
  clientMs: number[];
}

/** The access log's latency_ms per request id. */
function serverLatencies(logFile: string): Map<string, number> {
  const latencies = new Map<string, number>();
  for (const line of readFileSync(logFile, "utf8").split("\n")) {
    if (!line.includes('"event":"request"')) continue;
    const entry = JSON.parse(line) as { request_id: string; latency_ms: number };
    latencies.set(entry.request_id, entry.latency_ms);
  }
  return latencies;
}

async function measure(server: RunningServer, apiKey: string, name: string, path: string, check: (body: unknown) => void): Promise<Timing> {
  const ids: string[] = [];
  const clientMs: number[] = [];
  for (let i = 0; i < cfg.warmup + cfg.repeat; i++) {
    const id = `bench-${name.replace(/\W+/g, "-")}-${i}`;
    const started = performance.now();
    const response = await fetch(`${server.baseUrl}${path}`, { headers: { "X-Api-Key": apiKey, "X-Request-Id": id } });
    const body = await response.json();
    const elapsed = performance.now() - started;
    if (response.status !== 200) throw new Error(`${path} answered ${response.status}: ${JSON.stringify(body)}`);
    if (i === 0) check(body);
    if (i >= cfg.warmup) {
      ids.push(id);
      clientMs.push(elapsed);
    }
  }
  return { name, ids, clientMs };
}

const ms = (x: number) => x.toFixed(2);

async function main(): Promise<void> {
  await pinSelf(cfg.clientCpu);
  const dir = tempDir("visits-bench-");
  snapshotBinary(dir);
  // DATA_DIR keeps the seeded database for another run (seeding 10 M visits takes minutes); it is seeded when empty.
  const dataDir = process.env.DATA_DIR ?? join(dir, "data");
  const seeded = existsSync(join(dataDir, "shortener.db"));
  // A kept data dir's old server log would be overwritten in place (the server's log is not truncated).
  rmSync(join(dataDir, "server.log"), { force: true });
  console.log(`load average before: ${loadAverage()}`);
  if (!seeded) {
    await stopServer(await startShortener(dataDir, cfg.serverCpu));
    console.log(`seeding ${cfg.links.toLocaleString("en")} links and ${cfg.visits.toLocaleString("en")} visits`);
    console.log(`  seeded in ${seed(dataDir).toFixed(0)} s`);
  }
  const apiKey = (await run([requireBinary(), "keys", "create", "--name", `bench-${Date.now()}`, "--data-dir", dataDir])).trim();
  // Retention off: the 10 M raw rows span a year, past the default 90 days, and a purge must not run while measuring.
  const server = await startShortener(dataDir, cfg.serverCpu, ["--visits-retention", "off"]);
  try {
    const pages = (body: unknown) => (body as { visits: { data: unknown[]; pagination: { totalItems: number } } }).visits;
    const expectPage = (size: number) => (body: unknown) => {
      const got = pages(body);
      if (got.data.length !== size || got.pagination.totalItems !== cfg.hotVisits) {
        throw new Error(`unexpected page: ${got.data.length} items of ${got.pagination.totalItems}`);
      }
    };
    const runs = [
      await measure(server, apiKey, "GET /visits", "/rest/v3/visits", (b) => {
        const total = (b as { visits: { nonOrphanVisits: { total: number } } }).visits.nonOrphanVisits.total;
        if (total !== cfg.visits) throw new Error(`overview says ${total} visits`);
      }),
      await measure(server, apiKey, "GET /short-urls/{hot} (visitsSummary)", `/rest/v3/short-urls/${HOT}`, (b) => {
        const total = (b as { visitsSummary: { total: number } }).visitsSummary.total;
        if (total !== cfg.hotVisits) throw new Error(`visitsSummary says ${total}`);
      }),
      await measure(
        server,
        apiKey,
        "hot link visits, page 1 (20 per page)",
        `/rest/v3/short-urls/${HOT}/visits?page=1&itemsPerPage=20`,
        expectPage(20),
      ),
      await measure(
        server,
        apiKey,
        "hot link visits, page 1 000 (20 per page)",
        `/rest/v3/short-urls/${HOT}/visits?page=1000&itemsPerPage=20`,
        expectPage(20),
      ),
      await measure(
        server,
        apiKey,
        "hot link visits, page 1 000, excludeBots",
        `/rest/v3/short-urls/${HOT}/visits?page=1000&itemsPerPage=20&excludeBots=true`,
        () => {},
      ),
      await measure(
        server,
        apiKey,
        "hot link visits, last 30 days, page 50",
        `/rest/v3/short-urls/${HOT}/visits?page=50&itemsPerPage=20&startDate=${new Date(Date.now() - 30 * DAY).toISOString()}`,
        () => {},
      ),
      await measure(
        server,
        apiKey,
        "hot link visits, 5 000 per page (web client)",
        `/rest/v3/short-urls/${HOT}/visits?page=3&itemsPerPage=5000`,
        () => {},
      ),
      await measure(server, apiKey, "an ordinary link's visits", "/rest/v3/short-urls/l500/visits", () => {}),
      await measure(server, apiKey, "non-orphan visits, page 1", "/rest/v3/visits/non-orphan?itemsPerPage=20", () => {}),
      await measure(
        server,
        apiKey,
        "DEFAULT domain's visits, last 7 days, page 1",
        `/rest/v3/domains/DEFAULT/visits?itemsPerPage=20&startDate=${new Date(Date.now() - 7 * DAY).toISOString()}`,
        () => {},
      ),
    ];
    // Let the server flush its access log (it writes at least every few hundred ms), then match ids.
    await Bun.sleep(1500);
    const latencies = serverLatencies(server.logFile);
    console.log(`\n| request | server median | server p99 | client median | client p99 |\n| --- | --- | --- | --- | --- |`);
    for (const run of runs) {
      const serverMs = run.ids.map((id) => latencies.get(id) ?? Number.NaN).sort((a, b) => a - b);
      const client = [...run.clientMs].sort((a, b) => a - b);
      console.log(
        `| ${run.name} | ${ms(median(serverMs))} ms | ${ms(percentile(serverMs, 99))} ms | ${ms(median(client))} ms | ${ms(percentile(client, 99))} ms |`,
      );
    }
    // DELETE=0 skips the (destructive) deletion phase, to measure a kept database again.
    if (process.env.DELETE !== "0")
      await deleteWhileRedirecting(server, apiKey).catch(async (error: unknown) => {
        await Bun.sleep(500);
        const { exitCode, signalCode } = server.proc;
        console.error(`server exit ${exitCode} signal ${signalCode}; log tail:\n${readFileSync(server.logFile, "utf8").slice(-1500)}`);
        throw error;
      });
  } finally {
    await stopServer(server);
  }
  console.log(`load average after: ${loadAverage()}`);
}

/** Follows a link in a loop until `until()` says stop; returns each round trip's milliseconds, ascending. */
async function redirectLoop(server: RunningServer, until: () => boolean): Promise<number[]> {
  const times: number[] = [];
  for (let i = 0; !until() && i < 10_000_000; i++) {
    const started = performance.now();
    const response = await fetch(`${server.baseUrl}/l7`, { redirect: "manual" });
    await response.arrayBuffer();
    times.push(performance.now() - started);
  }
  return times.sort((a, b) => a - b);
}

const describeLoop = (t: number[]) =>
  `${t.length} redirects: median ${ms(median(t))} ms, p99 ${ms(percentile(t, 99))} ms, max ${ms(t.at(-1) ?? Number.NaN)} ms`;

/** Deletes the hot link's visits while another link is followed in a loop; compares with the loop alone. */
async function deleteWhileRedirecting(server: RunningServer, apiKey: string): Promise<void> {
  const baselineEnds = performance.now() + 5000;
  const baseline = await redirectLoop(server, () => performance.now() > baselineEnds);
  let deleting = true;
  const during = redirectLoop(server, () => !deleting);
  const started = performance.now();
  let body: { deletedVisits: number };
  try {
    const response = await fetch(`${server.baseUrl}/rest/v3/short-urls/${HOT}/visits`, {
      method: "DELETE",
      headers: { "X-Api-Key": apiKey },
    });
    body = (await response.json()) as { deletedVisits: number };
  } finally {
    deleting = false;
  }
  const seconds = (performance.now() - started) / 1000;
  console.log(`\nDELETE hot link visits: ${body.deletedVisits.toLocaleString("en")} deleted in ${seconds.toFixed(1)} s`);
  console.log(`  before (5 s): ${describeLoop(baseline)}`);
  console.log(`  during:       ${describeLoop(await during)}`);
}

await runWithCleanup(main);
