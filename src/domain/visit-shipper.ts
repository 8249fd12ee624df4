/**
 * A standby's visits as its shipments carry them (domain/visit-shipment.ts), worked out on the standby: the privacy
 * settings applied, the location found and the day's visitor hash taken while the client's address is still known,
 * so that no address leaves the node that the visits tables would not keep. Used on the spill's thread
 * (visit-spill-worker.ts), or on the event loop's when that thread is not running.
 */
import { cropText, VISIT_FIELD_LIMITS as LIMITS, type Visit } from "./visit";
import { KeptAddresses, type PrivacySettings, type VisitLocation } from "./visit-recorder";
import type { ShippedVisit } from "./visit-shipment";

const cropped = (text: string | null, limit: number) => (text === null ? null : cropText(text, limit));

export class VisitShipper {
  readonly #addresses: KeptAddresses;

  constructor(
    private readonly privacy: Readonly<PrivacySettings>,
    /** Location of a client address (a local MaxMind-format database), or null when none is configured. */
    private readonly locate: ((ip: string) => VisitLocation | null) | null,
  ) {
    this.#addresses = new KeptAddresses(privacy);
  }

  /**
   * The visit as its shipment carries it. `salt` is the day's as the primary has it or will (domain/visitor-salt.ts),
   * worked out from the copy, so that a visitor seen by both nodes that day counts once.
   */
  shipped(visit: Visit, salt: Uint8Array): ShippedVisit {
    const { privacy } = this;
    const hasher = new Bun.CryptoHasher("sha256");
    hasher.update(salt);
    hasher.update(`${visit.ip ?? ""}\u0000${visit.userAgent ?? ""}`);
    return {
      link: visit.link === null ? null : { id: visit.link.id, shortCode: visit.link.shortCode, domain: visit.link.domain },
      orphanType: visit.orphanType,
      at: visit.at,
      bot: visit.bot,
      referer: privacy.trackReferrer ? cropped(visit.referer, LIMITS.referer) : null,
      userAgent: privacy.trackUserAgent ? cropped(visit.userAgent, LIMITS.userAgent) : null,
      remoteAddr: this.#addresses.kept(visit.ip),
      visitedUrl: cropText(visit.visitedUrl, LIMITS.visitedUrl),
      redirectUrl: cropped(visit.redirectUrl, LIMITS.redirectUrl),
      location: visit.ip !== null && this.locate !== null ? this.locate(visit.ip) : null,
      visitor: hasher.digest("hex").slice(0, 32),
    };
  }
}
