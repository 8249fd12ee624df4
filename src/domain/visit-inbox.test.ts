import { Database } from "bun:sqlite";
import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { freePort, tempDir } from "../../test/support/binary";
import { S3Server } from "../../test/support/s3";
import { scratchDatabases } from "../../test/support/scratch-database";
import { writeTransaction } from "../storage/database";
import { ShipmentLedger } from "../storage/shipment-ledger";
import { type ShipmentLocation, ShipmentStore, shipmentName } from "../storage/shipment-store";
import { plainLinkRow, ShortUrlStore } from "../storage/short-url-store";
import { VisitStore } from "../storage/visit-store";
import { WebhookStore } from "../storage/webhook-store";
import type { Visit } from "./visit";
import { VisitBuffer } from "./visit-buffer";
import { VisitInbox } from "./visit-inbox";
import { VisitInboxThread } from "./visit-inbox-thread";
import { DEFAULT_PRIVACY, dayOf, VisitRecorder } from "./visit-recorder";
import { decodeShipment, encodeShipment, type ShippedVisit } from "./visit-shipment";
import { VisitShipper } from "./visit-shipper";
import { VisitSpillThread } from "./visit-spill-thread";
import { StandbyVisitBuffer, VisitSpool } from "./visit-spool";
import { sharedSalt } from "./visitor-salt";
import { visitEventOutbox } from "./webhooks-outbox";

const T0 = Date.UTC(2026, 11, 6, 10);
const databases = scratchDatabases("shortener-inbox-");
let s3: S3Server;
let prefixes = 0;

beforeAll(async () => {
  s3 = await S3Server.start();
}, 60_000);
afterAll(async () => {
  await s3?.[Symbol.asyncDispose]();
});
const threads: { stop(): Promise<void> }[] = [];
afterEach(async () => {
  await Promise.all(threads.splice(0).map((thread) => thread.stop()));
});

/** On the spill thread, a shipper on the event loop that would throw: the thread must have done every spill. */
const notOnTheLoop = {
  shipped() {
    throw new Error("a visit was shipped on the event loop");
  },
} as unknown as VisitShipper;

/** On the inbox's thread, a recorder on the event loop that would throw: the thread must have written every part. */
const notHere = {
  writeShipped() {
    throw new Error("a shipment was written on the event loop");
  },
} as unknown as VisitRecorder;

/** A spill thread with the default privacy settings, stopped after the test, not started yet. */
function newSpillThread(): VisitSpillThread {
  const thread = new VisitSpillThread({ privacy: DEFAULT_PRIVACY, geoipDb: null }, (message) => {
    throw new Error(`the spill thread failed: ${message}`);
  });
  threads.push(thread);
  return thread;
}

/** A started spill thread; null for spills on the event loop. */
async function spillThread(threaded: boolean): Promise<VisitSpillThread | null> {
  if (!threaded) return null;
  const thread = newSpillThread();
  await thread.start();
  return thread;
}

function location(prefix: string, endpoint = s3.endpoint): ShipmentLocation {
  const { key: _, ...store } = s3.leaseLocation("unused", "replica", endpoint);
  return { ...store, prefix };
}

/**
 * One database seen from both sides (the standby's copy is the primary's database): the primary's buffer and
 * recorder, a standby's buffer and spool, and the primary's inbox (spilling and taking on their threads when
 * `threaded`); shipments under a fresh prefix of the real bucket. A webhook wants `link.visited`: its outbox rows
 * show which visits raised events.
 */
async function setup(threaded: boolean) {
  const { db, path } = databases.open();
  const dir = tempDir("shortener-spool-");
  const links = new ShortUrlStore(db);
  const visitStore = new VisitStore(db);
  const recorder = new VisitRecorder(visitStore);
  const primary = new VisitBuffer(db, links, null);
  primary.addSink(recorder);
  const standby = new StandbyVisitBuffer(db, links, null, 10_000);
  const store = new ShipmentStore(location(`inbox${++prefixes}/standby-visits/`));
  const thread = await spillThread(threaded);
  const shipper = threaded ? notOnTheLoop : new VisitShipper(DEFAULT_PRIVACY, null);
  const spool = (bucket: ShipmentStore | null = store, spillDir = dir) =>
    new VisitSpool(spillDir, shipper, (day) => sharedSalt(visitStore, day), bucket, standby, thread);
  const webhookStore = new WebhookStore(db);
  webhookStore.insertWebhook({ name: null, url: "http://127.0.0.1:9/", secret: "s", events: "link.visited", created_at: T0 });
  const woken = { times: 0 };
  const outbox = visitEventOutbox(webhookStore, "http://s.test", DEFAULT_PRIVACY, () => woken.times++);
  const invalidated: string[] = [];
  const state = { writable: true };
  /** A primary's inbox (on its thread when `threaded`, started unless `started` is false), stopped after the test. */
  const newInbox = async (started = true) => {
    const thread = threaded
      ? new VisitInboxThread(
          { databasePath: path, baseUrl: "http://s.test", privacy: DEFAULT_PRIVACY },
          (part) => inbox.partTaken(part),
          (message) => {
            throw new Error(`the inbox thread failed: ${message}`);
          },
        )
      : null;
    const inbox: VisitInbox = new VisitInbox(
      {
        ...{ db, spool: dir, store, recorder: threaded ? notHere : recorder, visits: visitStore, links, ledger: new ShipmentLedger(db) },
        webhooks: outbox,
        webhooksEnqueued: () => woken.times++,
        writable: () => state.writable,
        taken: (changed) => invalidated.push(...changed.map((link) => link.shortCode)),
      },
      thread,
    );
    threads.push(inbox);
    if (started) await thread?.startOnce();
    return inbox;
  };
  const inbox = await newInbox();
  /** The links of the `link.visited` events stored, in order. */
  const sent = () =>
    db
      .query<{ link_id: number }, []>("SELECT link_id FROM webhook_outbox ORDER BY id")
      .all()
      .map((row) => row.link_id);
  const add = (code: string) => links.insert(plainLinkRow(code)) as number;
  const visit = (id: number | null, at: number, ip: string, bot = false): Visit => ({
    link: id === null ? null : { id, shortCode: `c${id}`, domain: "" },
    orphanType: id === null ? "regular_404" : null,
    at,
    bot,
    referer: "https://ref.example/",
    userAgent: "Mozilla/5.0",
    ip,
    visitedUrl: "http://s.test/x",
    redirectUrl: id === null ? null : "https://example.com/",
  });
  const hit = (buffer: VisitBuffer, v: Visit) => {
    if (v.link === null) buffer.captureOrphan(v);
    else {
      buffer.record(v.link.id, v.bot);
      buffer.capture(v);
    }
  };
  const day = (id: number) => db.query("SELECT total, bots, visitors FROM visit_days WHERE short_url_id = ?").get(id);
  const counters = (id: number) => db.query("SELECT total, bots FROM link_visits WHERE short_url_id = ?").get(id);
  return {
    db,
    path,
    dir,
    store,
    spool,
    inbox,
    newInbox,
    state,
    sent,
    woken,
    invalidated,
    primary,
    standby,
    add,
    visit,
    hit,
    day,
    counters,
  };
}

describe.each([
  ["spilled and taken on the event loop", false],
  ["spilled and taken on their threads", true],
])("a standby's visits shipped to the primary (real S3 server on loopback), %s", (_, threaded) => {
  test("reach the primary's database once, as its own flush writes them, the privacy settings applied on the standby", async () => {
    const { db, dir, store, spool, inbox, sent, woken, invalidated, primary, standby, add, visit, hit, day, counters } =
      await setup(threaded);
    const a = add("a");
    const b = add("b");
    // The primary counted one visitor today before it went down: the day's salt is in the copy.
    hit(primary, visit(a, T0, "203.0.113.7"));
    primary.flush();
    hit(standby, visit(a, T0 + 1000, "203.0.113.7")); // the same visitor, on the standby
    hit(standby, visit(a, T0 + 2000, "203.0.113.8"));
    hit(standby, visit(b, T0 + 3000, "198.51.100.4", true));
    hit(standby, visit(null, T0 + 4000, "198.51.100.5"));
    // Counted on their links (maxVisits holds on the standby), not written: its database is the primary's.
    expect(standby.pendingFor(a).total).toBe(2);
    const writer = spool();
    expect(await writer.spill()).toBe(4);
    expect(writer.waiting).toBe(1);
    const [name] = readdirSync(dir);
    // No address leaves the standby that the visits tables would not keep.
    const text = await Bun.file(join(dir, name as string)).text();
    expect(text).not.toContain("203.0.113.7");
    expect(text).toContain("203.0.113.0");
    expect(await writer.ship()).toBe(1);
    expect(writer.waiting).toBe(0);
    expect(readdirSync(dir)).toEqual([]);
    expect(await store.names()).toEqual([name as string]);

    expect(await inbox.take()).toBe(4);
    expect(inbox.visitsTaken).toBe(4);
    expect(day(a)).toEqual({ total: 3, bots: 0, visitors: 2 });
    expect(day(b)).toEqual({ total: 1, bots: 1, visitors: 1 });
    expect(counters(a)).toEqual({ total: 3, bots: 0 });
    expect(counters(b)).toEqual({ total: 1, bots: 1 });
    expect(db.query("SELECT total FROM orphan_visit_days WHERE orphan_type = 'regular_404'").get()).toEqual({ total: 1 });
    const rows = db.query("SELECT short_url_id, at, remote_addr FROM visits WHERE at > ? ORDER BY at").all(T0);
    expect(rows).toEqual([
      { short_url_id: a, at: T0 + 1000, remote_addr: "203.0.113.0" },
      { short_url_id: a, at: T0 + 2000, remote_addr: "203.0.113.0" },
      { short_url_id: b, at: T0 + 3000, remote_addr: "198.51.100.0" },
      { short_url_id: null, at: T0 + 4000, remote_addr: "198.51.100.0" },
    ]);
    // Each visit to a link raised its event, in the transaction, and the dispatcher heard of them.
    expect(sent()).toEqual([a, a, b]);
    expect(woken.times).toBeGreaterThan(0);
    expect(invalidated.sort()).toEqual(["c1", "c2"]);
    expect(await store.names()).toEqual([]);

    // The same shipment again (its removal was lost, or its spool file was put twice): seen, not counted.
    await store.put(name as string, text);
    expect(await inbox.take()).toBe(0);
    expect(day(a)).toEqual({ total: 3, bots: 0, visitors: 2 });
    expect(await store.names()).toEqual([]);
  });

  test("a primary down since before midnight: a visitor the standby served today and the primary counts again once back is one visitor", async () => {
    const { db, spool, inbox, primary, standby, add, visit, hit } = await setup(threaded);
    const a = add("a");
    // Yesterday the primary counted a visit (the copy holds yesterday's salt), then went down before midnight.
    hit(primary, visit(a, T0 - 86_400_000, "192.0.2.1"));
    primary.flush();
    hit(standby, visit(a, T0, "203.0.113.7"));
    hit(standby, visit(a, T0 + 1000, "203.0.113.8"));
    const writer = spool();
    expect(await writer.spill()).toBe(2);
    expect(await writer.ship()).toBe(1);
    // Back, the primary serves the first of those visitors again before it takes the standby's shipment.
    hit(primary, visit(a, T0 + 2000, "203.0.113.7"));
    primary.flush();
    expect(await inbox.take()).toBe(2);
    const today = db.query("SELECT total, visitors FROM visit_days WHERE short_url_id = ? AND day = ?").get(a, dayOf(T0));
    expect(today).toEqual({ total: 3, visitors: 2 });
  });

  test("a spool left in the data dir (a standby started as the primary) is taken from there; a deleted link's visits are dropped", async () => {
    const { db, dir, spool, inbox, add, visit, hit, day, standby } = await setup(threaded);
    const a = add("a");
    const b = add("b");
    hit(standby, visit(a, T0, "203.0.113.7"));
    hit(standby, visit(b, T0, "203.0.113.7"));
    const local = spool(null);
    expect(await local.spill()).toBe(2);
    // Without a bucket the file stays for this node to take once it is the primary.
    expect(await local.ship()).toBe(0);
    expect(readdirSync(dir)).toHaveLength(1);
    writeTransaction(db, () => db.run("DELETE FROM short_urls WHERE id = ?", [b]));
    expect(await inbox.take()).toBe(1);
    expect(day(a)).toEqual({ total: 1, bots: 0, visitors: 1 });
    expect(db.query("SELECT count(*) AS n FROM visits WHERE short_url_id = ?").get(b)).toEqual({ n: 0 });
    expect(readdirSync(dir)).toEqual([]);
  });

  test("a damaged shipment is left where it is and the rest are taken; a round without the bucket, or a node that may not write, takes none", async () => {
    const { dir, store, spool, inbox, state, add, visit, hit, day, standby } = await setup(threaded);
    const a = add("a");
    const damaged = shipmentName(T0 - 1);
    await store.put(damaged, '{"format":1,"visits":[{"link":{"id":1}}');
    const notText = shipmentName(T0 - 2);
    await store.put(notText, new Blob([new Uint8Array([0x7b, 0xff, 0xfe, 0x7d])]));
    hit(standby, visit(a, T0, "203.0.113.7"));
    const writer = spool();
    await writer.spill();
    await writer.ship();
    // A round that does not list the bucket (it is listed every 10 s while nothing comes) leaves what is there.
    expect(await inbox.take(false)).toBe(0);
    expect((await store.names()).length).toBe(3);
    state.writable = false;
    expect(await inbox.take()).toBe(0);
    expect((await store.names()).length).toBe(3);
    state.writable = true;
    expect(await inbox.take()).toBe(1);
    expect(await store.names()).toEqual([notText, damaged]);
    expect(await inbox.take()).toBe(0);
    expect(day(a)).toEqual({ total: 1, bots: 0, visitors: 1 });
    expect(readdirSync(dir)).toEqual([]);
  });

  test("a bucket that does not answer leaves the spool file, which ships once one does", async () => {
    const { dir, spool, add, visit, hit, standby, store } = await setup(threaded);
    const a = add("a");
    hit(standby, visit(a, T0, "203.0.113.7"));
    const unanswered = spool(new ShipmentStore(location("nowhere/", `http://127.0.0.1:${freePort()}`)));
    await unanswered.spill();
    await expect(unanswered.ship()).rejects.toThrow(/PUT s3:\/\/replica\/nowhere\//);
    expect(unanswered.waiting).toBe(1);
    const [name] = readdirSync(dir);
    expect(existsSync(join(dir, name as string))).toBe(true);
    expect(await spool().ship()).toBe(1);
    expect(await store.names()).toEqual([name as string]);
  });

  test("a spill that cannot write keeps its visits for the next one", async () => {
    const { dir, spool, add, visit, hit, standby } = await setup(threaded);
    const a = add("a");
    hit(standby, visit(a, T0, "203.0.113.7"));
    const file = join(dir, "not-a-directory");
    writeFileSync(file, "a file where the spool's directory would go");
    const blocked = spool(null, join(file, "visit-spool"));
    // Awaited first: bun's `expect(promise).rejects` does not let a worker's answer in while it waits.
    const refused = await blocked.spill().catch((error: Error) => error);
    expect(refused).toBeInstanceOf(Error);
    expect((refused as Error).message).toMatch(/ENOTDIR|not a directory/);
    expect(standby.held).toBe(1);
    expect(await spool(null).spill()).toBe(1);
  });

  test("a spill of many slices writes one file of every visit, and a second spill meanwhile writes none twice", async () => {
    const { dir, spool, add, visit, hit, standby } = await setup(threaded);
    const a = add("a");
    for (let i = 0; i < 2500; i++) hit(standby, visit(a, T0 + i, `203.0.113.${i % 250}`));
    const writer = spool(null);
    const first = writer.spill(T0);
    // More visits while the first spill runs; a second spill asked for meanwhile: each visit lands in one file, once.
    for (let i = 0; i < 10; i++) hit(standby, visit(a, T0 + 5000 + i, "198.51.100.1"));
    const spilled = await Promise.all([first, writer.spill(T0 + 1)]);
    expect(spilled[0] + spilled[1]).toBe(2510);
    const files = readdirSync(dir).sort();
    const ats = files.flatMap((name) => decodeShipment(readFileSync(join(dir, name), "utf8")).map((v) => v.at));
    expect(ats.toSorted((x, y) => x - y)).toEqual([
      ...Array.from({ length: 2500 }, (_, i) => T0 + i),
      ...Array.from({ length: 10 }, (_, i) => T0 + 5000 + i),
    ]);
    expect(standby.held).toBe(0);
    // Counted on the link all along: maxVisits holds on the standby.
    expect(standby.pendingFor(a).total).toBe(2510);
  });

  test("a shipment longer than a part is written a part a transaction, each once", async () => {
    const { db, store, inbox, add, day, counters } = await setup(threaded);
    const a = add("a");
    const name = shipmentName(T0);
    await store.put(name, encodeShipment(shippedVisits(a, 2500)));
    // As after a crash between the first part's commit and the rest: that part is in the ledger.
    writeTransaction(db, () => new ShipmentLedger(db).add(`${name}#0`, 1000));
    expect(await inbox.take()).toBe(1500);
    expect(counters(a)).toEqual({ total: 1500, bots: 0 });
    expect(day(a)).toEqual({ total: 1500, bots: 0, visitors: 7 });
    expect(await store.names()).toEqual([]);
  });

  test("a stop while a take waits for the write lock ends it at once; the next primary takes the whole shipment, each visit once", async () => {
    const { db, path, dir, inbox, newInbox, add, day, counters } = await setup(threaded);
    const a = add("a");
    const name = shipmentName(T0);
    writeFileSync(join(dir, name), encodeShipment(shippedVisits(a, 2500)));
    // Another process holds the write lock (a `shortener import`, say): the take waits for it, up to 5 s a part.
    const other = databases.closeLater(new Database(path));
    other.exec("BEGIN IMMEDIATE");
    const taking = inbox.take().catch((error: Error) => error);
    // Ended without its lock wait's timeout, which would have rejected the take with SQLITE_BUSY.
    await inbox.stop();
    expect(await taking).toBe(0);
    expect(readdirSync(dir)).toEqual([name]);
    other.exec("COMMIT");
    expect(counters(a)).toBeNull();
    const next = await newInbox();
    expect(await next.take()).toBe(2500);
    expect(counters(a)).toEqual({ total: 2500, bots: 0 });
    expect(day(a)).toEqual({ total: 2500, bots: 0, visitors: 7 });
    expect(db.query("SELECT count(*) AS n FROM visits WHERE short_url_id = ?").get(a)).toEqual({ n: 2500 });
    expect(readdirSync(dir)).toEqual([]);
  });
});

describe("threads started with their first work (real S3 server on loopback)", () => {
  test("a standby's spill thread starts with the first spill that has visits, which it writes", async () => {
    const { dir, add, visit, hit, standby } = await setup(true);
    const a = add("a");
    // Spills on the event loop would throw (notOnTheLoop): the thread must write them.
    const spool = new VisitSpool(dir, notOnTheLoop, () => null, null, standby, newSpillThread());
    // No traffic, nothing to spill: no thread (a standby Caddy sends nothing to does not hold one).
    expect(await spool.spill()).toBe(0);
    expect(spool.threadRunning).toBe(false);
    hit(standby, visit(a, T0, "203.0.113.7"));
    hit(standby, visit(a, T0 + 1, "203.0.113.8"));
    expect(await spool.spill()).toBe(2);
    expect(spool.threadRunning).toBe(true);
    expect(readdirSync(dir)).toHaveLength(1);
    expect(spool.waiting).toBe(1);
  });

  test("the primary's inbox thread starts with the first shipment found, which it takes", async () => {
    const { dir, newInbox, add, counters } = await setup(true);
    const inbox = await newInbox(false);
    const a = add("a");
    // Nothing shipped: no thread (a primary no standby ships to does not hold one).
    expect(await inbox.take()).toBe(0);
    expect(inbox.threadRunning).toBe(false);
    writeFileSync(join(dir, shipmentName(T0)), encodeShipment(shippedVisits(a, 3)));
    // Taken on the thread: the recorder on the event loop would have thrown.
    expect(await inbox.take()).toBe(3);
    expect(inbox.threadRunning).toBe(true);
    expect(counters(a)).toEqual({ total: 3, bots: 0 });
    expect(readdirSync(dir)).toEqual([]);
  });

  test("a stop while the inbox thread starts ends the take with the shipment left for the next primary", async () => {
    const { dir, newInbox, add, counters } = await setup(true);
    const inbox = await newInbox(false);
    const a = add("a");
    const name = shipmentName(T0);
    writeFileSync(join(dir, name), encodeShipment(shippedVisits(a, 3)));
    const taking = inbox.take();
    await inbox.stop();
    expect(await taking).toBe(0);
    expect(inbox.threadRunning).toBe(false);
    expect(readdirSync(dir)).toEqual([name]);
    expect(counters(a)).toBeNull();
    const next = await newInbox();
    expect(await next.take()).toBe(3);
    expect(counters(a)).toEqual({ total: 3, bots: 0 });
  });
});

/** `count` visits to link `id`, a millisecond apart from T0, by seven visitors. */
function shippedVisits(id: number, count: number): ShippedVisit[] {
  return Array.from({ length: count }, (_, i) => ({
    link: { id, shortCode: "a", domain: "" },
    orphanType: null,
    at: T0 + i,
    bot: false,
    referer: null,
    userAgent: null,
    remoteAddr: null,
    visitedUrl: "http://s.test/a",
    redirectUrl: "https://example.com/",
    location: null,
    visitor: (i % 7).toString(16).padStart(32, "0"),
  }));
}
