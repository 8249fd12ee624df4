import { Database } from "bun:sqlite";
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { startServer, type TestServer, waitFor } from "./support/binary";
import { threadsOf } from "./support/threads";

let server: TestServer;
beforeAll(async () => {
  server = await startServer({ args: ["--visit-flush-interval", "200ms"] });
});
afterAll(async () => {
  await server[Symbol.asyncDispose]();
});

async function create(body: Record<string, unknown>): Promise<{ shortCode: string }> {
  const response = await server.api("/rest/v3/short-urls", { method: "POST", body: JSON.stringify(body) });
  expect(response.status).toBe(200);
  return (await response.json()) as { shortCode: string };
}

const visit = (path: string, init: RequestInit = {}) => fetch(`${server.baseUrl}${path}`, { redirect: "manual", ...init });

async function summary(code: string): Promise<{ total: number; nonBots: number; bots: number }> {
  const body = (await (await server.api(`/rest/v3/short-urls/${code}`)).json()) as {
    visitsSummary: { total: number; nonBots: number; bots: number };
  };
  return body.visitsSummary;
}

describe("redirects", () => {
  test("answers GET, HEAD and a trailing slash with 302 and Cache-Control private", async () => {
    const { shortCode } = await create({ longUrl: "https://example.com/target" });
    for (const [path, method] of [
      [`/${shortCode}`, "GET"],
      [`/${shortCode}`, "HEAD"],
      [`/${shortCode}/`, "GET"],
    ] as const) {
      const response = await visit(path, { method });
      expect(response.status).toBe(302);
      expect(response.headers.get("location")).toBe("https://example.com/target");
      expect(response.headers.get("cache-control")).toBe("private, max-age=30");
    }
  });

  test.each([301, 302, 307, 308])("uses the link's own status %d", async (status) => {
    const { shortCode } = await create({ longUrl: "https://example.com/status", redirectStatus: status });
    expect((await visit(`/${shortCode}`)).status).toBe(status);
  });

  test("forwards the visit's query by default, the visit's values winning, and not when forwardQuery is false", async () => {
    const forwarding = await create({ longUrl: "https://example.com/p?a=1&keep=yes" });
    const location = (await visit(`/${forwarding.shortCode}?a=2&utm_source=x`)).headers.get("location");
    expect(location).toBe("https://example.com/p?keep=yes&a=2&utm_source=x");
    const plain = await create({ longUrl: "https://example.com/p?a=1", forwardQuery: false });
    expect((await visit(`/${plain.shortCode}?a=2`)).headers.get("location")).toBe("https://example.com/p?a=1");
  });

  test("answers an unknown code with 404 HTML for browsers and problem+json when JSON is asked for", async () => {
    const html = await visit("/doesNotExist", { headers: { Accept: "text/html,application/xhtml+xml" } });
    expect(html.status).toBe(404);
    expect(html.headers.get("content-type")).toStartWith("text/html");
    expect(await html.text()).toContain("does not exist");
    const json = await visit("/doesNotExist", { headers: { Accept: "application/json" } });
    expect(json.status).toBe(404);
    expect(json.headers.get("content-type")).toBe("application/problem+json");
    expect(((await json.json()) as { type: string }).type).toBe("https://shlink.io/api/error/short-url-not-found");
  });

  test("answers 404 for an expired, a not-yet-valid and a reserved path", async () => {
    const expired = await create({ longUrl: "https://example.com/e", validUntil: "2020-01-01T00:00:00+00:00" });
    const future = await create({ longUrl: "https://example.com/f", validSince: "2999-01-01T00:00:00Z" });
    for (const path of [`/${expired.shortCode}`, `/${future.shortCode}`, "/rest", "/metrics", "/a/b/c"]) {
      expect((await visit(path)).status).toBe(404);
    }
  });

  test("serves a link with maxVisits N exactly N times under concurrent requests", async () => {
    const { shortCode } = await create({ longUrl: "https://example.com/limited", maxVisits: 25 });
    const statuses = await Promise.all(Array.from({ length: 120 }, () => visit(`/${shortCode}`).then((r) => r.status)));
    expect(statuses.filter((s) => s === 302)).toHaveLength(25);
    expect(statuses.filter((s) => s === 404)).toHaveLength(95);
    expect((await summary(shortCode)).total).toBe(25);
  });

  test("serves the new target right after PATCH and 404 right after DELETE, even when cached", async () => {
    const { shortCode } = await create({ longUrl: "https://example.com/old" });
    expect((await visit(`/${shortCode}`)).headers.get("location")).toBe("https://example.com/old");
    const patched = await server.api(`/rest/v3/short-urls/${shortCode}`, {
      method: "PATCH",
      body: JSON.stringify({ longUrl: "https://example.com/new" }),
    });
    expect(patched.status).toBe(200);
    expect((await visit(`/${shortCode}`)).headers.get("location")).toBe("https://example.com/new");
    const patchedLimit = await server.api(`/rest/v3/short-urls/${shortCode}`, { method: "PATCH", body: JSON.stringify({ maxVisits: 2 }) });
    expect(patchedLimit.status).toBe(200);
    expect((await visit(`/${shortCode}`)).status).toBe(404);
    await server.api(`/rest/v3/short-urls/${shortCode}`, { method: "PATCH", body: JSON.stringify({ maxVisits: null }) });
    expect((await visit(`/${shortCode}`)).status).toBe(302);
    expect((await server.api(`/rest/v3/short-urls/${shortCode}`, { method: "DELETE" })).status).toBe(204);
    expect((await visit(`/${shortCode}`)).status).toBe(404);
  });

  test("counts visits, bots apart, and writes them to the database within the flush interval", async () => {
    const { shortCode } = await create({ longUrl: "https://example.com/counted" });
    const browser = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36";
    for (let i = 0; i < 3; i++) await visit(`/${shortCode}`, { headers: { "User-Agent": browser } });
    await visit(`/${shortCode}`, { headers: { "User-Agent": "Googlebot/2.1 (+http://www.google.com/bot.html)" } });
    await visit(`/${shortCode}`, { method: "HEAD", headers: { "User-Agent": browser } });
    expect(await summary(shortCode)).toEqual({ total: 5, nonBots: 3, bots: 2 });
    const db = new Database(join(server.dataDir, "shortener.db"), { readonly: true });
    const stored = db.query(
      "SELECT coalesce(v.total, 0) AS total, coalesce(v.bots, 0) AS bots FROM short_urls s LEFT JOIN link_visits v ON v.short_url_id = s.id WHERE s.short_code = ?",
    );
    await waitFor("visits flushed to SQLite", () => (stored.get(shortCode) as { total: number }).total === 5, 5_000);
    expect(stored.get(shortCode)).toEqual({ total: 5, bots: 2 });
    db.close();
  });

  test("runs its background threads in SCHED_IDLE: the visit writer (started without a failure), the allocator's scavenger; no inbox until a standby ships", async () => {
    const pid = server.proc?.pid as number;
    const threads = await threadsOf(pid);
    const policiesOf = (name: string) => threads.filter((t) => t.name === name).map((t) => t.policy);
    // 5 is SCHED_IDLE, 0 SCHED_OTHER. The event loop's thread (whose id is the process's) and the JIT's stay at 0.
    expect(threads.find((t) => t.id === pid)?.policy).toBe(0);
    expect(policiesOf("JITWorker")).toContain(0);
    // The two database workers: the visit writer (which checkpoints after its chunks) and the checkpointer (this node
    // owns its checkpoints), which stays at SCHED_OTHER for the few it runs: the retention purge waits for them. The
    // inbox of standbys' shipments starts with the first one (test/standby-follow.test.ts): none here.
    expect(policiesOf("Worker").sort()).toEqual([0, 5]);
    expect(policiesOf("mi-scavenger")).toEqual([5]);
    expect(policiesOf("JSCWarmUp")).toEqual([5]);
    expect(server.stdout + server.stderr).not.toContain("visit_writer_failed");
  });

  test("answers 405 with Allow for other methods on a short code", async () => {
    const { shortCode } = await create({ longUrl: "https://example.com/m" });
    const response = await visit(`/${shortCode}`, { method: "POST" });
    expect(response.status).toBe(405);
    expect(response.headers.get("allow")).toBe("GET, HEAD");
  });

  test("serves /healthz and /readyz", async () => {
    expect((await visit("/healthz")).status).toBe(200);
    const ready = await visit("/readyz");
    expect(ready.status).toBe(200);
    expect(((await ready.json()) as { status: string }).status).toBe("ready");
  });
});
