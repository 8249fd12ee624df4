/**
 * Drain, through `shortener drain` and SIGTERM: readiness fails at once, the node keeps serving through the
 * grace period while a health-checking client (standing in for Caddy) moves away, then it stops, writes every
 * buffered visit and exits 0.
 */

import { Database } from "bun:sqlite";
import { expect, test } from "bun:test";
import { join } from "node:path";
import { runCli, startServer, type TestServer, waitFor } from "./support/binary";

/** Like Caddy: sends only while the last /readyz poll passed; counts every failure. */
async function proxyLikeLoad(server: TestServer, code: string, clients: number, stopAfterMs: number) {
  let ready = true;
  let stop = false;
  let served = 0;
  const failures: string[] = [];
  const deadline = Date.now() + stopAfterMs;
  const poller = (async () => {
    for (let i = 0; !stop && i < 10_000 && Date.now() < deadline; i++) {
      try {
        ready = (await fetch(`${server.baseUrl}/readyz`)).status === 200;
      } catch {
        ready = false;
      }
      await Bun.sleep(100); // the health-check interval, not a readiness wait
    }
  })();
  const client = async () => {
    for (let i = 0; !stop && i < 100_000 && Date.now() < deadline; i++) {
      if (!ready) {
        await Bun.sleep(10); // traffic has moved to the other node
        continue;
      }
      try {
        const response = await fetch(`${server.baseUrl}/${code}`, { redirect: "manual" });
        if (response.status === 302) served++;
        else failures.push(`HTTP ${response.status}`);
      } catch (error) {
        failures.push((error as { code?: string }).code ?? String(error));
      }
    }
  };
  const running = Promise.all([poller, ...Array.from({ length: clients }, client)]);
  return {
    served: () => served,
    failures,
    async finish() {
      stop = true;
      await running;
    },
  };
}

function countedVisits(server: TestServer, code: string): number {
  const db = new Database(join(server.dataDir, "shortener.db"), { readonly: true });
  const row = db
    .query("SELECT coalesce(v.total, 0) AS n FROM short_urls s LEFT JOIN link_visits v ON v.short_url_id = s.id WHERE s.short_code = ?")
    .get(code) as { n: number };
  db.close();
  return row.n;
}

test("shortener drain under load: 0 failed requests, 0 lost visits, and it returns only once drained", async () => {
  const server = await startServer({ drainGrace: "1s" });
  await server.api("/rest/v3/short-urls", {
    method: "POST",
    body: JSON.stringify({ longUrl: "https://example.com/drained", customSlug: "drained" }),
  });
  const load = await proxyLikeLoad(server, "drained", 6, 30_000);
  await waitFor("load to build up", () => load.served() >= 300);

  const started = performance.now();
  const drain = runCli(["drain", "--timeout", "20s", ...server.settings]);
  await waitFor("readiness to fail at once", async () => (await fetch(`${server.baseUrl}/readyz`)).status === 503, 2_000);
  // The 503 says why, for the operator looking at it; a proxy must not cache it.
  const notReady = await fetch(`${server.baseUrl}/readyz`);
  expect(notReady.status).toBe(503);
  expect(notReady.headers.get("cache-control")).toBe("no-store");
  expect(await notReady.json()).toEqual({ status: "not ready", role: "primary", reasons: ["draining"] });
  const redirectDuringGrace = await fetch(`${server.baseUrl}/drained`, { redirect: "manual" });
  expect(redirectDuringGrace.status).toBe(302);
  const result = await drain;
  const drainedAfterMs = performance.now() - started;
  // Read the database the moment drain returns: every visit is already written.
  const visitsAtReturn = countedVisits(server, "drained");
  await load.finish();

  expect(result.exitCode).toBe(0);
  expect(result.stdout).toMatch(/^drained in \d+\.\d+s; \d+ buffered visits written\n$/);
  expect(drainedAfterMs).toBeGreaterThanOrEqual(1_000);
  expect(drainedAfterMs).toBeLessThan(1_000 + 5_000);
  expect(load.failures).toEqual([]);
  expect(visitsAtReturn).toBe(load.served() + 1);
  expect(await server.waitForExit(10_000)).toBe(0);
  await server[Symbol.asyncDispose]();
});

test("SIGTERM drains the same way, and a second signal forces exit 70", async () => {
  const graceful = await startServer({ drainGrace: "300ms" });
  graceful.proc?.kill("SIGTERM");
  await waitFor("readiness to fail", async () => (await fetch(`${graceful.baseUrl}/readyz`)).status === 503, 2_000);
  expect(await graceful.waitForExit(10_000)).toBe(0);
  expect(graceful.stdout.includes('"event":"drained"')).toBe(true);
  await graceful[Symbol.asyncDispose]();

  const forced = await startServer({ drainGrace: "30s" });
  forced.proc?.kill("SIGTERM");
  await waitFor("readiness to fail", async () => (await fetch(`${forced.baseUrl}/readyz`)).status === 503, 2_000);
  forced.proc?.kill("SIGTERM");
  expect(await forced.waitForExit(10_000)).toBe(70);
  await forced[Symbol.asyncDispose]();
});

test("shortener drain with no node listening fails with a hint naming --ops-listen", async () => {
  const server = await startServer();
  const settings = server.settings;
  await server[Symbol.asyncDispose]();
  const result = await runCli(["drain", "--timeout", "2s", ...settings]);
  expect(result.exitCode).not.toBe(0);
  expect(result.stderr).toContain("(--ops-listen)");
});
