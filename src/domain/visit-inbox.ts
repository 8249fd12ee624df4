/**
 * The primary's side of a standby's visits (domain/visit-shipment.ts): `take` writes each shipment waiting, from
 * this node's own spool (left there while it was a standby, before a promotion) and from the bucket, into the
 * database: raw rows, roll-ups, the links' counters and `link.visited` webhook events, as the visit flush writes a
 * redirect's. Each part of a shipment is written in one transaction with its name in the ledger, so a shipment seen
 * twice counts once (domain/shipment-parts.ts); the file or object is removed only after its last part's commit. Only
 * a node that may write takes any.
 *
 * Shipments are read, parsed and written on the inbox's thread once it runs (domain/visit-inbox-thread.ts), else here,
 * a part at a time with the event loop's turn in between. The thread starts with the first shipment found: a primary
 * no standby ever shipped to does not hold its ~4.5 MiB (a JavaScript heap and a connection of its own).
 */

import type { Database } from "bun:sqlite";
import { rmSync } from "node:fs";
import { join } from "node:path";
import { type LockAttempt, whenLockFree, writeTransactionIfFree } from "../storage/database";
import type { ShipmentLedger } from "../storage/shipment-ledger";
import type { ShipmentStore } from "../storage/shipment-store";
import type { ShortUrlStore } from "../storage/short-url-store";
import type { VisitStore } from "../storage/visit-store";
import { log } from "../telemetry/logger";
import { type PartWritten, readShipment, type ShipmentSource, shipmentParts, type TakenLink, writePart } from "./shipment-parts";
import type { VisitSink } from "./visit";
import type { InboxJob, InboxReply, PartTaken, VisitInboxThread } from "./visit-inbox-thread";
import type { VisitRecorder } from "./visit-recorder";
import { spooled } from "./visit-spool";

/** How long a part waits for another process's write lock (a `shortener import`, say) before the round ends. */
const LOCK_WAIT_MS = 5000;

export interface InboxDeps {
  db: Database;
  /** This node's spool directory (domain/visit-spool.ts). */
  spool: string;
  /** The bucket; null when the replica is not on S3. */
  store: ShipmentStore | null;
  recorder: VisitRecorder;
  visits: VisitStore;
  links: ShortUrlStore;
  ledger: ShipmentLedger;
  /** Told of the visits to links in the transaction (the webhook outbox), and after the commit. */
  webhooks: VisitSink;
  /** The inbox's thread stored webhook events: the dispatcher can send them. */
  webhooksEnqueued: () => void;
  /** Whether this node may write now (a primary fenced off the replica lease may not). */
  writable: () => boolean;
  /** After a commit: the links whose counters it changed (their cached counts are stale). */
  taken: (links: readonly TakenLink[]) => void;
}

export class VisitInbox {
  /** Shipments that are not ours or were damaged: named once in the log, left where they are. */
  readonly #refused = new Set<string>();
  #visitsTaken = 0;
  #stopping = false;
  /** The shipment being taken, on the thread or here; a stop waits for it. */
  #taking: Promise<unknown> | null = null;

  constructor(
    private readonly deps: InboxDeps,
    /** Where shipments are taken, started with the first; on the event loop if it cannot run. */
    private readonly thread: VisitInboxThread | null = null,
  ) {}

  /** Visits written from shipments since this process started. */
  get visitsTaken(): number {
    return this.#visitsTaken;
  }

  /** Whether shipments are taken on the thread now (it starts with the first one found). */
  get threadRunning(): boolean {
    return this.thread?.usable ?? false;
  }

  /** Ends the shipment under way after its current part, and stops the thread: no shipment is taken after. */
  async stop(): Promise<void> {
    this.#stopping = true;
    this.thread?.interrupt();
    await this.#taking?.catch(() => {});
    await this.thread?.stop();
  }

  /**
   * Takes every shipment waiting in this node's spool and, with `bucket`, in the bucket; returns how many visits it
   * wrote. A store that fails ends the round (thrown).
   */
  async take(bucket = true): Promise<number> {
    const { deps } = this;
    let written = 0;
    for (const name of spooled(deps.spool)) {
      if (this.#stopping || !deps.writable()) return written;
      if (this.#refused.has(name)) continue;
      const path = join(deps.spool, name);
      const taken = await this.#takeOne(name, { path, bytes: null });
      if (taken === null) continue;
      written += taken.visits;
      if (taken.complete) rmSync(path, { force: true });
    }
    if (deps.store === null || !bucket) return written;
    for (const name of await deps.store.names()) {
      if (this.#stopping || !deps.writable()) return written;
      if (this.#refused.has(name)) continue;
      const bytes = await deps.store.get(name);
      const taken = bytes === null ? { visits: 0, complete: true } : await this.#takeOne(name, { path: null, bytes });
      if (taken === null) continue;
      written += taken.visits;
      if (taken.complete) await deps.store.remove(name);
    }
    return written;
  }

  /**
   * Writes a shipment's parts not yet taken; null when it is refused (not a shipment, or damaged). Not `complete` when
   * a stop cut it short.
   */
  async #takeOne(name: string, source: ShipmentSource): Promise<{ visits: number; complete: boolean } | null> {
    const before = this.#visitsTaken;
    // The thread starts with the first shipment (a stop meanwhile waits for that start).
    await this.thread?.startOnce();
    if (this.#stopping) return { visits: 0, complete: false };
    const taking = this.thread?.usable
      ? this.thread.take({ op: "take", name, ...source } satisfies InboxJob)
      : this.#takeHere(name, source);
    this.#taking = taking;
    let reply: InboxReply;
    try {
      reply = await taking;
    } finally {
      this.#taking = null;
    }
    if (reply.op === "failed") throw Object.assign(new Error(reply.message), { code: reply.code ?? undefined });
    if (reply.op === "refused") {
      this.#refused.add(name);
      log.error("visit_shipment_refused", {
        shipment: name,
        reason: reply.reason,
        hint: "it is left where it is (the bucket's standby visits, or the data dir's visit-spool): look at it, then remove it",
      });
      return null;
    }
    return { visits: this.#visitsTaken - before, complete: reply.complete };
  }

  /** A part's commit, on the thread or here: its links' cached counts are stale from now on. */
  partTaken(part: PartTaken): void {
    this.#visitsTaken += part.visits;
    this.deps.taken(part.links);
    if (part.enqueued) this.deps.webhooksEnqueued();
  }

  /** The same on the event loop: a part in each turn of it. */
  async #takeHere(name: string, source: ShipmentSource): Promise<InboxReply> {
    const { deps } = this;
    const read = readShipment(source);
    if ("refused" in read) return { op: "refused", reason: read.refused };
    for (const [key, part] of shipmentParts(name, read.visits)) {
      await new Promise((resolve) => setImmediate(resolve));
      // A stop ends the wait for another process's write lock too.
      const write = (): LockAttempt<PartWritten | null> =>
        this.#stopping ? { value: null } : writeTransactionIfFree(deps.db, () => writePart(deps, key, part));
      const done = await whenLockFree(write, LOCK_WAIT_MS);
      if (done === null) return { op: "taken", complete: false };
      // The event loop's outbox tells its dispatcher itself.
      deps.webhooks.committed?.([]);
      if (done.visits > 0) this.partTaken({ op: "part", ...done, enqueued: false });
    }
    return { op: "taken", complete: true };
  }
}
