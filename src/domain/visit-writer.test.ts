import { Database } from "bun:sqlite";
import { afterEach, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { waitFor } from "../../test/support/binary";
import { scratchDatabases } from "../../test/support/scratch-database";
import { schedulingPolicy } from "../lib/thread-priority";
import { type CheckpointResult, writeTransactionIfFree } from "../storage/database";
import { plainLinkRow, ShortUrlStore } from "../storage/short-url-store";
import { VisitStore } from "../storage/visit-store";
import { WebhookStore } from "../storage/webhook-store";
import type { Visit, VisitSink } from "./visit";
import { VisitBuffer } from "./visit-buffer";
import { DEFAULT_PRIVACY, VisitRecorder } from "./visit-recorder";
import { VisitWriter } from "./visit-writer";

const databases = scratchDatabases("visit-writer-");
const writers: VisitWriter[] = [];
afterEach(async () => {
  for (const writer of writers.splice(0)) await writer.stop();
});

const T0 = Date.UTC(2026, 11, 1, 10);
const SCHED_IDLE = 5;

async function setup(checkpointEveryMs: number | null = null) {
  const { db, path } = databases.open();
  const store = new ShortUrlStore(db);
  const visits = new VisitBuffer(db, store);
  // This thread's sinks, for the final flush(): the writer's thread has its own.
  visits.addSink(new VisitRecorder(new VisitStore(db)));
  const heard: Visit[][] = [];
  let listening = true;
  const listener: VisitSink = {
    write: () => {},
    committed: (batch) => heard.push([...batch]),
    wantsCommitted: () => listening,
  };
  visits.addSink(listener);
  let enqueued = 0;
  const failures: string[] = [];
  const checkpoints: CheckpointResult[] = [];
  const writer = new VisitWriter(
    { path, walSizeLimitBytes: undefined, privacy: DEFAULT_PRIVACY, geoipDb: null, baseUrl: "http://s.test", checkpointEveryMs },
    {
      enqueued: () => enqueued++,
      checkpointed: (result) => checkpoints.push(result),
      checkpointFailed: (message) => failures.push(message),
      failed: (message) => failures.push(message),
    },
  );
  writers.push(writer);
  await writer.start();
  visits.useWriter(writer);
  const add = (code: string) => store.insert(plainLinkRow(code)) as number;
  const hit = (id: number | null, at: number, ip = "203.0.113.7", bot = false) => {
    const visit: Visit = {
      link: id === null ? null : { id, shortCode: `c${id}`, domain: "" },
      orphanType: id === null ? "regular_404" : null,
      at,
      bot,
      referer: "https://ref.example/ä",
      userAgent: bot ? "curl/8.0" : "Mozilla/5.0",
      ip,
      visitedUrl: "http://s.test/x",
      redirectUrl: id === null ? null : "https://example.com/",
    };
    if (id === null) visits.captureOrphan(visit);
    else {
      visits.record(id, bot);
      visits.capture(visit);
    }
  };
  const count = (sql: string) => (db.query(sql).get() as { n: number }).n;
  return {
    db,
    path,
    store,
    visits,
    writer,
    add,
    hit,
    count,
    heard,
    failures,
    checkpoints,
    enqueued: () => enqueued,
    stopListening: () => {
      listening = false;
    },
  };
}

describe("VisitWriter", () => {
  test("writes a flush's chunks on its own thread, in SCHED_IDLE: counters, raw rows and roll-ups as this thread would", async () => {
    const { visits, writer, add, hit, count, store } = await setup();
    const a = add("a");
    const b = add("b");
    for (let i = 0; i < 5; i++) hit(a, T0 + i, `203.0.113.${i}`, i === 4);
    for (let i = 0; i < 3; i++) hit(b, T0 + i);
    hit(null, T0);
    // Chunks of at most 2 visits: several round trips, a link split across chunks.
    expect(await visits.flushInChunks(2)).toBe(9);
    expect(visits.depth).toBe(0);
    expect(writer.commits).toBeGreaterThanOrEqual(5);
    expect(visits.commits).toBe(writer.commits);
    expect(store.findById(a)).toMatchObject({ visits_total: 5, visits_bots: 1 });
    expect(store.findById(b)).toMatchObject({ visits_total: 3, visits_bots: 0 });
    expect(count("SELECT count(*) AS n FROM visits")).toBe(9);
    expect(count("SELECT count(*) AS n FROM visits WHERE orphan_type = 'regular_404'")).toBe(1);
    expect(count(`SELECT visitors AS n FROM visit_days WHERE short_url_id = ${a}`)).toBe(5);
    expect(count(`SELECT visitors AS n FROM visit_days WHERE short_url_id = ${b}`)).toBe(1);
    // Strings survive the trip through the records' bytes.
    expect(count("SELECT count(*) AS n FROM visits WHERE referer = 'https://ref.example/ä'")).toBe(9);
    expect(writer.threadId).not.toBeNull();
    expect(await schedulingPolicy(writer.threadId as number)).toBe(SCHED_IDLE);
    expect(await schedulingPolicy(process.pid)).toBe(0);
  });

  test("sinks that listen hear of each committed chunk's visits here; the rest ran on the writer's thread", async () => {
    const { visits, add, hit, heard, stopListening } = await setup();
    const a = add("a");
    hit(a, T0);
    hit(a, T0 + 1);
    hit(null, T0 + 2);
    await visits.flushInChunks(1000);
    expect(heard.flat().map((v) => [v.link?.id ?? null, v.at])).toEqual([
      [a, T0],
      [a, T0 + 1],
      [null, T0 + 2],
    ]);
    stopListening();
    hit(a, T0 + 3);
    await visits.flushInChunks(1000);
    expect(heard.flat()).toHaveLength(3);
  });

  test("stores link.visited webhook events and says so, for the dispatcher", async () => {
    const { db, visits, add, hit, count, enqueued } = await setup();
    new WebhookStore(db).insertWebhook({ name: null, url: "http://127.0.0.1:9/", secret: "s", events: "link.visited", created_at: T0 });
    const a = add("a");
    hit(a, T0);
    hit(a, T0 + 1);
    await visits.flushInChunks(1000);
    expect(count("SELECT count(*) AS n FROM webhook_outbox WHERE event_type = 'link.visited'")).toBe(2);
    expect(enqueued()).toBe(1);
  });

  test("a link deleted here leaves its domain's roll-up, though its buffered visits are written after", async () => {
    const { db, visits, writer, add, hit, count, store } = await setup();
    const a = add("a");
    const b = add("b");
    hit(a, T0);
    hit(b, T0);
    // As a deletion's transaction tells the link listeners.
    writer.inTransaction({ type: "link.deleted", shortUrl: { id: a } as never, at: T0 });
    store.delete(a);
    await visits.flushInChunks(1000);
    expect(count("SELECT coalesce(sum(total), 0) AS n FROM domain_visit_days")).toBe(1);
    expect(db.query("SELECT count(*) AS n FROM visits").get()).toEqual({ n: 2 });
  });

  test("gets the write lock from this thread's own writes, though they hold it nearly all the time", async () => {
    const { db, visits, add, hit, store } = await setup();
    const a = add("a");
    for (let i = 0; i < 100; i++) hit(a, T0 + i);
    // As link writes do under load: the lock is held through each commit's wait and let go only between tasks.
    const pause = new Int32Array(new SharedArrayBuffer(4));
    let holding = true;
    let held = 0;
    const hold = () => {
      if (!holding || held++ > 5_000) return;
      // Through the helper every link write goes through (GroupCommit), which notes when this thread last wrote; busy
      // while the writer holds the lock, and tried again on the next turn.
      writeTransactionIfFree(db, () => {
        db.run("UPDATE short_urls SET title = ? WHERE id = ?", [`t${held}`, a]);
        Atomics.wait(pause, 0, 0, 2);
      });
      setImmediate(hold);
    };
    hold();
    try {
      // The run fails with SQLITE_BUSY if the chunk has not got the lock within a second.
      expect(await visits.flushInChunks(1000, 1000)).toBe(100);
    } finally {
      holding = false;
    }
    expect(held).toBeGreaterThan(1);
    expect(store.findById(a)?.visits_total).toBe(100);
  });

  test("makes no room for another process's write lock: the event loop keeps its CPU, however late the run", async () => {
    const { path, visits, writer, add, hit, store } = await setup();
    const a = add("a");
    for (let i = 0; i < 100; i++) hit(a, T0 + i);
    // Another connection, as Litestream's or the other colour's would, holds the lock; this thread wrote nothing.
    const other = new Database(path);
    try {
      other.run("BEGIN IMMEDIATE");
      // Urgent from the start (urgentAfterMs 0): a run that is late because of someone else's lock makes no room either.
      const run = visits.flushInChunks(1000, 5000, 0);
      await waitFor("the writer to wait for the lock", () => writer.waitingForLock, 5_000, 1);
      // Time taken from this thread over 400 ms: the gaps between ticks beyond half a millisecond. Pausing 1 ms in
      // every 2 for the writer, it lost ~200 ms.
      let blocked = 0;
      let last = performance.now();
      const until = last + 400;
      for (let ticks = 0; ticks < 10_000_000 && last < until; ticks++) {
        await new Promise((resolve) => setImmediate(resolve));
        const now = performance.now();
        if (now - last > 0.5) blocked += now - last;
        last = now;
      }
      other.run("COMMIT");
      expect(await run).toBe(100);
      expect(blocked).toBeLessThan(60);
    } finally {
      if (other.inTransaction) other.run("ROLLBACK");
      other.close();
    }
    expect(store.findById(a)?.visits_total).toBe(100);
  });

  test("a chunk waiting for the lock while a link is deleted hears of the deletion before it writes", async () => {
    const { db, visits, writer, add, hit, count, store } = await setup();
    const a = add("a");
    const b = add("b");
    hit(a, T0);
    hit(b, T0);
    db.run("BEGIN IMMEDIATE");
    const run = visits.flushInChunks(1000, 5000);
    await waitFor("the writer to wait for the lock", () => writer.waitingForLock, 5_000, 1);
    writer.inTransaction({ type: "link.deleted", shortUrl: { id: a } as never, at: T0 });
    store.delete(a);
    db.run("COMMIT");
    expect(await run).toBe(2);
    // Only b's day is left in its domain's roll-up.
    expect(count("SELECT coalesce(sum(total), 0) AS n FROM domain_visit_days")).toBe(1);
  });

  test("checkpoints right after a chunk when one is due, so the whole WAL is copied and starts over", async () => {
    const { db, visits, add, hit, checkpoints, failures } = await setup(0);
    const a = add("a");
    for (let round = 1; round <= 3; round++) {
      for (let i = 0; i < 200; i++) hit(a, T0 + i);
      expect(await visits.flushInChunks(1000)).toBe(200);
      await waitFor("the checkpoint after the chunk", () => checkpoints.length >= round || failures.length > 0, 5_000, 1);
    }
    expect(failures).toEqual([]);
    // Nothing else wrote meanwhile: each copied every frame, and each found only its own chunk's frames in the WAL.
    for (const result of checkpoints) expect(result.checkpointed).toBe(result.log);
    const [first, ...later] = checkpoints.map((result) => result.log);
    expect(first).toBeGreaterThan(0);
    for (const log of later) expect(log).toBeLessThan(first as number);
    expect(db.query("SELECT total AS n FROM link_visits").get()).toEqual({ n: 600 });
  });

  test("runs no checkpoint when it owns none, nor before one is due", async () => {
    const none = await setup(null);
    const due = await setup(60_000);
    for (const { visits, writer, add, hit } of [none, due]) {
      const a = add("a");
      for (let i = 0; i < 50; i++) hit(a, T0 + i);
      expect(await visits.flushInChunks(1000)).toBe(50);
      // The thread's "stopped" comes after any checkpoint's result (its messages arrive in order).
      await writer.stop();
    }
    expect([none.checkpoints, due.checkpoints, none.failures, due.failures]).toEqual([[], [], [], []]);
  });

  test("the final flush on this thread waits for the writer's run, and writes the rest once", async () => {
    const { visits, add, hit, store } = await setup();
    const a = add("a");
    for (let i = 0; i < 50; i++) hit(a, T0 + i);
    const run = visits.flushInChunks(10);
    expect(() => visits.flush()).toThrow("await idle() first");
    for (let i = 50; i < 60; i++) hit(a, T0 + i);
    await visits.idle();
    expect(await run).toBeGreaterThanOrEqual(50);
    visits.flush();
    expect(visits.depth).toBe(0);
    expect(store.findById(a)?.visits_total).toBe(60);
  });

  /** test/support/saturated-writer.ts pinned to one CPU: what it wrote, stored and the writer's scheduling policy. */
  async function saturated(visits: number, mode: "spin" | "link-writes"): Promise<unknown> {
    const dir = mkdtempSync(join(tmpdir(), "saturated-writer-"));
    try {
      const fixture = resolve(import.meta.dir, "../../test/support/saturated-writer.ts");
      const proc = Bun.spawn(["taskset", "-c", "0", process.execPath, fixture, dir, String(visits), mode], {
        stdout: "pipe",
        stderr: "pipe",
      });
      const timer = setTimeout(() => proc.kill("SIGKILL"), 60_000);
      const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
      clearTimeout(timer);
      expect({ code, err }).toEqual({ code: 0, err: "" });
      return JSON.parse(out);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }

  test("gets the CPU from an event loop that never idles, and so keeps up under saturation", async () => {
    // On one CPU, a SCHED_IDLE thread runs only when this thread gives way: the fixture's loop never does by itself.
    expect(await saturated(20_000, "spin")).toMatchObject({ written: 20_000, stored: 20_000, policy: SCHED_IDLE });
  }, 70_000);

  test("on one CPU, gets the write lock from link writes that hold it through each commit's wait", async () => {
    // The writer runs only while the loop waits inside its transaction, lock held: the loop must make room outside it.
    expect(await saturated(5_000, "link-writes")).toMatchObject({ written: 5_000, stored: 5_000, policy: SCHED_IDLE });
  }, 70_000);
});
