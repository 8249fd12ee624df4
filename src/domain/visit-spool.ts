/**
 * A standby's visits on their way to the primary (domain/visit-shipment.ts). Its visit buffer holds each visit's
 * details; every flush interval `spill` writes what it holds to one file in `<data-dir>/visit-spool`,
 * durably, with the privacy settings applied; `ship` puts each file in the replica's bucket and removes it once the
 * bucket has it. A file the bucket did not take stays, and is shipped later; on a node started as the primary, the
 * inbox takes the files this node left as a standby (promotion) straight into its database.
 */

import type { Database } from "bun:sqlite";
import { mkdirSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import type { Tracer } from "@opentelemetry/api";
import { writeFileAtomic } from "../lib/atomic-file";
import { SHIPMENT_NAME, type ShipmentStore, shipmentName } from "../storage/shipment-store";
import type { ShortUrlStore } from "../storage/short-url-store";
import type { Visit } from "./visit";
import { VisitBuffer } from "./visit-buffer";
import { dayOf, type VisitRecorder } from "./visit-recorder";
import { encodeShipment } from "./visit-shipment";

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
 * A standby's visit buffer: it counts visits on their links (a link's maxVisits holds on the standby) and holds their
 * details for its spool, instead of in the log a primary's flush writes from (a standby's database is the primary's).
 */
export class StandbyVisitBuffer extends VisitBuffer {
  #held: Visit[] = [];
  #dropped = 0;
  readonly #limit: number;

  constructor(db: Database, shortUrls: ShortUrlStore, tracer: Tracer | null, limit: number) {
    super(db, shortUrls, tracer, limit);
    this.#limit = limit;
  }

  override capture(visit: Visit): void {
    if (this.#held.length >= this.#limit) this.#dropped++;
    else this.#held.push(visit);
  }

  override captureOrphan(visit: Visit): void {
    this.capture(visit);
  }

  /** The visits held since the last call. */
  takeHeld(): Visit[] {
    const held = this.#held;
    this.#held = [];
    return held;
  }

  /** Puts visits back in front (a spill that failed), past the limit or not: they were admitted once. */
  giveBack(visits: Visit[]): void {
    this.#held = visits.concat(this.#held);
  }

  /** Visits whose details were not kept: more than the limit came between two spills. */
  get dropped(): number {
    return this.#dropped;
  }
}

export class VisitSpool {
  /** This node's own salt of a day whose salt the copy lacks (the primary has not counted a visit that day). */
  readonly #salts = new Map<number, Uint8Array>();
  #waiting = 0;

  constructor(
    readonly dir: string,
    private readonly recorder: VisitRecorder,
    /** The day's salt in the copy (the primary's), or null. */
    private readonly copySalt: (day: number) => Uint8Array | null,
    /** The bucket; null when the replica is not on S3 (the files then wait for this node to start as the primary). */
    private readonly store: ShipmentStore | null,
    private readonly buffer: StandbyVisitBuffer,
  ) {
    try {
      this.#waiting = spooled(dir).length;
    } catch {
      // Not readable now: the first spill says why; ship() counts again.
    }
  }

  /** Spool files not yet in the bucket. */
  get waiting(): number {
    return this.#waiting;
  }

  /** Writes the visits the buffer holds as one spool file, durably; returns how many. On failure they stay held. */
  spill(now = Date.now()): number {
    const visits = this.buffer.takeHeld();
    if (visits.length === 0) return 0;
    try {
      const shipped = visits.map((visit) => this.recorder.shipped(visit, this.#saltOf(dayOf(visit.at))));
      mkdirSync(this.dir, { recursive: true, mode: 0o750 });
      writeFileAtomic(join(this.dir, shipmentName(now)), encodeShipment(shipped));
    } catch (error) {
      this.buffer.giveBack(visits);
      throw error;
    }
    this.#waiting++;
    return visits.length;
  }

  /** Puts each spool file in the bucket, oldest first, removing it once there; the first failure ends the round (thrown). */
  async ship(): Promise<number> {
    if (this.store === null) return 0;
    const names = spooled(this.dir);
    this.#waiting = names.length;
    let shipped = 0;
    for (const name of names) {
      const path = join(this.dir, name);
      await this.store.put(name, readFileSync(path, "utf8"));
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
      own = crypto.getRandomValues(new Uint8Array(16));
      this.#salts.set(day, own);
    }
    return own;
  }
}
