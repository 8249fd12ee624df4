/**
 * Another process holding the database's write lock past busy_timeout (5 s) — the other colour migrating the shared
 * database at its first start after an upgrade — must not turn a link write into a 500: the client gets a 503 to
 * retry, nothing is half-written, and the write succeeds once the lock is released. Redirects, which only read,
 * must go on meanwhile: a link write waits for the lock on a timer, and the background writes (the visit flush
 * every second) give up on it quickly, instead of holding the event loop for busy_timeout.
 */
import { Database } from "bun:sqlite";
import { expect, test } from "bun:test";
import { join } from "node:path";
import { startServer, TestServer, waitFor } from "./support/binary";

function createLink(server: TestServer, slug: string): Promise<Response> {
  return server.api("/rest/v3/short-urls", {
    method: "POST",
    body: JSON.stringify({ longUrl: `https://example.com/${slug}`, customSlug: slug }),
  });
}

/** Raw visit rows stored, read through a connection of its own. */
function storedVisits(server: TestServer): number {
  const db = new Database(join(server.dataDir, "shortener.db"), { readonly: true });
  try {
    return (db.query("SELECT count(*) AS n FROM visits").get() as { n: number }).n;
  } finally {
    db.close();
  }
}

/** Runs `during` while a connection of its own, standing for another process, holds the database's write lock. */
async function whileLocked<T>(server: TestServer, during: () => Promise<T>): Promise<T> {
  const other = new Database(join(server.dataDir, "shortener.db"));
  // The server writes too (heartbeats, flushes, the retention job's first pass): wait for its lock as a process would.
  other.exec("PRAGMA busy_timeout = 5000");
  other.exec("BEGIN IMMEDIATE");
  try {
    return await during();
  } finally {
    other.exec("ROLLBACK");
    other.close();
  }
}

/** Event-loop lag the timers of a server doing nothing else stay under (the background writes held it 100 ms). */
const LOOP_LAG_LIMIT_S = 0.06;

/**
 * Follows the link `code` every 100 ms for `ms` (at most ms / 100 times), checking each answer is a redirect;
 * returns how long each took.
 */
async function redirectLatencies(server: TestServer, code: string, ms: number): Promise<number[]> {
  const latencies: number[] = [];
  const until = Date.now() + ms;
  for (let i = 0; i < ms / 100 && Date.now() < until; i++) {
    const started = performance.now();
    const response = await fetch(`${server.baseUrl}/${code}`, { redirect: "manual" });
    latencies.push(performance.now() - started);
    expect(response.status).toBe(302);
    await Bun.sleep(100);
  }
  return latencies;
}

test("a primary that cannot store a new database's first visitor salt (another process's lock) serves all the same", async () => {
  await using server = new TestServer();
  await server.createKey();
  await whileLocked(server, () => server.start());
  const warned = (server.stdout + server.stderr).split("\n").find((line) => line.includes('"event":"visitor_salt_not_stored"'));
  expect(JSON.parse(warned ?? "{}")).toMatchObject({ level: "warn", error: expect.stringContaining("locked") });
  expect((await createLink(server, "unsalted")).status).toBe(200);
  expect((await fetch(`${server.baseUrl}/unsalted`, { redirect: "manual" })).status).toBe(302);
  // The first visit's flush stores the day's salt then, as it did before a primary's start stored one.
  await waitFor("the visit stored", () => storedVisits(server) === 1);
  const db = new Database(join(server.dataDir, "shortener.db"), { readonly: true });
  try {
    expect(db.query("SELECT count(*) AS salts FROM visitor_salts").get()).toEqual({ salts: 1 });
  } finally {
    db.close();
  }
});

test("a link write that waits out busy_timeout behind another process's lock gets a 503 with Retry-After, then succeeds", async () => {
  await using server = await startServer();
  await whileLocked(server, async () => {
    const refused = await createLink(server, "locked");
    expect(refused.status).toBe(503);
    expect(refused.headers.get("retry-after")).toBe("5");
    expect(refused.headers.get("content-type")).toContain("application/problem+json");
    const body = (await refused.json()) as { type: string; detail: string; requestId: string };
    expect(body.type).toBe("https://shlink.io/api/error/service-unavailable");
    expect(body.detail).toContain("write lock");
    expect(body.requestId).toBe(refused.headers.get("x-request-id") ?? "");
  });
  expect((await server.api("/rest/v3/short-urls/locked")).status).toBe(404);
  expect((await createLink(server, "locked")).status).toBe(200);
  expect((await fetch(`${server.baseUrl}/locked`, { redirect: "manual" })).headers.get("location")).toBe("https://example.com/locked");
  expect(server.stdout + server.stderr).toContain('"event":"database_busy"');
  expect(server.stdout + server.stderr).not.toContain("unhandled_error");
});

test("a link write waiting for another process's lock does not hold up redirects, and commits once the lock goes", async () => {
  await using server = await startServer();
  expect((await createLink(server, "w")).status).toBe(200);
  const { created, latencies } = await whileLocked(server, async () => {
    const created = createLink(server, "waited");
    // A second and a half of redirects while the create waits (busy_timeout would let it wait 5 s).
    return { created, latencies: await redirectLatencies(server, "w", 1500) };
  });
  expect((await created).status).toBe(200);
  // Before, the create held the event loop in SQLite's busy handler until the lock went: the first redirect
  // waited the whole 1.5 s.
  expect(latencies.length).toBeGreaterThanOrEqual(5);
  expect(Math.max(...latencies)).toBeLessThan(500);
  expect((await fetch(`${server.baseUrl}/waited`, { redirect: "manual" })).headers.get("location")).toBe("https://example.com/waited");
  expect(server.stdout + server.stderr).not.toContain('"event":"database_busy"');
});

test("a deletion of a link's visits waits for another process's lock on timers, then deletes them all", async () => {
  await using server = await startServer();
  expect((await createLink(server, "del")).status).toBe(200);
  for (let i = 0; i < 5; i++) expect((await fetch(`${server.baseUrl}/del`, { redirect: "manual" })).status).toBe(302);
  await waitFor("the visits stored", () => storedVisits(server) === 5, 10_000, 50);
  const { deleted, latencies } = await whileLocked(server, async () => {
    const deleted = server.api("/rest/v3/short-urls/del/visits", { method: "DELETE" });
    // Two seconds: longer than the background writes wait, shorter than busy_timeout (5 s).
    return { deleted, latencies: await redirectLatencies(server, "del", 2000) };
  });
  const response = await deleted;
  expect(response.status).toBe(200);
  // The visits up to the request; those made while it waited came after it, and stay.
  expect(await response.json()).toEqual({ deletedVisits: 5 });
  expect(latencies.length).toBeGreaterThanOrEqual(5);
  expect(Math.max(...latencies)).toBeLessThan(500);
  await waitFor("the later visits stored", () => storedVisits(server) === latencies.length, 10_000, 50);
  const link = (await (await server.api("/rest/v3/short-urls/del")).json()) as { visitsSummary: { total: number } };
  expect(link.visitsSummary.total).toBe(latencies.length);
});

test("while another process holds the write lock, the background writes never hold the event loop, and every visit is counted after", async () => {
  await using server = await startServer();
  expect((await createLink(server, "r")).status).toBe(200);
  const lag = () => server.metric("shortener_event_loop_lag_seconds");
  // The gauge is the largest lag of the last 10 s: wait until start-up has left it.
  await waitFor("a quiet event loop before the lock", async () => (await lag()) < LOOP_LAG_LIMIT_S, 15_000, 100);
  // Three seconds of redirects under the lock: visit flushes (every half second) and heartbeats (every second)
  // meet it meanwhile, and wait for it on timers.
  const { slowest, lagUnderLock } = await whileLocked(server, async () => {
    const slowest = await redirectLatencies(server, "r", 3000);
    return { slowest, lagUnderLock: await lag() };
  });
  // Before, each flush and heartbeat attempt held the event loop in SQLite's busy handler: for busy_timeout (5 s)
  // at first, then for 100 ms, a quarter of the time.
  expect(lagUnderLock).toBeLessThan(LOOP_LAG_LIMIT_S);
  expect(Math.max(...slowest)).toBeLessThan(1000);
  const redirects = slowest.length;
  expect(redirects).toBeGreaterThanOrEqual(10);
  const link = (await (await server.api("/rest/v3/short-urls/r")).json()) as { visitsSummary: { total: number } };
  expect(link.visitsSummary.total).toBe(redirects);
  await waitFor("every visit stored once the lock is released", () => storedVisits(server) === redirects, 10_000, 50);
  // The flushes that met the lock are one streak in the log: its start, and its end with how many failed.
  const flushLines = () => (server.stdout + server.stderr).split("\n").filter((line) => line.includes('"event":"visit_flush_'));
  await waitFor("the flush's recovery logged", () => flushLines().some((line) => line.includes("visit_flush_recovered")), 10_000, 50);
  expect(flushLines().filter((line) => line.includes('"event":"visit_flush_failed"'))).toHaveLength(1);
  const recovered = JSON.parse(flushLines().find((line) => line.includes("visit_flush_recovered")) as string);
  expect(recovered.failures).toBeGreaterThanOrEqual(2);
});

test("a drain that meets another process's lock keeps trying its final flush, and loses no visit once the lock goes", async () => {
  await using server = await startServer();
  expect((await createLink(server, "d")).status).toBe(200);
  const other = new Database(join(server.dataDir, "shortener.db"));
  // The server writes too (heartbeats, flushes, the retention job's first pass): wait for its lock as a process would.
  other.exec("PRAGMA busy_timeout = 5000");
  other.exec("BEGIN IMMEDIATE");
  // Visits buffered while the flush cannot write; the drain's final flush then meets the same lock.
  for (let i = 0; i < 20; i++) expect((await fetch(`${server.baseUrl}/d`, { redirect: "manual" })).status).toBe(302);
  const exit = server.stop("SIGTERM", 60_000);
  await waitFor("the final flush to retry", () => (server.stdout + server.stderr).includes("final_visit_flush_retry"), 20_000, 50);
  // Held for three seconds into the final flush's retries: five attempts 100 ms apart would have given up.
  await Bun.sleep(3000);
  other.exec("ROLLBACK");
  other.close();
  expect(await exit).toBe(0);
  expect(storedVisits(server)).toBe(20);
  const db = new Database(join(server.dataDir, "shortener.db"), { readonly: true });
  expect(db.query("SELECT total FROM link_visits").get()).toEqual({ total: 20 });
  db.close();
});

test("another process taking the write lock for under a second at a time, as Litestream's checkpoints do, puts no error in the log", async () => {
  await using server = await startServer();
  expect((await createLink(server, "l")).status).toBe(200);
  const other = new Database(join(server.dataDir, "shortener.db"));
  other.exec("PRAGMA busy_timeout = 5000");
  let redirects = 0;
  try {
    // Held 700 ms in every 1 150: the cycle drifts across the server's one-second jobs (heartbeat, webhook pruning,
    // visit flushes every half second), so each of them meets the lock; each waits it out within its patience (1 s).
    for (let hold = 0; hold < 8; hold++) {
      other.exec("BEGIN IMMEDIATE");
      const until = Date.now() + 700;
      for (let i = 0; i < 50 && Date.now() < until; i++) {
        expect((await fetch(`${server.baseUrl}/l`, { redirect: "manual" })).status).toBe(302);
        redirects++;
        await Bun.sleep(50);
      }
      other.exec("COMMIT");
      await Bun.sleep(450);
    }
  } finally {
    if (other.inTransaction) other.exec("ROLLBACK");
    other.close();
  }
  await waitFor("every visit stored", () => storedVisits(server) === redirects, 10_000, 50);
  const errors = (server.stdout + server.stderr).split("\n").filter((line) => line.includes('"level":"error"'));
  expect(errors).toEqual([]);
});
