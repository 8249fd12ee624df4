/**
 * The two ends of a standby's visits (domain/visit-shipment.ts), as the composition root builds them: on a standby
 * the spool, which writes what its visit buffer holds (on its spill thread, once started); on a primary the inbox,
 * which takes the spools' shipments into its database.
 */
import type { Database } from "bun:sqlite";
import { ShipmentLedger } from "../storage/shipment-ledger";
import type { ShipmentStore } from "../storage/shipment-store";
import type { ShortUrlStore } from "../storage/short-url-store";
import type { VisitStore } from "../storage/visit-store";
import { log } from "../telemetry/logger";
import type { LinkResolver } from "./link-resolver";
import type { VisitSink } from "./visit";
import type { VisitBuffer } from "./visit-buffer";
import { VisitInbox } from "./visit-inbox";
import { type PrivacySettings, privacySettings, type VisitLocation, type VisitRecorder } from "./visit-recorder";
import { VisitShipper } from "./visit-shipper";
import { VisitSpillThread } from "./visit-spill-thread";
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
  /** A standby's shipments: what the visits tables may keep, and the client's location (--geoip-db). */
  privacy: Readonly<PrivacySettings>;
  geoipDb: string | null;
  locate: ((ip: string) => VisitLocation | null) | null;
}

/** A standby's spool when `parts.buffer` is a standby's, else a primary's inbox. */
export function visitShipping(parts: ShippingParts): { spool: VisitSpool | null; inbox: VisitInbox | null } {
  const dir = spoolDir(parts.dataDir);
  if (parts.buffer instanceof StandbyVisitBuffer) {
    const thread = new VisitSpillThread({ privacy: privacySettings(parts.privacy), geoipDb: parts.geoipDb }, (message) =>
      log.warn("visit_spill_thread_failed", { error: message, hint: "visits are spilled on the event loop from now on" }),
    );
    const shipper = new VisitShipper(parts.privacy, parts.locate);
    return {
      spool: new VisitSpool(dir, shipper, (day) => parts.visitStore.existingSalt(day), parts.store, parts.buffer, thread),
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
