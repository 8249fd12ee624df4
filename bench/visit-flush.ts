/**
 * How long the once-a-second visit flush blocks the event loop. It runs synchronously on the thread that serves
 * redirects, so its duration is a latency stall for every request in flight. This drives the real VisitBuffer and
 * storage code (imported, not copied) on a seeded database with the product's pragmas, feeding one second's worth
 * of visits drawn like the redirect workloads, and times flush() with and without SQLite's automatic checkpoint.
 * Each visit is recorded in full (raw row, roll-ups, distinct visitors) as the server does, from one client
 * (as under wrk); --counters-only leaves out the raw rows and roll-ups. With SQLite's automatic checkpoint off it also
 * prints how many WAL frames (pages) a flush wrote. --chunk-visits 200 flushes in transactions of 200 visits, as `serve`
 * does (its time then includes the yields between them).
 * --existing-visits N first fills the table with N raw visits of those links, and --existing-days D gives every link
 * a day roll-up for each of the D days before today (a database some weeks old): the flush's cost must not grow with
 * either.
 * Usage: bun bench/visit-flush.ts [--links 100000] [--hot-visits 90000] [--uniform-visits 60000] [--flushes 5] [--counters-only]
 *   [--chunk-visits 0] [--existing-visits 0] [--existing-days 0]
 */
import { statSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { VisitBuffer } from "../src/domain/visit-buffer";
import { VisitRecorder } from "../src/domain/visit-recorder";
import { openDatabase } from "../src/storage/database";
import { ShortUrlStore } from "../src/storage/short-url-store";
import { VisitStore } from "../src/storage/visit-store";
import { drawIndex } from "./lib/codes";
import { runWithCleanup, tempDir } from "./lib/processes";
import { median } from "./lib/stats";

const { values } = parseArgs({
  options: {
    links: { type: "string", default: "100000" },
    "hot-visits": { type: "string", default: "90000" },
    "uniform-visits": { type: "string", default: "60000" },
    flushes: { type: "string", default: "5" },
    "counters-only": { type: "boolean", default: false },
    "chunk-visits": { type: "string", default: "0" },
    "existing-visits": { type: "string", default: "0" },
    "existing-days": { type: "string", default: "0" },
  },
});
const links = Number(values.links);
const flushes = Number(values.flushes);
const chunkVisits = Number(values["chunk-visits"]);
const existingVisits = Number(values["existing-visits"]);
const existingDays = Number(values["existing-days"]);

const USER_AGENT = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36";

/** Link ids for one second of traffic: 90 % to the first 1 % of links, or uniform. */
function drawIds(visits: number, hot: boolean): Int32Array {
  const ids = new Int32Array(visits);
  const hotCount = hot ? Math.floor(links / 100) : 0;
  for (let i = 0; i < visits; i++) ids[i] = drawIndex(links, hotCount) + 1; // rowids start at 1
  return ids;
}

await runWithCleanup(async () => {
  const path = join(tempDir("shortener-bench-flush-"), "shortener.db");
  const db = openDatabase(path);
  const frameBytes = (db.query("PRAGMA page_size").get() as { page_size: number }).page_size + 24;
  const walBytes = () => statSync(`${path}-wal`, { throwIfNoEntry: false })?.size ?? 0;
  const insert = db.query<unknown, [string, string, number]>(
    "INSERT INTO short_urls (domain, short_code, long_url, created_at) VALUES ('', ?, ?, ?)",
  );
  db.transaction(() => {
    for (let i = 0; i < links; i++) insert.run(`c${i.toString(36).padStart(6, "0")}`, `https://example.com/page/${i}`, Date.now());
  }).immediate();
  if (existingVisits > 0) {
    // One SQL statement, so seeding ten million rows takes about a minute; a day old, spread evenly over the links.
    const started = performance.now();
    db.run(
      `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?1)
       INSERT INTO visits (short_url_id, at, potential_bot, user_agent, remote_addr, visited_url, redirect_url)
       SELECT 1 + abs(random()) % ?2, ?3, 0, ?4, '127.0.0.0', 'http://127.0.0.1:8080/c' || i, 'https://example.com/page/' || i FROM n`,
      [existingVisits, links, Date.now() - 86_400_000, USER_AGENT],
    );
    db.exec("PRAGMA wal_checkpoint(TRUNCATE)");
    console.log(`seeded ${existingVisits.toLocaleString("en")} raw visits in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  }
  if (existingDays > 0) {
    const started = performance.now();
    const today = Math.floor(Date.now() / 86_400_000);
    db.run(
      `WITH RECURSIVE d(day) AS (SELECT ?1 UNION ALL SELECT day + 1 FROM d WHERE day < ?2),
         l(id) AS (SELECT 1 UNION ALL SELECT id + 1 FROM l WHERE id < ?3)
       INSERT INTO visit_days (short_url_id, day, total, bots, visitors) SELECT l.id, d.day, 5, 1, 2 FROM d, l`,
      [today - existingDays, today - 1, links],
    );
    db.exec("PRAGMA wal_checkpoint(TRUNCATE)");
    console.log(`seeded ${existingDays} days of roll-ups in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  }
  const visits = new VisitBuffer(db, new ShortUrlStore(db));
  const detailed = !values["counters-only"];
  if (detailed) visits.addSink(new VisitRecorder(new VisitStore(db)));
  const userAgent = USER_AGENT;

  console.log(
    `visit flush on ${links.toLocaleString("en")} links (synchronous=FULL, WAL), ${detailed ? "full recording" : "counters only"}, ` +
      `${chunkVisits > 0 ? `in transactions of ${chunkVisits} visits` : "one transaction"}, median and max of ${flushes} flushes`,
  );
  for (const autocheckpoint of [1000, 0]) {
    db.exec(`PRAGMA wal_autocheckpoint = ${autocheckpoint}`);
    // An empty WAL file, so that its growth counts what the flushes below write (a WAL restarted by a checkpoint
    // is overwritten from its start, and does not grow until it passes its old size).
    db.exec("PRAGMA wal_checkpoint(TRUNCATE)");
    for (const [name, count, hot] of [
      ["hot", Number(values["hot-visits"]), true],
      ["uniform", Number(values["uniform-visits"]), false],
    ] as const) {
      const recordMs: number[] = [];
      const flushMs: number[] = [];
      const frames: number[] = [];
      let distinct = 0;
      for (let f = 0; f < flushes; f++) {
        const ids = drawIds(count, hot);
        const t0 = performance.now();
        const at = Date.now();
        for (const id of ids) {
          visits.record(id, false);
          if (detailed) {
            const link = { id, shortCode: `c${id}`, domain: "" };
            const target = `https://example.com/page/${id - 1}`;
            visits.capture({
              link,
              orphanType: null,
              at,
              bot: false,
              referer: null,
              userAgent,
              ip: "127.0.0.1",
              visitedUrl: `http://127.0.0.1:8080/c${id}`,
              redirectUrl: target,
            });
          }
        }
        const t1 = performance.now();
        distinct = new Set(ids).size;
        const walBefore = walBytes();
        if (chunkVisits > 0) await visits.flushInChunks(chunkVisits);
        else visits.flush();
        frames.push((walBytes() - walBefore) / frameBytes);
        recordMs.push(t1 - t0);
        flushMs.push(performance.now() - t1);
      }
      console.log(
        `  ${name.padEnd(7)} ${count.toLocaleString("en")} visits (${distinct.toLocaleString("en")} links) wal_autocheckpoint=${autocheckpoint}: ` +
          `flush median ${median(flushMs).toFixed(1)} ms, max ${Math.max(...flushMs).toFixed(1)} ms; record() ${((median(recordMs) * 1e6) / count).toFixed(0)} ns/visit` +
          // Without checkpoints the WAL only grows, so its growth is what a flush wrote (and Litestream ships).
          (autocheckpoint === 0 ? `; WAL frames median ${median(frames).toFixed(0)}` : ""),
      );
    }
  }
  db.close();
});
