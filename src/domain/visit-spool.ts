/**
 * A standby's visits on their way to the primary (domain/visit-shipment.ts). Its visit buffer holds each visit's
 * details; every flush interval `spill` writes what it holds to one file in `<data-dir>/visit-spool`, durably, with
 * the privacy settings applied; `ship` puts each file in the replica's bucket and removes it once the
 * bucket has it. A file the bucket did not take stays, and is shipped later; on a node started as the primary, the
 * inbox takes the files this node left as a standby (promotion) straight into its database.
 */

import type { Database } from "bun:sqlite";
import { mkdirSync, readdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import type { Tracer } from "@opentelemetry/api";
import { writeFileAtomicAsync } from "../lib/atomic-file";
import { SHIPMENT_NAME, type ShipmentStore, shipmentName } from "../storage/shipment-store";
import type { ShortUrlStore } from "../storage/short-url-store";
import type { Visit, VisitedLink } from "./visit";
import { VisitBuffer } from "./visit-buffer";
import { heldBytesLimit, VisitLog } from "./visit-log";
import { dayOf } from "./visit-recorder";
import { encodeShipmentItems } from "./visit-shipment";
import type { VisitShipper } from "./visit-shipper";
import type { VisitSpillThread } from "./visit-spill-thread";
import { randomSalt } from "./visitor-salt";

/** Visits a spill reads and encodes between two pauses, on the event loop: ~2.5 ms of it on the test VM. */
const SPILL_SLICE = 1000;
/**
 * Visits whose records a spill copies out for its thread between two pauses (at saturation on the test VM, the longest
 * of a spill's slices of 2 000 took 0.8-4.2 ms).
 */
const THREAD_SLICE = 1000;

/** `work` on `count` items, `slice` at a time, pausing as long as each took (at least 1 ms) between them. */
async function sliced(count: number, slice: number, work: (from: number, n: number) => void): Promise<void> {
  for (let from = 0; from < count; from += slice) {
    const started = performance.now();
    work(from, Math.min(slice, count - from));
    if (from + slice < count) await Bun.sleep(Math.max(1, performance.now() - started));
  }
}

/** The spool's directory in a data dir. */
export function spoolDir(dataDir: string): string {
  return join(dataDir, "visit-spool");
}

/** The shipments in a spool directory, oldest first (none when it does not exist). */
export function spooled(dir: string): string[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw error;
  }
  return names.filter((name) => SHIPMENT_NAME.test(name)).sort();
}

/**
 * A standby's visit buffer: it counts visits on their links (a link's maxVisits holds on the standby) and keeps their
 * details for its spool, as records in a visit log (bytes the collector never sees: a second's visits held as objects
 * outlived young collections, and the standby did 0.36 of the reference where it did 0.58 without them).
 */
export class StandbyVisitBuffer extends VisitBuffer {
  readonly #log = new VisitLog();
  #refs: number[] = [];
  #links: (VisitedLink | null)[] = [];
  #dropped = 0;
  readonly #limit: number;

  constructor(db: Database, shortUrls: ShortUrlStore, tracer: Tracer | null, limit: number) {
    super(db, shortUrls, tracer, limit);
    this.#limit = limit;
  }

  override capture(visit: Visit): void {
    if (this.#refs.length >= this.#limit || this.#log.heldBytes >= heldBytesLimit(this.#limit)) {
      this.#dropped++;
      return;
    }
    this.#refs.push(this.#log.append(visit));
    this.#links.push(visit.link);
  }

  override captureOrphan(visit: Visit): void {
    this.capture(visit);
  }

  /** Visits whose details are held, oldest first. */
  get held(): number {
    return this.#refs.length;
  }

  /** The held visits `from` to `from + count` (fewer at the end), as objects; they stay held until `release`. */
  heldVisits(from: number, count: number): Visit[] {
    const end = Math.min(this.#refs.length, from + count);
    const visits: Visit[] = [];
    for (let i = from; i < end; i++) visits.push(this.#log.read(this.#refs[i] as number, this.#links[i] as VisitedLink | null));
    return visits;
  }

  /**
   * Adds the held visits `from` to `from + count` to a spill for its thread: their records copied out, each one's
   * link (an index in the spill's links) and day.
   */
  copyOut(from: number, count: number, spill: SpillParts): void {
    const end = Math.min(this.#refs.length, from + count);
    spill.records.push(this.#log.copyOut(this.#refs.slice(from, end)));
    const added: [number, string, string][] = [];
    for (let i = from; i < end; i++) {
      const link = this.#links[i] as VisitedLink | null;
      let index = link === null ? -1 : (spill.linkIndex.get(link.id) ?? -1);
      if (link !== null && index < 0) {
        index = spill.linkIndex.size;
        spill.linkIndex.set(link.id, index);
        added.push([link.id, link.shortCode, link.domain]);
      }
      spill.linkOf[i] = index;
      spill.days.add(dayOf(this.#log.at(this.#refs[i] as number)));
    }
    spill.links.push(JSON.stringify(added));
  }

  /** Forgets the first `count` held visits (they are in a spool file). */
  release(count: number): void {
    for (let i = 0; i < count; i++) this.#log.release(this.#refs[i] as number);
    this.#refs = this.#refs.slice(count);
    this.#links = this.#links.slice(count);
  }

  /** Visits whose details were not kept: more than the limit came between two spills. */
  get dropped(): number {
    return this.#dropped;
  }
}

/** A spill's visits as StandbyVisitBuffer.copyOut gathers them for the spill thread. */
export interface SpillParts {
  records: Uint8Array[];
  /** Per held visit: its link's index in the spill's links (in the order `links` adds them), or -1 (an orphan visit). */
  linkOf: Int32Array;
  /** Each slice's new links, `[id, shortCode, domain]` each, as JSON. */
  links: string[];
  linkIndex: Map<number, number>;
  days: Set<number>;
}

export class VisitSpool {
  /** This node's own salt of a day the copy holds no salt of the chain for (a primary that never counted a visit). */
  readonly #salts = new Map<number, Uint8Array>();
  #waiting = 0;
  #spilling: Promise<number> = Promise.resolve(0);

  constructor(
    readonly dir: string,
    private readonly shipper: VisitShipper,
    /** The day's salt as the copy (the primary's database) has it or will (domain/visitor-salt.ts), or null. */
    private readonly copySalt: (day: number) => Uint8Array | null,
    /** The bucket; null when the replica is not on S3 (the files then wait for this node to start as the primary). */
    private readonly store: ShipmentStore | null,
    private readonly buffer: StandbyVisitBuffer,
    /** Where spills are worked out and written, started with the first; on the event loop if it cannot run. */
    private readonly thread: VisitSpillThread | null = null,
  ) {
    try {
      this.#waiting = spooled(dir).length;
    } catch {
      // Not readable now: the first spill says why; ship() counts again.
    }
  }

  /** Visits held for the next spill. */
  get held(): number {
    return this.buffer.held;
  }

  /** Spool files not yet in the bucket. */
  get waiting(): number {
    return this.#waiting;
  }

  /** Whether spills run on the thread now. */
  get threadRunning(): boolean {
    return this.thread?.usable ?? false;
  }

  /** Stops the spill thread, after the spill under way. */
  async stop(): Promise<void> {
    await this.#spilling;
    await this.thread?.stop();
  }

  /**
   * Writes the visits the buffer holds as one spool file, durably; returns how many. On failure they stay held, for
   * the next spill. With the spill thread running, this thread only copies their records out (THREAD_SLICE at a
   * time) and looks up the days' salts; without it, it also ships and encodes them (SPILL_SLICE at a time) and writes
   * the file.
   * Either way it pauses as long as each slice took between them (at least 1 ms): a redirect waits behind one slice
   * at most.
   */
  spill(now = Date.now()): Promise<number> {
    // One at a time: a drain's last spill waits for the timer's, then writes what came since.
    const run = this.#spilling.then(async () => {
      if (this.buffer.held === 0) return 0;
      // The thread starts with the first visits to spill: a standby no traffic reaches (Caddy's `lb_policy first`
      // keeps it so) does not hold its ~4.5 MiB.
      await this.thread?.startOnce();
      return this.thread?.usable === true ? this.#spillOnThread(this.thread, now) : this.#spill(now);
    });
    this.#spilling = run.catch(() => 0);
    return run;
  }

  async #spillOnThread(thread: VisitSpillThread, now: number): Promise<number> {
    const count = this.buffer.held;
    if (count === 0) return 0;
    const parts: SpillParts = { records: [], linkOf: new Int32Array(count), links: [], linkIndex: new Map(), days: new Set() };
    await sliced(count, THREAD_SLICE, (from, n) => this.buffer.copyOut(from, n, parts));
    const salts = this.#daySalts();
    const reply = await thread.spill({
      op: "spill",
      path: join(this.dir, shipmentName(now)),
      records: parts.records,
      linkOf: parts.linkOf,
      links: parts.links,
      salts: [...parts.days].map((day) => [day, salts(day)]),
    });
    if (reply.op === "failed") throw Object.assign(new Error(reply.message), { code: reply.code });
    this.buffer.release(count);
    this.#waiting++;
    return count;
  }

  async #spill(now: number): Promise<number> {
    const count = this.buffer.held;
    if (count === 0) return 0;
    const items: string[] = [];
    const saltOf = this.#daySalts();
    await sliced(count, SPILL_SLICE, (from, n) => {
      for (const visit of this.buffer.heldVisits(from, n)) items.push(JSON.stringify(this.shipper.shipped(visit, saltOf(dayOf(visit.at)))));
    });
    mkdirSync(this.dir, { recursive: true, mode: 0o750 });
    await writeFileAtomicAsync(join(this.dir, shipmentName(now)), encodeShipmentItems(items));
    this.buffer.release(count);
    this.#waiting++;
    return count;
  }

  /**
   * The salt of a day, each looked up once a spill: a query on the standby's copy (no page cache) for each visit
   * cost more.
   */
  #daySalts(): (day: number) => Uint8Array {
    const salts = new Map<number, Uint8Array>();
    return (day) => {
      let salt = salts.get(day);
      if (salt === undefined) {
        salt = this.#saltOf(day);
        salts.set(day, salt);
      }
      return salt;
    };
  }

  /** Puts each spool file in the bucket, oldest first, removing it once there; the first failure ends the round (thrown). */
  async ship(): Promise<number> {
    if (this.store === null) return 0;
    const names = spooled(this.dir);
    this.#waiting = names.length;
    let shipped = 0;
    for (const name of names) {
      const path = join(this.dir, name);
      // From the file: read into a string and encoded back for the request, a second's visits (7-11 MB at 24 000
      // redirects a second) cost the event loop 4-13 ms (a scratch script on the test VM).
      await this.store.put(name, Bun.file(path));
      rmSync(path, { force: true });
      this.#waiting--;
      shipped++;
    }
    return shipped;
  }

  #saltOf(day: number): Uint8Array {
    const primary = this.copySalt(day);
    if (primary !== null) return primary;
    let own = this.#salts.get(day);
    if (own === undefined) {
      if (this.#salts.size > 3) this.#salts.clear();
      own = randomSalt();
      this.#salts.set(day, own);
    }
    return own;
  }
}
