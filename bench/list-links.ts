/**
 * Listing links (GET /rest/v3/short-urls) on a large database: the time ShortUrlStore.list takes for one page and
 * its pagination count, per orderBy field and direction. The query runs on the thread that serves redirects, so
 * this is also how long a listing stalls them. Drives the real storage code (imported, not copied) on a database
 * migrated by it, with LINKS links created a second apart and a tenth of them visited (link_visits rows).
 * Usage: bun bench/list-links.ts [--links 1000000] [--repeat 5]
 */
import { join } from "node:path";
import { parseArgs } from "node:util";
import { openDatabase } from "../src/storage/database";
import { type OrderField, ShortUrlStore } from "../src/storage/short-url-store";
import { generateCodes, targetFor } from "./lib/codes";
import { runWithCleanup, tempDir } from "./lib/processes";
import { median } from "./lib/stats";

const { values } = parseArgs({
  options: {
    links: { type: "string", default: "1000000" },
    repeat: { type: "string", default: "5" },
  },
});
const links = Number(values.links);
const repeat = Number(values.repeat);
const FIELDS: OrderField[] = ["dateCreated", "shortCode", "longUrl", "title", "visits", "nonBotVisits"];
const ITEMS_PER_PAGE = 10;

await runWithCleanup(async () => {
  const db = openDatabase(join(tempDir("shortener-bench-list-"), "shortener.db"));
  const insert = db.query<unknown, [string, string, string | null, number]>(
    "INSERT INTO short_urls (domain, short_code, long_url, title, created_at) VALUES ('', ?, ?, ?, ?)",
  );
  const codes = generateCodes(links);
  const seeded = performance.now();
  const start = Date.now() - links * 1000;
  db.transaction(() => {
    codes.forEach((code, i) => {
      insert.run(code, targetFor(i), i % 3 === 0 ? null : `Page ${code}`, start + i * 1000);
    });
    db.exec(
      "INSERT INTO link_visits (short_url_id, total, bots) SELECT id, abs(random()) % 1000, abs(random()) % 10 FROM short_urls WHERE id % 10 = 0",
    );
  }).immediate();
  console.log(`seeded ${links.toLocaleString("en")} links in ${((performance.now() - seeded) / 1000).toFixed(1)} s`);
  const store = new ShortUrlStore(db);

  const time = (run: () => unknown): number => {
    const samples: number[] = [];
    for (let i = 0; i < repeat; i++) {
      const t0 = performance.now();
      run();
      samples.push(performance.now() - t0);
    }
    return median(samples);
  };
  console.log(`one page of ${ITEMS_PER_PAGE} links with its count, median of ${repeat} (ms): page 1, page 500`);
  for (const field of FIELDS) {
    for (const dir of ["ASC", "DESC"] as const) {
      const first = time(() => store.list({}, { field, dir }, ITEMS_PER_PAGE, 0));
      const deep = time(() => store.list({}, { field, dir }, ITEMS_PER_PAGE, 499 * ITEMS_PER_PAGE));
      console.log(`  ${`${field}-${dir}`.padEnd(18)} ${first.toFixed(1).padStart(7)} ${deep.toFixed(1).padStart(7)}`);
    }
  }
  const filtered = time(() => store.list({ excludeMaxVisitsReached: true }, { field: "dateCreated", dir: "DESC" }, ITEMS_PER_PAGE, 0));
  console.log(`  ${"excludeMaxVisitsReached".padEnd(18)} ${filtered.toFixed(1).padStart(7)}`);
  db.close();
});
