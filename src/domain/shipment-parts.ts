/**
 * How a primary writes a standby's shipment (domain/visit-shipment.ts) into its database: in parts of PART_VISITS
 * visits, each in a transaction of its own with its name in the ledger (`<shipment>#<part>`), so a shipment seen twice
 * counts once, and one cut short by a stop or a crash goes on where it ended. The inbox (domain/visit-inbox.ts) runs
 * these on its thread (domain/visit-inbox-worker.ts), or on the event loop when that thread is not running.
 */
import { readFileSync } from "node:fs";
import type { ShipmentLedger } from "../storage/shipment-ledger";
import type { ShortUrlStore } from "../storage/short-url-store";
import type { VisitStore } from "../storage/visit-store";
import type { Visit, VisitSink } from "./visit";
import type { VisitRecorder } from "./visit-recorder";
import { decodeShipment, ShipmentError, type ShippedVisit } from "./visit-shipment";

/**
 * Visits written per transaction. Part of each part's name in the ledger: changing it would count again the parts of
 * a shipment that a primary of the other size had begun.
 */
export const PART_VISITS = 1000;

/** The stores a part is written with, on one connection. */
export interface PartStores {
  recorder: VisitRecorder;
  visits: VisitStore;
  links: ShortUrlStore;
  ledger: ShipmentLedger;
  /** Told of the visits to links in the transaction (the webhook outbox). */
  webhooks: VisitSink;
}

/** A link whose counters a part changed: its cached visit counts are stale after the commit. */
export interface TakenLink {
  domain: string;
  shortCode: string;
}

/** What a part wrote: nothing when the ledger already had it. */
export interface PartWritten {
  visits: number;
  links: TakenLink[];
}

/** Where a shipment is read from: a spool file, or the bytes fetched from the bucket. */
export type ShipmentSource = { path: string; bytes: null } | { path: null; bytes: ArrayBuffer };

/**
 * The shipment's visits, or why it is refused (not a shipment of ours, or damaged: not UTF-8 text, not JSON, a field of
 * the wrong kind). A file that cannot be read throws.
 */
export function readShipment(source: ShipmentSource): { visits: ShippedVisit[] } | { refused: string } {
  const bytes = source.path === null ? source.bytes : readFileSync(source.path);
  try {
    let text: string;
    try {
      text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
    } catch {
      throw new ShipmentError("it is not UTF-8 text (damaged, or not a shipment)");
    }
    return { visits: decodeShipment(text) };
  } catch (error) {
    if (error instanceof ShipmentError) return { refused: error.message };
    throw error;
  }
}

/** A shipment's parts, each with its name in the ledger; a shipment without visits is one empty part (so it is noted). */
export function* shipmentParts(name: string, visits: readonly ShippedVisit[]): Generator<[string, readonly ShippedVisit[]]> {
  for (let part = 0; part * PART_VISITS < Math.max(visits.length, 1); part++) {
    yield [`${name}#${part}`, visits.slice(part * PART_VISITS, (part + 1) * PART_VISITS)];
  }
}

/**
 * Writes one part inside the caller's write transaction: raw rows, roll-ups, the links' counters and `link.visited`
 * events, as the visit flush writes a redirect's, and the part's name in the ledger.
 */
export function writePart(stores: PartStores, key: string, visits: readonly ShippedVisit[]): PartWritten {
  if (stores.ledger.has(key)) return { visits: 0, links: [] };
  // A link deleted since the standby served it keeps no visits (as the flush drops a deleted link's).
  const ids = [...new Set(visits.flatMap((visit) => (visit.link === null ? [] : [visit.link.id])))];
  const live = ids.length === 0 ? new Set<number>() : stores.visits.liveLinks(ids);
  const kept = visits.filter((visit) => visit.link === null || live.has(visit.link.id));
  stores.recorder.writeShipped(kept);
  const changed = new Map<number, { domain: string; shortCode: string; total: number; bots: number }>();
  for (const visit of kept) {
    if (visit.link === null) continue;
    const link = changed.get(visit.link.id) ?? { domain: visit.link.domain, shortCode: visit.link.shortCode, total: 0, bots: 0 };
    link.total++;
    if (visit.bot) link.bots++;
    changed.set(visit.link.id, link);
  }
  for (const [id, link] of changed) stores.links.addVisits(id, link.total, link.bots);
  stores.webhooks.write(kept.map(asVisit));
  stores.ledger.add(key, kept.length);
  return { visits: kept.length, links: [...changed.values()].map(({ domain, shortCode }) => ({ domain, shortCode })) };
}

/** A shipped visit as the webhook outbox reads one (it never sends the address). */
function asVisit(visit: ShippedVisit): Visit {
  return { ...visit, ip: visit.remoteAddr };
}
