/**
 * How long the once-a-second visit flush blocks the event loop. It runs synchronously on the thread that serves
 * redirects, so its duration is a latency stall for every request in flight. This drives the real VisitBuffer and
 * storage code (imported, not copied) on a seeded database with the product's pragmas, feeding one second's worth
 * of visits drawn like the redirect workloads, and times flush() with and without SQLite's automatic checkpoint.
 * Each visit is recorded in full (raw row, roll-ups, distinct visitors) as the server does, from one client
 * (as under wrk); --counters-only leaves out the raw rows and roll-ups. With SQLite's automatic checkpoint off it also
 * prints how many WAL frames (pages) a flush wrote. --chunk-visits 200 flushes in transactions of 200 visits, as `serve`
 * does (its time then includes the yields between them).
 * Usage: bun bench/visit-flush.ts [--links 100000] [--hot-visits 90000] [--uniform-visits 60000] [--flushes 5] [--counters-only]
 *   [--chunk-visits 0]
 */
import { statSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { VisitBuffer } from "../src/domain/visit-buffer";
import { VisitRecorder } from "../src/domain/visit-recorder";
import { openDatabase } from "../src/storage/database";
import { ShortUrlStore } from "../src/storage/short-url-store";
import { VisitStore } from "../src/storage/visit-store";
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
  },
});
const links = Number(values.links);
const flushes = Number(values.flushes);
const chunkVisits = Number(values["chunk-visits"]);

/** Link ids for one second of traffic: 90 % to the first 1 % of links, or uniform. */
function drawIds(visits: number, hot: boolean): Int32Array {
  const ids = new Int32Array(visits);
  const hotCount = Math.floor(links / 100);
  for (let i = 0; i < visits; i++) {
    const index = !hot
      ? Math.floor(Math.random() * links)
      : Math.random() < 0.9
        ? Math.floor(Math.random() * hotCount)
        : hotCount + Math.floor(Math.random() * (links - hotCount));
    ids[i] = index + 1; // rowids start at 1
  }
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
  const visits = new VisitBuffer(db, new ShortUrlStore(db));
  const detailed = !values["counters-only"];
  if (detailed) visits.addSink(new VisitRecorder(new VisitStore(db)));
  const userAgent = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36";

  console.log(
    `visit flush on ${links.toLocaleString("en")} links (synchronous=FULL, WAL), ${detailed ? "full recording" : "counters only"}, ` +
      `${chunkVisits > 0 ? `in transactions of ${chunkVisits} visits` : "one transaction"}, median and max of ${flushes} flushes`,
  );
  for (const autocheckpoint of [1000, 0]) {
    db.exec(`PRAGMA wal_autocheckpoint = ${autocheckpoint}`);
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
