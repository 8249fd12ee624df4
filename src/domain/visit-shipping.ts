/**
 * The two ends of a standby's visits (domain/visit-shipment.ts), as the composition root builds them: on a standby
 * the spool, which writes what its visit buffer holds; on a primary the inbox, which takes the spools'
 * shipments into its database.
 */
import type { Database } from "bun:sqlite";
import { ShipmentLedger } from "../storage/shipment-ledger";
import type { ShipmentStore } from "../storage/shipment-store";
import type { ShortUrlStore } from "../storage/short-url-store";
import type { VisitStore } from "../storage/visit-store";
import type { LinkResolver } from "./link-resolver";
import type { VisitSink } from "./visit";
import type { VisitBuffer } from "./visit-buffer";
import { VisitInbox } from "./visit-inbox";
import type { VisitRecorder } from "./visit-recorder";
import { StandbyVisitBuffer, spoolDir, VisitSpool } from "./visit-spool";

export interface ShippingParts {
  db: Database;
  dataDir: string;
  /** The replica's bucket; null when it is not on S3. */
  store: ShipmentStore | null;
  recorder: VisitRecorder;
  visitStore: VisitStore;
  links: ShortUrlStore;
  buffer: VisitBuffer;
  /** The webhook outbox: shipped visits to links raise `link.visited` as served ones do. */
  outbox: VisitSink;
  resolver: LinkResolver;
  /** Whether this node may write now (a primary fenced off the replica lease may not). */
  writable: () => boolean;
}

/** A standby's spool when `parts.buffer` is a standby's, else a primary's inbox. */
export function visitShipping(parts: ShippingParts): { spool: VisitSpool | null; inbox: VisitInbox | null } {
  const dir = spoolDir(parts.dataDir);
  if (parts.buffer instanceof StandbyVisitBuffer) {
    return {
      spool: new VisitSpool(dir, parts.recorder, (day) => parts.visitStore.existingSalt(day), parts.store, parts.buffer),
      inbox: null,
    };
  }
  const inbox = new VisitInbox({
    db: parts.db,
    spool: dir,
    store: parts.store,
    recorder: parts.recorder,
    visits: parts.visitStore,
    links: parts.links,
    ledger: new ShipmentLedger(parts.db),
    webhooks: parts.outbox,
    writable: parts.writable,
    // The links' cached visit counts are stale once their shipped visits are written.
    taken: (links) => {
      for (const link of links) parts.resolver.invalidate(link.domain, link.shortCode);
    },
  });
  return { spool: null, inbox };
}
