/**
 * Raw visit rows are as durable as the counters they are written with: kill -9 at random moments under redirect
 * load loses at most the visits of the last flush interval (1 s) and never writes one twice; a drain (SIGTERM)
 * loses none. Counted in the `visits` table against the redirects the clients received.
 */
import { Database } from "bun:sqlite";
import { expect, test } from "bun:test";
import { rmSync } from "node:fs";
import { join } from "node:path";
import { startServer, TestServer, tempDir } from "./support/binary";

const VISITORS = 3;
const CYCLES = 6;

/** Raw rows and the counter of link `code`, read from the database file. */
function stored(dataDir: string, code: string): { raw: number; counter: number } {
  const db = new Database(join(dataDir, "shortener.db"), { readonly: true });
  try {
    const raw = db
      .query("SELECT count(*) AS n FROM visits v JOIN short_urls s ON s.id = v.short_url_id WHERE s.short_code = ?")
      .get(code) as {
      n: number;
    };
    const counter = db
      .query("SELECT coalesce(v.total, 0) AS n FROM short_urls s LEFT JOIN link_visits v ON v.short_url_id = s.id WHERE s.short_code = ?")
      .get(code) as { n: number };
    return { raw: raw.n, counter: counter.n };
  } finally {
    db.close();
  }
}

/** VISITORS clients requesting `code` back to back until stopped; `servedAt` gets the time of every 302. */
function redirectLoad(target: () => string, code: string, deadlineMs: number) {
  const servedAt: number[] = [];
  let stop = false;
  const deadline = Date.now() + deadlineMs;
  const client = async () => {
    for (let i = 0; !stop && i < 1_000_000 && Date.now() < deadline; i++) {
      try {
        const response = await fetch(`${target()}/${code}`, { redirect: "manual" });
        if (response.status === 302) servedAt.push(Date.now());
      } catch {
        await Bun.sleep(5); // the node is down or restarting: back off, as a real client would
      }
    }
  };
  const running = Promise.all(Array.from({ length: VISITORS }, client));
  return {
    servedAt,
    async finish() {
      stop = true;
      await running;
    },
  };
}

test("kill -9 under redirect load loses at most one flush interval of raw visit rows and never writes one twice", async () => {
  const dataDir = tempDir();
  let server = new TestServer({ dataDir });
  const apiKey = await server.createKey();
  await server.start();
  await server.api("/rest/v3/short-urls", {
    method: "POST",
    body: JSON.stringify({ longUrl: "https://example.com/durable", customSlug: "durable" }),
  });
  const load = redirectLoad(() => server.baseUrl, "durable", 90_000);
  const losses: number[] = [];
  let servedBefore = 0;
  let storedBefore = 0;
  for (let cycle = 0; cycle < CYCLES; cycle++) {
    await Bun.sleep(1_500 + Math.floor(Math.random() * 1_000)); // a random moment to crash at: the point of the test
    server.proc?.kill("SIGKILL");
    await server.proc?.exited;
    const killedAt = Date.now();
    const served = load.servedAt.length;
    const now = stored(dataDir, "durable");
    expect(now.raw).toBe(now.counter);
    const servedThisRun = served - servedBefore;
    const storedThisRun = now.raw - storedBefore;
    // Never twice: no more rows than redirects answered (plus the requests in flight at the kill).
    expect(storedThisRun).toBeLessThanOrEqual(servedThisRun + VISITORS);
    // At most what was answered in the last flush interval (1 s, plus scheduling slack) is lost.
    const servedInLastInterval = load.servedAt.filter((t) => t > killedAt - 1_100).length;
    expect(servedThisRun - storedThisRun).toBeLessThanOrEqual(servedInLastInterval + VISITORS);
    losses.push(servedThisRun - storedThisRun);
    servedBefore = served;
    storedBefore = now.raw;
    server = new TestServer({ dataDir });
    server.apiKey = apiKey;
    await server.start();
  }
  await load.finish();
  expect(servedBefore).toBeGreaterThan(CYCLES * 100);
  console.log(`visits-durability: ${CYCLES} kill -9 cycles, ${servedBefore} redirects, raw rows lost per crash: ${losses.join(", ")}`);
  expect(await server.stop()).toBe(0);
  rmSync(dataDir, { recursive: true, force: true });
}, 120_000);

test("a drain under redirect load writes a raw row for every redirect answered", async () => {
  await using server = await startServer({ drainGrace: "300ms" });
  await server.api("/rest/v3/short-urls", {
    method: "POST",
    body: JSON.stringify({ longUrl: "https://example.com/drained", customSlug: "drained" }),
  });
  const load = redirectLoad(() => server.baseUrl, "drained", 30_000);
  await Bun.sleep(1_500); // load under way across at least one periodic flush
  server.proc?.kill("SIGTERM");
  expect(await server.waitForExit(20_000)).toBe(0);
  await load.finish();
  const now = stored(server.dataDir, "drained");
  expect(load.servedAt.length).toBeGreaterThan(100);
  expect(now.raw).toBe(load.servedAt.length);
  expect(now.counter).toBe(load.servedAt.length);
});
