/**
 * The two ends of a standby's visits (domain/visit-shipment.ts), as the composition root builds them: on a standby
 * the spool, which writes what its visit buffer holds (on its spill thread, once started); on a primary the inbox,
 * which takes the spools' shipments into its database (on its thread, once started).
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
import { VisitInboxThread } from "./visit-inbox-thread";
import { type PrivacySettings, privacySettings, type VisitLocation, type VisitRecorder } from "./visit-recorder";
import { VisitShipper } from "./visit-shipper";
import { VisitSpillThread } from "./visit-spill-thread";
import { StandbyVisitBuffer, spoolDir, VisitSpool } from "./visit-spool";
import { sharedSalt } from "./visitor-salt";

export interface ShippingParts {
  db: Database;
  /** The replica's bucket; null when it is not on S3. */
  store: ShipmentStore | null;
  recorder: VisitRecorder;
  visitStore: VisitStore;
  links: ShortUrlStore;
  buffer: VisitBuffer;
  /** The webhook outbox: shipped visits to links raise `link.visited` as served ones do. */
  outbox: VisitSink;
  /** The inbox's thread stored webhook events (in its own outbox): the dispatcher can send them. */
  wakeWebhooks: () => void;
  resolver: LinkResolver;
  /** Whether this node may write now (a primary fenced off the replica lease may not). */
  writable: () => boolean;
  /**
   * The data dir (where the spool is), the base URL (the links' public URLs in webhook events), the privacy settings (a
   * standby's shipments keep what the visits tables may) and the client's location (--geoip-db).
   */
  settings: Readonly<PrivacySettings & { dataDir: string; baseUrl: string; geoipDb: string | null }>;
  locate: ((ip: string) => VisitLocation | null) | null;
}

/** A standby's spool when `parts.buffer` is a standby's, else a primary's inbox. */
export function visitShipping(parts: ShippingParts): { spool: VisitSpool | null; inbox: VisitInbox | null } {
  const dir = spoolDir(parts.settings.dataDir);
  if (parts.buffer instanceof StandbyVisitBuffer) {
    const thread = new VisitSpillThread({ privacy: privacySettings(parts.settings), geoipDb: parts.settings.geoipDb }, (message) =>
      log.warn("visit_spill_thread_failed", { error: message, hint: "visits are spilled on the event loop from now on" }),
    );
    const shipper = new VisitShipper(parts.settings, parts.locate);
    return {
      spool: new VisitSpool(dir, shipper, (day) => sharedSalt(parts.visitStore, day), parts.store, parts.buffer, thread),
      inbox: null,
    };
  }
  const thread = new VisitInboxThread(
    { databasePath: parts.db.filename, baseUrl: parts.settings.baseUrl, privacy: privacySettings(parts.settings) },
    (part) => inbox.partTaken(part),
    (message) => log.warn("visit_inbox_thread_failed", { error: message, hint: "shipments are taken on the event loop from now on" }),
  );
  const inbox: VisitInbox = new VisitInbox(
    {
      db: parts.db,
      spool: dir,
      store: parts.store,
      recorder: parts.recorder,
      visits: parts.visitStore,
      links: parts.links,
      ledger: new ShipmentLedger(parts.db),
      webhooks: parts.outbox,
      webhooksEnqueued: parts.wakeWebhooks,
      writable: parts.writable,
      // The links' cached visit counts are stale once their shipped visits are written.
      taken: (links) => {
        for (const link of links) parts.resolver.invalidate(link.domain, link.shortCode);
      },
    },
    thread,
  );
  return { spool: null, inbox };
}
