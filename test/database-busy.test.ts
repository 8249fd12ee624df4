/**
 * Another process holding the database's write lock past busy_timeout (5 s) — the other colour migrating the shared
 * database at its first start after an upgrade — must not turn a link write into a 500: the client gets a 503 to
 * retry, nothing is half-written, and the write succeeds once the lock is released.
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
