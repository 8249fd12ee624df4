/**
 * SIGTERM to the compiled binary under load: in-flight requests finish, every response received is a correct
 * redirect, every redirect served is counted in SQLite exactly once, and the process exits 0.
 */

import { Database } from "bun:sqlite";
import { expect, test } from "bun:test";
import { join } from "node:path";
import { startServer, waitFor } from "./support/binary";

const CLIENTS = 8;
// A request sent this long before the signal has reached the server: it must be served.
const SENT_BEFORE_SIGNAL_MS = 5;

interface Outcome {
  startedAt: number;
  status: number | null;
  error: string | null;
}

test("SIGTERM under load finishes in-flight requests, loses no counted visit and exits 0", async () => {
  const server = await startServer();
  const created = await server.api("/rest/v3/short-urls", {
    method: "POST",
    body: JSON.stringify({ longUrl: "https://example.com/drain" }),
  });
  const { shortCode } = (await created.json()) as { shortCode: string };

  // An in-flight create whose body is still arriving when the signal lands.
  const body = JSON.stringify({ longUrl: "https://example.com/in-flight", customSlug: "inflight" });
  const half = Math.floor(body.length / 2);
  let raw = "";
  const socket = await Bun.connect({
    hostname: "127.0.0.1",
    port: server.port,
    socket: {
      data(_socket, data) {
        raw += new TextDecoder().decode(data);
      },
    },
  });
  socket.write(
    `POST /rest/v3/short-urls HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nX-Api-Key: ${server.apiKey}\r\n` +
      `Content-Length: ${body.length}\r\nConnection: close\r\n\r\n${body.slice(0, half)}`,
  );

  const outcomes: Outcome[] = [];
  let running = true;
  const deadline = Date.now() + 20_000;
  const client = async () => {
    for (let i = 0; running && i < 50_000 && Date.now() < deadline; i++) {
      const outcome: Outcome = { startedAt: performance.now(), status: null, error: null };
      outcomes.push(outcome);
      try {
        const response = await fetch(`${server.baseUrl}/${shortCode}`, { redirect: "manual" });
        outcome.status = response.status;
        if (response.headers.get("location") !== "https://example.com/drain") outcome.error = "wrong location";
      } catch (error) {
        outcome.error = (error as { code?: string }).code ?? String(error);
        return; // the listener is gone
      }
    }
  };
  const clients = Array.from({ length: CLIENTS }, client);
  await waitFor("load to build up", () => outcomes.filter((o) => o.status === 302).length >= 500);

  const signalledAt = performance.now();
  server.proc?.kill("SIGTERM");
  await waitFor("readiness to fail or the listener to close", async () => {
    try {
      return (await fetch(`${server.baseUrl}/readyz`)).status === 503;
    } catch {
      return true;
    }
  });
  socket.write(body.slice(half));
  const exitCode = await server.waitForExit(20_000);
  running = false;
  await Promise.all(clients);
  await waitFor("the in-flight response", () => raw.includes("\r\n\r\n"), 5_000);

  expect(exitCode).toBe(0);
  expect(raw).toStartWith("HTTP/1.1 200");
  const served = outcomes.filter((o) => o.status !== null);
  expect(served.every((o) => o.status === 302 && o.error === null)).toBe(true);
  const sentBefore = outcomes.filter((o) => o.startedAt < signalledAt - SENT_BEFORE_SIGNAL_MS);
  expect(sentBefore.filter((o) => o.status !== 302)).toEqual([]);

  const db = new Database(join(server.dataDir, "shortener.db"), { readonly: true });
  const counted = db
    .query("SELECT coalesce(v.total, 0) AS n FROM short_urls s LEFT JOIN link_visits v ON v.short_url_id = s.id WHERE s.short_code = ?")
    .get(shortCode) as { n: number };
  const inflight = db.query("SELECT long_url AS url FROM short_urls WHERE short_code = 'inflight'").get() as { url: string } | null;
  db.close();
  expect(counted.n).toBe(served.length);
  expect(inflight?.url).toBe("https://example.com/in-flight");
  expect(server.stdout.includes('"event":"drained"')).toBe(true);
  await server[Symbol.asyncDispose]();
});
