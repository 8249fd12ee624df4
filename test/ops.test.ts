/** The ops listener, metrics, request ids and access logs, against the compiled binary. */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { startServer, type TestServer, waitFor } from "./support/binary";
import { METRICS } from "./support/metric-names";

let server: TestServer;
beforeAll(async () => {
  server = await startServer({ args: ["--trusted-proxies", "127.0.0.1"] });
});
afterAll(async () => {
  await server[Symbol.asyncDispose]();
});

const ops = (path: string, init?: RequestInit) => fetch(`http://127.0.0.1:${server.opsPort}${path}`, init);

const delta = (before: Map<string, number>, after: Map<string, number>, series: string) =>
  (after.get(series) ?? 0) - (before.get(series) ?? 0);

describe("ops listener", () => {
  test("the public listener never serves /metrics or /control", async () => {
    for (const [method, path] of [
      ["GET", "/metrics"],
      ["POST", "/control/drain"],
      ["GET", "/control/status"],
    ] as const) {
      const response = await fetch(`${server.baseUrl}${path}`, { method, redirect: "manual" });
      expect([404, 405]).toContain(response.status);
    }
    expect((await fetch(`${server.baseUrl}/readyz`)).status).toBe(200);
  });

  test("/control/status says who owns the port", async () => {
    const status = (await (await ops("/control/status")).json()) as Record<string, unknown>;
    expect(status).toMatchObject({ service: "shortener", role: "primary", draining: false, dataDir: server.dataDir });
    expect(status.pid).toBe(server.proc?.pid);
  });

  test("metrics move by exactly the traffic sent, with no code or URL in any label", async () => {
    const created = await server.api("/rest/v3/short-urls", {
      method: "POST",
      body: JSON.stringify({ longUrl: "https://example.com/metered", customSlug: "metered" }),
    });
    expect(created.status).toBe(200);
    const before = await server.metrics();
    for (let i = 0; i < 7; i++) expect((await fetch(`${server.baseUrl}/metered`, { redirect: "manual" })).status).toBe(302);
    for (let i = 0; i < 3; i++) expect((await fetch(`${server.baseUrl}/nothing-here-${i}`, { redirect: "manual" })).status).toBe(404);
    for (let i = 0; i < 2; i++) expect((await server.api("/rest/v3/short-urls")).status).toBe(200);
    const after = await server.metrics();
    const redirect = 'route="/{shortCode}",method="GET"';
    expect(delta(before, after, `http_requests_total{${redirect},status_class="3xx"}`)).toBe(7);
    expect(delta(before, after, `http_requests_total{${redirect},status_class="4xx"}`)).toBe(3);
    expect(delta(before, after, `http_request_duration_seconds_count{${redirect},status_class="3xx"}`)).toBe(7);
    expect(delta(before, after, 'http_requests_total{route="/rest/v3/short-urls",method="GET",status_class="2xx"}')).toBe(2);
    const hits = delta(before, after, 'shortener_redirects_total{outcome="hit"}');
    const misses = delta(before, after, 'shortener_redirects_total{outcome="miss"}');
    expect(hits + misses).toBe(7);
    expect(hits).toBeGreaterThanOrEqual(6);
    expect(delta(before, after, 'shortener_redirects_total{outcome="not_found"}')).toBe(3);
    expect(after.get("shortener_ready")).toBe(1);
    expect(after.get("shortener_cache_entries")).toBeGreaterThanOrEqual(1);
    expect(after.get("shortener_database_size_bytes")).toBeGreaterThan(0);
    expect(after.get("shortener_disk_free_bytes")).toBeGreaterThan(0);
    expect(after.get("process_resident_memory_bytes")).toBeGreaterThan(0);
    expect([...after.keys()].some((k) => k.startsWith("shortener_build_info{"))).toBe(true);
    const text = [...after.keys()].join("\n");
    expect(text).not.toContain("metered");
    expect(text).not.toContain("nothing-here");
    expect(text).not.toContain("example.com");
  });

  test("exposes every metric of the contract the alerts and the dashboard read, with its type (test/support/metric-names.ts)", async () => {
    const text = await (await ops("/metrics")).text();
    const missing = METRICS.filter((m) => !text.includes(`# TYPE ${m.name} ${m.type}\n`)).map((m) => `${m.name} (${m.type})`);
    expect(missing).toEqual([]);
  });

  test("a 1 ms and a 100 ms SLO can be read from the latency buckets", async () => {
    const samples = await server.metrics();
    const buckets = [...samples.keys()].filter(
      (k) => k.startsWith("http_request_duration_seconds_bucket{") && k.includes('route="/{shortCode}"'),
    );
    expect(buckets.some((k) => k.includes('le="0.001"'))).toBe(true);
    expect(buckets.some((k) => k.includes('le="0.1"'))).toBe(true);
  });

  test("leaves out the per-heap-space gauges, whose collection walks the whole heap (event-loop stall), and keeps the heap's size", async () => {
    const names = [...(await server.metrics()).keys()];
    expect(names.filter((k) => k.startsWith("nodejs_heap_space_"))).toEqual([]);
    expect(names).toContain("nodejs_heap_size_used_bytes");
    expect(names).toContain("process_resident_memory_bytes");
  });
});

describe("WAL checkpoints", () => {
  test("run on the background checkpointer, not inside commits: the server's connection has automatic checkpoints off", async () => {
    const api = { "X-Api-Key": server.apiKey, "Content-Type": "application/json" };
    for (let i = 0; i < 20; i++) {
      const created = await fetch(`${server.baseUrl}/rest/v3/short-urls`, {
        method: "POST",
        headers: api,
        body: JSON.stringify({ longUrl: `https://example.com/checkpoint/${i}` }),
      });
      expect(created.status).toBe(200);
    }
    let checkpoints = 0;
    await waitFor("a background checkpoint", async () => {
      checkpoints = (await server.metrics()).get("shortener_sqlite_checkpoint_duration_seconds_count") ?? 0;
      return checkpoints >= 1;
    });
    expect((await server.metrics()).get("shortener_sqlite_checkpoint_failures_total")).toBe(0);
  });

  test("the WAL starts over under steady traffic: a checkpoint runs right after a visit chunk, where it can finish", async () => {
    const created = await server.api("/rest/v3/short-urls", {
      method: "POST",
      body: JSON.stringify({ longUrl: "https://example.com/steady", customSlug: "steady-wal" }),
    });
    expect(created.status).toBe(200);
    // The WAL index's header (SQLite's file format): the frames now in the WAL, a little-endian u32 at offset 16.
    const walFrames = () => new DataView(readFileSync(join(server.dataDir, "shortener.db-shm")).buffer).getUint32(16, true);
    let highest = 0;
    let restartedFrom = 0;
    const deadline = Date.now() + 20_000;
    // Redirects in batches every ~50 ms (each visit is written by the flush), until the WAL has started over.
    for (let batch = 0; batch < 400 && restartedFrom === 0 && Date.now() < deadline; batch++) {
      const answers = await Promise.all(
        Array.from({ length: 20 }, () => fetch(`${server.baseUrl}/steady-wal`, { redirect: "manual" }).then((r) => r.status)),
      );
      expect(answers.every((status) => status === 302)).toBe(true);
      const frames = walFrames();
      if (frames < highest) restartedFrom = highest;
      highest = Math.max(highest, frames);
      await Bun.sleep(50);
    }
    expect(restartedFrom).toBeGreaterThan(0);
  });
});

describe("request ids and access logs", () => {
  test("the redirect path's 404 and 405 problems carry the request id, generated or given", async () => {
    const missing = await fetch(`${server.baseUrl}/no-such-code`, {
      headers: { Accept: "application/json", "X-Request-Id": "redir-404.1" },
    });
    expect(missing.status).toBe(404);
    expect(missing.headers.get("x-request-id")).toBe("redir-404.1");
    expect(((await missing.json()) as { requestId: string }).requestId).toBe("redir-404.1");
    const wrongMethod = await fetch(`${server.baseUrl}/no-such-code`, { method: "POST" });
    expect(wrongMethod.status).toBe(405);
    const generated = wrongMethod.headers.get("x-request-id");
    expect(generated).toMatch(/^[A-Za-z0-9]+-[0-9a-z]+$/);
    expect(((await wrongMethod.json()) as { requestId: string }).requestId).toBe(generated as string);
  });

  test("echoes a well-formed X-Request-Id in the response, the problem body and the log line", async () => {
    const response = await fetch(`${server.baseUrl}/rest/v3/short-urls/missing-one`, {
      headers: { "X-Request-Id": "trace-abc.123", "X-Api-Key": server.apiKey },
    });
    expect(response.status).toBe(404);
    expect(response.headers.get("x-request-id")).toBe("trace-abc.123");
    expect(((await response.json()) as { requestId: string }).requestId).toBe("trace-abc.123");
    await waitFor("the access line", () => server.stdout.includes('"request_id":"trace-abc.123"'), 5_000);
    const line = server.stdout.split("\n").find((l) => l.includes('"request_id":"trace-abc.123"')) as string;
    expect(JSON.parse(line)).toMatchObject({
      level: "info",
      event: "request",
      method: "GET",
      route: "/rest/v3/short-urls/{shortCode}",
      status: 404,
    });
    expect(JSON.parse(line).latency_ms).toBeNumber();
    expect(JSON.parse(line).bytes).toBeGreaterThan(0);
  });

  test("replaces a malformed X-Request-Id with a generated one", async () => {
    for (const bad of ["has space", "x".repeat(200), 'quote"d']) {
      const response = await fetch(`${server.baseUrl}/healthz`, { headers: { "X-Request-Id": bad } });
      const id = response.headers.get("x-request-id") as string;
      expect(id).not.toBe(bad);
      expect(id).toMatch(/^[A-Za-z0-9]+-[0-9a-z]+$/);
    }
  });

  test("takes the client IP from X-Forwarded-For only through a trusted proxy", async () => {
    await fetch(`${server.baseUrl}/healthz`, { headers: { "X-Forwarded-For": "198.51.100.9, 127.0.0.1", "X-Request-Id": "via-proxy" } });
    await waitFor("the proxied line", () => server.stdout.includes('"request_id":"via-proxy"'), 5_000);
    const line = server.stdout.split("\n").find((l) => l.includes('"request_id":"via-proxy"')) as string;
    expect(JSON.parse(line).client_ip).toBe("198.51.100.9");
  });

  test("never writes an API key to the logs", async () => {
    const second = await server.createKey("second");
    await server.api("/rest/v3/short-urls", { headers: { "X-Api-Key": second } });
    await server.api("/rest/v3/short-urls", { headers: { "X-Api-Key": `${second}x` } });
    await waitFor(
      "the last access lines",
      () => server.stdout.split("\n").filter((l) => l.includes('"route":"/rest/v3/short-urls"')).length >= 2,
      5_000,
    );
    const output = server.stdout + server.stderr;
    for (const key of [server.apiKey, second]) {
      expect(output.includes(key)).toBe(false);
      expect(output.includes(key.slice(4))).toBe(false);
    }
  });
});
