/**
 * The primary's side of a standby's visits (domain/visit-shipment.ts): `take` writes each shipment waiting, from
 * this node's own spool (left there while it was a standby, before a promotion) and from the bucket, into the
 * database: raw rows, roll-ups, the links' counters and `link.visited` webhook events, as the visit flush writes a
 * redirect's. Each part of a shipment is written in one transaction with its name in the ledger, so a shipment seen
 * twice counts once; the file or object is removed only after that commit. Only a node that may write takes any.
 */

import type { Database } from "bun:sqlite";
import { readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { whenLockFree, writeTransactionIfFree } from "../storage/database";
import type { ShipmentLedger } from "../storage/shipment-ledger";
import type { ShipmentStore } from "../storage/shipment-store";
import type { ShortUrlStore } from "../storage/short-url-store";
import type { VisitStore } from "../storage/visit-store";
import { log } from "../telemetry/logger";
import type { Visit, VisitSink } from "./visit";
import type { VisitRecorder } from "./visit-recorder";
import { decodeShipment, ShipmentError, type ShippedVisit } from "./visit-shipment";
import { spooled } from "./visit-spool";

/** Visits written per transaction: as many as a visit flush chunk, so redirects never wait behind a whole shipment. */
const PART_VISITS = 1000;
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
  /** Whether this node may write now (a primary fenced off the replica lease may not). */
  writable: () => boolean;
  /** After a commit: the links whose counters it changed (their cached counts are stale). */
  taken: (links: readonly { domain: string; shortCode: string }[]) => void;
}

export class VisitInbox {
  /** Shipments that are not ours or were damaged: named once in the log, left where they are. */
  readonly #refused = new Set<string>();
  #visitsTaken = 0;

  constructor(private readonly deps: InboxDeps) {}

  /** Visits written from shipments since this process started. */
  get visitsTaken(): number {
    return this.#visitsTaken;
  }

  /**
   * Takes every shipment waiting in this node's spool and, with `bucket`, in the bucket; returns how many visits it
   * wrote. A store that fails ends the round (thrown).
   */
  async take(bucket = true): Promise<number> {
    const { deps } = this;
    let written = 0;
    for (const name of spooled(deps.spool)) {
      if (!deps.writable()) return written;
      if (this.#refused.has(name)) continue;
      const path = join(deps.spool, name);
      const taken = await this.#takeOne(name, readFileSync(path, "utf8"));
      if (taken === null) continue;
      written += taken;
      rmSync(path, { force: true });
    }
    if (deps.store === null || !bucket) return written;
    for (const name of await deps.store.names()) {
      if (!deps.writable()) return written;
      if (this.#refused.has(name)) continue;
      const body = await deps.store.get(name);
      const taken = body === null ? 0 : await this.#takeOne(name, body);
      if (taken === null) continue;
      written += taken;
      await deps.store.remove(name);
    }
    return written;
  }

  /** Writes a shipment's parts not yet taken; null when it is refused (not a shipment, or damaged). */
  async #takeOne(name: string, body: string): Promise<number | null> {
    let visits: ShippedVisit[];
    try {
      visits = decodeShipment(body);
    } catch (error) {
      if (!(error instanceof ShipmentError)) throw error;
      this.#refused.add(name);
      log.error("visit_shipment_refused", {
        shipment: name,
        reason: error.message,
        hint: "it is left where it is (the bucket's standby visits, or the data dir's visit-spool): look at it, then remove it",
      });
      return null;
    }
    let written = 0;
    for (let part = 0; part * PART_VISITS < Math.max(visits.length, 1); part++) {
      written += await this.#writePart(`${name}#${part}`, visits.slice(part * PART_VISITS, (part + 1) * PART_VISITS));
    }
    return written;
  }

  async #writePart(key: string, visits: readonly ShippedVisit[]): Promise<number> {
    const { deps } = this;
    const changed = new Map<number, { domain: string; shortCode: string; total: number; bots: number }>();
    const written = await whenLockFree(
      () =>
        writeTransactionIfFree(deps.db, () => {
          changed.clear();
          if (deps.ledger.has(key)) return 0;
          // A link deleted since the standby served it keeps no visits (as the flush drops a deleted link's).
          const ids = [...new Set(visits.flatMap((visit) => (visit.link === null ? [] : [visit.link.id])))];
          const live = ids.length === 0 ? new Set<number>() : deps.visits.liveLinks(ids);
          const kept = visits.filter((visit) => visit.link === null || live.has(visit.link.id));
          deps.recorder.writeShipped(kept);
          for (const visit of kept) {
            if (visit.link === null) continue;
            const link = changed.get(visit.link.id) ?? { ...visit.link, total: 0, bots: 0 };
            link.total++;
            if (visit.bot) link.bots++;
            changed.set(visit.link.id, link);
          }
          for (const [id, link] of changed) deps.links.addVisits(id, link.total, link.bots);
          deps.webhooks.write(kept.map(asVisit));
          deps.ledger.add(key, kept.length);
          return kept.length;
        }),
      LOCK_WAIT_MS,
    );
    if (written > 0) {
      this.#visitsTaken += written;
      deps.webhooks.committed?.([]);
      deps.taken([...changed.values()]);
    }
    return written;
  }
}

/** A shipped visit as the webhook outbox reads one (it never sends the address). */
function asVisit(visit: ShippedVisit): Visit {
  return { ...visit, ip: visit.remoteAddr };
}
