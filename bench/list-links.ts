/**
 * The API's reads that touch every link, on a large database: ShortUrlStore.list (one page and its pagination count)
 * per orderBy field and direction, robots.txt's crawlable codes, tag stats and domains. Drives the real storage code
 * (imported, not copied) on a database migrated by it: LINKS links created a second apart, a tenth of them visited
 * (link_visits rows), one in a thousand crawlable, each with one of 200 tags, a few on custom domains. Listings and
 * tag stats run on the background reader's thread; robots.txt and domains on the one that serves redirects.
 * Then, unless --no-server, serves that database with the binary (dist/shortener, or SHORTENER_BIN) pinned to CPU 0
 * and, from CPU 1, follows one link in a loop while listing through the API ordered by visits (the slowest listing):
 * the slowest redirect while listings run, against the same loop with none. A listing on the thread that serves
 * redirects holds them for as long as it takes; on the reader worker it should not. Last, one listing of every link
 * (itemsPerPage=-1) read to the end by curl: its time and size, the slowest redirect meanwhile, and the server's memory.
 * Usage: bun bench/list-links.ts [--links 1000000] [--repeat 5] [--listings 10] [--no-server]
 */
import { join } from "node:path";
import { parseArgs } from "node:util";
import { openDatabase } from "../src/storage/database";
import { type OrderField, ShortUrlStore } from "../src/storage/short-url-store";
import { TagStore } from "../src/storage/tag-store";
import { generateCodes, targetFor } from "./lib/codes";
import { pinSelf, runWithCleanup, spawn, tempDir } from "./lib/processes";
import { createApiKey, memoryMiB, type RunningServer, snapshotBinary, startShortener, stopServer } from "./lib/servers";
import { median } from "./lib/stats";

const { values } = parseArgs({
  options: {
    links: { type: "string", default: "1000000" },
    repeat: { type: "string", default: "5" },
    listings: { type: "string", default: "10" },
    "no-server": { type: "boolean", default: false },
  },
});
const links = Number(values.links);
const repeat = Number(values.repeat);
const FIELDS: OrderField[] = ["dateCreated", "shortCode", "longUrl", "title", "visits", "nonBotVisits"];
const ITEMS_PER_PAGE = 10;
const TAGS = 200;

/**
 * Follows `code` in a loop until `until` resolves; the slowest redirect (ms) and how many. One request at a time, so
 * each one's latency is how long the server took to get to it.
 */
async function followWhile(server: RunningServer, code: string, until: Promise<unknown>): Promise<{ slowest: number; count: number }> {
  let done = false;
  void until.finally(() => {
    done = true;
  });
  let slowest = 0;
  let count = 0;
  const deadline = Date.now() + 600_000;
  while (!done && Date.now() < deadline) {
    const t0 = performance.now();
    const response = await fetch(`${server.baseUrl}/${code}`, { redirect: "manual" });
    if (response.status !== 302) throw new Error(`redirect answered ${response.status}`);
    slowest = Math.max(slowest, performance.now() - t0);
    count++;
  }
  return { slowest, count };
}

async function redirectsWhileListing(dataDir: string, code: string, work: string): Promise<void> {
  snapshotBinary(work);
  const key = await createApiKey(dataDir);
  const server = await startShortener(dataDir, 0);
  await pinSelf(1);
  try {
    const listings: number[] = [];
    const listAll = async () => {
      for (let i = 0; i < Number(values.listings); i++) {
        const t0 = performance.now();
        const response = await fetch(`${server.baseUrl}/rest/v3/short-urls?orderBy=visits-DESC&itemsPerPage=10`, {
          headers: { "X-Api-Key": key },
        });
        if (response.status !== 200) throw new Error(`listing answered ${response.status}`);
        await response.arrayBuffer();
        listings.push(performance.now() - t0);
      }
    };
    const listing = listAll();
    const during = await followWhile(server, code, listing);
    await listing;
    const quiet = await followWhile(server, code, Bun.sleep(listings.reduce((a, b) => a + b, 0)));
    console.log(`\nthrough the binary, ${listings.length} listings ordered by visits (median ${median(listings).toFixed(0)} ms each):`);
    console.log(`  slowest of ${during.count.toLocaleString("en")} redirects while listing: ${during.slowest.toFixed(1)} ms`);
    console.log(`  slowest of ${quiet.count.toLocaleString("en")} redirects with no listing:  ${quiet.slowest.toFixed(1)} ms`);

    // Every link at once (itemsPerPage=-1), read to the end by curl: written out in batches as the client reads it.
    const memory = memoryMiB(server.proc.pid);
    const t0 = performance.now();
    const url = `${server.baseUrl}/rest/v3/short-urls?itemsPerPage=-1`;
    const curl = spawn([
      "curl",
      "-sS",
      "--max-time",
      "600",
      "-o",
      "/dev/null",
      "-w",
      "%{http_code} %{size_download}",
      "-H",
      `X-Api-Key: ${key}`,
      url,
    ]);
    const output = new Response(curl.stdout as ReadableStream).text();
    const meanwhile = await followWhile(server, code, curl.exited);
    const [status, bytes] = (await output).split(" ");
    if (status !== "200") throw new Error(`listing every link answered ${status}`);
    const after = memoryMiB(server.proc.pid);
    console.log(`\nevery link (itemsPerPage=-1): ${(Number(bytes) / 1e6).toFixed(0)} MB in ${(performance.now() - t0).toFixed(0)} ms`);
    console.log(`  slowest of ${meanwhile.count.toLocaleString("en")} redirects meanwhile: ${meanwhile.slowest.toFixed(1)} ms`);
    console.log(
      `  server RSS ${memory.rss.toFixed(1)} MiB before, ${after.rss.toFixed(1)} after; peak ${memory.hwm.toFixed(1)} MiB before, ${after.hwm.toFixed(1)} after`,
    );
  } finally {
    await stopServer(server);
  }
}

await runWithCleanup(async () => {
  const work = tempDir("shortener-bench-list-");
  const dataDir = join(work, "data");
  const db = openDatabase(join(dataDir, "shortener.db"));
  const insert = db.query<unknown, [string, string, string | null, number, number]>(
    "INSERT INTO short_urls (domain, short_code, long_url, title, created_at, crawlable) VALUES ('', ?, ?, ?, ?, ?)",
  );
  const codes = generateCodes(links);
  const seeded = performance.now();
  const start = Date.now() - links * 1000;
  db.transaction(() => {
    codes.forEach((code, i) => {
      insert.run(code, targetFor(i), i % 3 === 0 ? null : `Page ${code}`, start + i * 1000, i % 1000 === 0 ? 1 : 0);
    });
    db.exec(
      "INSERT INTO link_visits (short_url_id, total, bots) SELECT id, abs(random()) % 1000, abs(random()) % 10 FROM short_urls WHERE id % 10 = 0",
    );
    // Every link carries one of TAGS tags; one in 10 000 sits on one of 5 custom domains.
    db.exec(
      `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ${TAGS}) INSERT INTO tags (name) SELECT 'tag-' || i FROM n`,
    );
    db.exec(`INSERT INTO short_url_tags (short_url_id, tag_id) SELECT id, 1 + id % ${TAGS} FROM short_urls`);
    db.exec("UPDATE short_urls SET domain = 'links' || (id / 10000 % 5) || '.example' WHERE id % 10000 = 5");
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
  // robots.txt (public): the crawlable codes, one link in 1 000 here. The service keeps them between link writes;
  // this is the read it does after one.
  const crawlable = time(() => store.crawlableCodes(""));
  console.log(`robots.txt's crawlable codes (${store.crawlableCodes("").length.toLocaleString("en")}): ${crawlable.toFixed(2)} ms`);
  const tags = new TagStore(db);
  console.log(`tag stats (${TAGS} tags over every link): ${time(() => tags.stats()).toFixed(1)} ms`);
  console.log(`domains (${store.domains().length} besides the default): ${time(() => store.domains()).toFixed(2)} ms`);
  db.close();
  if (!values["no-server"]) await redirectsWhileListing(dataDir, codes[0] as string, work);
});
