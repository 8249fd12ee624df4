/**
 * Another process holding the database's write lock past busy_timeout (5 s) — the other colour migrating the shared
 * database at its first start after an upgrade — must not turn a link write into a 500: the client gets a 503 to
 * retry, nothing is half-written, and the write succeeds once the lock is released. Redirects, which only read,
 * must go on meanwhile: the background writes (the visit flush every second) give up on the lock quickly instead of
 * holding the event loop for busy_timeout.
 */
import { Database } from "bun:sqlite";
import { expect, test } from "bun:test";
import { join } from "node:path";
import { startServer } from "./support/binary";

test("a link write that waits out busy_timeout behind another process's lock gets a 503 with Retry-After, then succeeds", async () => {
  await using server = await startServer();
  const other = new Database(join(server.dataDir, "shortener.db"));
  const create = (slug: string) =>
    server.api("/rest/v3/short-urls", {
      method: "POST",
      body: JSON.stringify({ longUrl: `https://example.com/${slug}`, customSlug: slug }),
    });
  try {
    other.exec("BEGIN IMMEDIATE");
    const refused = await create("locked");
    expect(refused.status).toBe(503);
    expect(refused.headers.get("retry-after")).toBe("5");
    expect(refused.headers.get("content-type")).toContain("application/problem+json");
    const body = (await refused.json()) as { type: string; detail: string; requestId: string };
    expect(body.type).toBe("https://shlink.io/api/error/service-unavailable");
    expect(body.detail).toContain("write lock");
    expect(body.requestId).toBe(refused.headers.get("x-request-id") ?? "");
  } finally {
    other.exec("ROLLBACK");
    other.close();
  }
  expect((await server.api("/rest/v3/short-urls/locked")).status).toBe(404);
  expect((await create("locked")).status).toBe(200);
  expect((await fetch(`${server.baseUrl}/locked`, { redirect: "manual" })).headers.get("location")).toBe("https://example.com/locked");
  expect(server.stdout + server.stderr).toContain('"event":"database_busy"');
  expect(server.stdout + server.stderr).not.toContain("unhandled_error");
});

test("while another process holds the write lock, redirects are answered without waiting for it, and every visit is counted after", async () => {
  await using server = await startServer();
  expect(
    (
      await server.api("/rest/v3/short-urls", {
        method: "POST",
        body: JSON.stringify({ longUrl: "https://example.com/r", customSlug: "r" }),
      })
    ).status,
  ).toBe(200);
  const other = new Database(join(server.dataDir, "shortener.db"));
  let redirects = 0;
  const slowest: number[] = [];
  try {
    other.exec("BEGIN IMMEDIATE");
    // Three seconds of redirects under the lock: several visit flushes try, and give up, meanwhile.
    const until = Date.now() + 3000;
    for (; redirects < 30 && Date.now() < until; redirects++) {
      const started = performance.now();
      const response = await fetch(`${server.baseUrl}/r`, { redirect: "manual" });
      slowest.push(performance.now() - started);
      expect(response.status).toBe(302);
      await Bun.sleep(100);
    }
  } finally {
    other.exec("ROLLBACK");
    other.close();
  }
  // Before, each flush attempt held the event loop for busy_timeout (5 s): a handful of redirects got through.
  expect(Math.max(...slowest)).toBeLessThan(1000);
  expect(redirects).toBeGreaterThanOrEqual(10);
  expect(server.stdout + server.stderr).toContain('"event":"visit_flush_failed"');
  let total = 0;
  const deadline = Date.now() + 10_000;
  for (let i = 0; i < 200 && Date.now() < deadline && total !== redirects; i++) {
    const link = (await (await server.api("/rest/v3/short-urls/r")).json()) as { visitsSummary: { total: number } };
    total = link.visitsSummary.total;
    if (total !== redirects) await Bun.sleep(50);
  }
  expect(total).toBe(redirects);
  const stored = new Database(join(server.dataDir, "shortener.db"), { readonly: true });
  try {
    const deadlineRows = Date.now() + 10_000;
    let rows = 0;
    for (let i = 0; i < 200 && Date.now() < deadlineRows && rows !== redirects; i++) {
      rows = (stored.query("SELECT count(*) AS n FROM visits").get() as { n: number }).n;
      if (rows !== redirects) await Bun.sleep(50);
    }
    expect(rows).toBe(redirects);
  } finally {
    stored.close();
  }
});
