/**
 * Pages of a large tag's or domain's visits (GET /domains/{domain}/visits, /tags/{tag}/visits, /visits/non-orphan)
 * on a large database, timed in process on VisitQueryService (the event loop is held for as long); see
 * bench/RESULTS.md.
 *   1. Seed (once per DB_PATH): LINKS links, of which the first 49 000 sit on three quiet domains (q4k: 4 000 links,
 *      q15k: 15 000, q30k: 30 000) and the rest on the default domain; VISITS raw visits over a year in id order,
 *      the oldest 5 % of them one in eight to the quiet links and every other to the default domain's (so the quiet
 *      domains' visits are all old); and the day roll-ups (per link, per domain), as the flush would have written them.
 *   2. Time each page REPEAT times (after one warm-up) and print the median and the slowest, in milliseconds.
 * Run it from another checkout on the same DB_PATH to compare builds (keep a copy of the file: an older build cannot
 * open a database a newer one has migrated).
 *   node_modules/.bin/bun bench/visit-sets.ts [--db /tmp/visit-sets.db] [--visits 3000000] [--repeat 3]
 */
import type { Database } from "bun:sqlite";
import { existsSync } from "node:fs";
import { parseArgs } from "node:util";
import type { VisitQueryService } from "../src/domain/visit-queries";
import { VisitQueryService as Service } from "../src/domain/visit-queries";
import { openDatabase } from "../src/storage/database";
import { VisitDeletionStore } from "../src/storage/visit-deletion-store";
import { VisitQueryStore } from "../src/storage/visit-query-store";
import { median } from "./lib/stats";

const { values } = parseArgs({
  options: {
    db: { type: "string", default: "/tmp/visit-sets.db" },
    visits: { type: "string", default: "3000000" },
    repeat: { type: "string", default: "3" },
  },
});
const VISITS = Number(values.visits);
const REPEAT = Number(values.repeat);
const LINKS = 100_000;
const DAY = 86_400_000;
const QUIET = [
  ["q4k", 1, 4_000],
  ["q15k", 4_001, 19_000],
  ["q30k", 19_001, 49_000],
] as const;

function seed(db: Database): void {
  const started = performance.now();
  db.exec("PRAGMA synchronous = OFF");
  const link = db.query<unknown, [string, string, string]>(
    "INSERT INTO short_urls (domain, short_code, long_url, created_at) VALUES (?, ?, ?, 0)",
  );
  db.transaction(() => {
    for (let i = 1; i <= LINKS; i++) {
      const quiet = QUIET.find(([, first, last]) => i >= first && i <= last);
      link.run(quiet?.[0] ?? "", `c${i}`, `https://example.com/${i}`);
    }
  }).immediate();
  const visit = db.query<unknown, [number, number]>(
    `INSERT INTO visits (short_url_id, at, potential_bot, user_agent, remote_addr, visited_url, redirect_url)
     VALUES (?, ?, 0, 'Mozilla/5.0', '203.0.113.0', 'https://s.test/c', 'https://example.com/')`,
  );
  const start = Date.now() - 365 * DAY;
  let state = 12_345;
  const random = (n: number) => {
    state = (state * 1_103_515_245 + 12_345) & 0x7fffffff;
    return state % n;
  };
  for (let from = 0; from < VISITS; from += 100_000) {
    db.transaction(() => {
      for (let i = from; i < Math.min(VISITS, from + 100_000); i++) {
        const old = i < VISITS * 0.05;
        const id = old && random(8) === 0 ? 1 + random(49_000) : 49_001 + random(LINKS - 49_000);
        visit.run(id, start + Math.floor((i * 365 * DAY) / VISITS));
      }
    }).immediate();
  }
  db.exec(`INSERT INTO visit_days (day, short_url_id, total, bots, visitors)
           SELECT at / ${DAY}, short_url_id, count(*), 0, 0 FROM visits GROUP BY 1, 2`);
  db.exec(`INSERT INTO domain_visit_days (domain, day, total, bots) SELECT s.domain, d.day, sum(d.total), sum(d.bots)
           FROM visit_days d JOIN short_urls s ON s.id = d.short_url_id GROUP BY 1, 2`);
  console.log(`seeded ${LINKS} links and ${VISITS} visits in ${Math.round((performance.now() - started) / 1000)} s`);
}

function time(page: () => { items: unknown[]; total: number }): { median: number; max: number; items: number; total: number } {
  const { total } = page();
  let items = 0;
  const ms: number[] = [];
  for (let i = 0; i < REPEAT; i++) {
    const started = performance.now();
    items = page().items.length;
    ms.push(performance.now() - started);
  }
  return { median: median(ms), max: Math.max(...ms), items, total };
}

const fresh = !existsSync(values.db);
const db = openDatabase(values.db);
if (fresh) seed(db);
const service: VisitQueryService = new Service({
  db,
  store: new VisitQueryStore(db),
  deletions: new VisitDeletionStore(db),
  shortUrls: null as never,
  tagExists: () => true,
  resolver: null as never,
  flushPending: async () => {},
});
const q = (page: number, itemsPerPage: number) => ({ excludeBots: false, page, itemsPerPage });
const cases: [string, () => { items: unknown[]; total: number }][] = [];
for (const [domain] of QUIET) {
  cases.push([`${domain} page 1 of 20`, () => service.domainVisits(domain, q(1, 20))]);
  cases.push([`${domain} page 1 of 5000`, () => service.domainVisits(domain, q(1, 5000))]);
}
cases.push(["default domain page 1 of 20", () => service.domainVisits("", q(1, 20))]);
cases.push(["default domain page 1 of 5000", () => service.domainVisits("", q(1, 5000))]);
cases.push(["default domain page 1000 of 20", () => service.domainVisits("", q(1000, 20))]);
cases.push(["non-orphan page 1 of 20", () => service.nonOrphanVisits(q(1, 20))]);
for (const [name, page] of cases) {
  const t = time(page);
  console.log(
    `${name.padEnd(32)} ${String(t.items).padStart(5)} of ${String(t.total).padStart(7)} visits  median ${t.median.toFixed(1).padStart(8)} ms  max ${t.max.toFixed(1).padStart(8)} ms`,
  );
}
db.close();
