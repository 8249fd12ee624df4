/**
 * Webhook costs, in process on a real SQLite file (synchronous=FULL, WAL), with a Bun.serve receiver on loopback:
 *   1. what the outbox adds to a visit flush of VISITS visits when no webhook exists (the common case), and when
 *      one webhook takes link.visited (one outbox row per visit);
 *   2. how fast the dispatcher delivers EVENTS events over LINKS links to a receiver answering 204 at once, and the
 *      longest event-loop stall meanwhile (the receiver shares the process, so this is an upper bound).
 * Medians of ROUNDS rounds. Run: node_modules/.bin/bun bench/webhooks.ts
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Visit } from "../src/domain/visit-buffer";
import { WebhookDispatcher } from "../src/domain/webhooks-dispatcher";
import { WebhookOutbox } from "../src/domain/webhooks-outbox";
import { generateSecret } from "../src/domain/webhooks-signature";
import { openDatabase, relaxedWriteTransaction } from "../src/storage/database";
import { WebhookStore } from "../src/storage/webhook-store";

const VISITS = Number(process.env.VISITS ?? 1000);
const EVENTS = Number(process.env.EVENTS ?? 5000);
const LINKS = Number(process.env.LINKS ?? 100);
const ROUNDS = Number(process.env.ROUNDS ?? 9);

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;

const visits: Visit[] = Array.from({ length: VISITS }, (_, i) => ({
  link: { id: 1 + (i % LINKS), shortCode: `c${i % LINKS}`, domain: "" },
  orphanType: null,
  at: Date.now(),
  bot: false,
  referer: "https://ref.example/",
  userAgent: "Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0",
  ip: null,
  visitedUrl: `https://s.example/c${i % LINKS}`,
  redirectUrl: "https://example.com/",
}));

const dir = mkdtempSync(join(tmpdir(), "bench-webhooks-"));
const receiver = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Response(null, { status: 204 }) });
try {
  // As serve opens it: checkpoints are Litestream's or a worker thread's, never inside a commit on the event loop.
  const db = openDatabase(join(dir, "shortener.db"), { noAutomaticCheckpoints: true });
  const store = new WebhookStore(db);
  const outbox = new WebhookOutbox(store, { linkJson: (s) => s, shortUrlOf: (code) => `https://s.example/${code}` });
  const flushMs = () => {
    const started = performance.now();
    relaxedWriteTransaction(db, () => outbox.write(visits));
    return performance.now() - started;
  };

  const none = median(Array.from({ length: ROUNDS }, flushMs));
  store.insertWebhook({
    name: null,
    url: `http://127.0.0.1:${receiver.port}/`,
    secret: generateSecret(),
    events: "link.visited",
    created_at: 0,
  });
  outbox.invalidate();
  const one = median(Array.from({ length: ROUNDS }, flushMs));
  console.log(
    `outbox in a flush of ${VISITS} visits: no webhook ${(none * 1000).toFixed(0)} µs; one webhook on link.visited ${one.toFixed(2)} ms (${((one * 1000) / VISITS).toFixed(1)} µs a visit)`,
  );

  // Deliver what is queued now, then EVENTS more.
  db.exec("DELETE FROM webhook_outbox");
  const batch = visits.slice(0, Math.min(VISITS, EVENTS));
  for (let queued = 0; queued < EVENTS; queued += batch.length) relaxedWriteTransaction(db, () => outbox.write(batch));
  const backlog = store.backlog();
  const dispatcher = new WebhookDispatcher(store, {
    maxAttempts: 3,
    backoff: { baseMs: 100, maxMs: 1000 },
    timeoutMs: 5000,
    userAgent: "bench",
  });
  // The event loop's longest stall while delivering: what a redirect could wait behind the dispatcher.
  let maxLagMs = 0;
  let last = performance.now();
  const probe = setInterval(() => {
    const now = performance.now();
    maxLagMs = Math.max(maxLagMs, now - last - 1);
    last = now;
  }, 1);
  // The same probe with nothing to do first: the machine's own stalls (other processes, the scheduler).
  await Bun.sleep(1000);
  const idleLagMs = maxLagMs;
  maxLagMs = 0;
  const started = performance.now();
  dispatcher.start();
  for (let i = 0; i < 600_000 && store.backlog() > 0; i++) await Bun.sleep(10);
  const seconds = (performance.now() - started) / 1000;
  clearInterval(probe);
  await dispatcher.stop();
  console.log(
    `delivered ${backlog} events over ${LINKS} links in ${seconds.toFixed(2)} s: ${(backlog / seconds).toFixed(0)} events/s ` +
      `(16 in flight, one per link); longest event-loop stall ${maxLagMs.toFixed(1)} ms ` +
      `(${idleLagMs.toFixed(1)} ms idle over 1 s; the receiver shares the process)`,
  );
  db.close();
} finally {
  receiver.stop(true);
  rmSync(dir, { recursive: true, force: true });
}
