/**
 * What the real-time feed publishes, in Shlink's Mercure topics and payloads, so Shlink's web UI shows visits
 * live: after each visit flush commits, `new-visit/{shortCode}` and `new-visit` ({shortUrl, visit}) for visits to
 * links and `new-orphan-visit` ({visit}) for the rest; after a link is created, `new-short-url` ({shortUrl}).
 * Payloads use the REST API's own short URL and visit JSON. With nobody subscribed to a topic, nothing is built.
 */
import type { LinkEvent, LinkEventListener, LinkEventType } from "../../domain/link-events";
import type { LiveFeed, LiveUpdate } from "../../domain/live-feed";
import type { ShortUrl, ShortUrlService } from "../../domain/short-urls";
import type { Visit, VisitSink } from "../../domain/visit-buffer";
import type { Locate } from "../../domain/visit-location";
import type { PrivacySettings } from "../../domain/visit-recorder";
import type { VisitRecord } from "../../storage/visit-query-store";
import { visitJson } from "../rest/visit-routes";
import { shortUrlJson } from "../short-url-json";

/** Shlink's topics (module/Core/src/EventDispatcher/Topic.php). */
export const TOPICS = {
  newVisit: "https://shlink.io/new-visit",
  newOrphanVisit: "https://shlink.io/new-orphan-visit",
  newShortUrl: "https://shlink.io/new-short-url",
  shortUrlVisits: (shortCode: string) => `https://shlink.io/new-visit/${shortCode}`,
} as const;

/** A visit as the REST API shows it once written: the privacy switches applied, located when a GeoIP database is set. */
function visitRecord(visit: Visit, privacy: Readonly<PrivacySettings>, locate: Locate | null): VisitRecord {
  const location = visit.ip !== null && locate !== null ? locate(visit.ip) : null;
  return {
    id: 0,
    short_url_id: visit.link?.id ?? null,
    orphan_type: visit.link === null ? visit.orphanType : null,
    at: visit.at,
    potential_bot: visit.bot ? 1 : 0,
    referer: privacy.trackReferrer ? visit.referer : null,
    user_agent: privacy.trackUserAgent ? visit.userAgent : null,
    remote_addr: null,
    visited_url: visit.visitedUrl,
    redirect_url: visit.redirectUrl,
    country_code: location?.countryCode ?? null,
    country_name: location?.countryName ?? null,
    region_name: location?.regionName ?? null,
    city_name: location?.cityName ?? null,
    latitude: location?.latitude ?? null,
    longitude: location?.longitude ?? null,
    timezone: location?.timezone ?? null,
  };
}

/** Publishes flushed visits, after their batch committed (so a live count never shows a visit that was rolled back). */
export class LiveVisitPublisher implements VisitSink {
  constructor(
    private readonly feed: LiveFeed,
    private readonly shortUrls: Pick<ShortUrlService, "get">,
    private readonly baseUrl: string,
    private readonly privacy: Readonly<PrivacySettings>,
    private readonly locate: Locate | null = null,
  ) {}

  write(): void {
    // Nothing to write inside the flush: the feed hears of visits only once they are committed.
  }

  /** Only while someone subscribes: then the visits a writer thread committed are read back here for the feed. */
  wantsCommitted(): boolean {
    return !this.feed.idle;
  }

  committed(visits: readonly Visit[]): void {
    const feed = this.feed;
    if (feed.idle) return;
    // Each link's JSON once per batch, with the counters as just committed; null when it was deleted meanwhile.
    const links = new Map<number, string | null>();
    const updates: LiveUpdate[] = [];
    for (const visit of visits) {
      const link = visit.link;
      if (link === null) {
        if (feed.wants(TOPICS.newOrphanVisit)) {
          updates.push({ topic: TOPICS.newOrphanVisit, data: JSON.stringify({ visit: this.#visitJson(visit) }) });
        }
        continue;
      }
      const codeTopic = TOPICS.shortUrlVisits(link.shortCode);
      const toCode = feed.wants(codeTopic);
      const toAll = feed.wants(TOPICS.newVisit);
      if (!toCode && !toAll) continue;
      let shortUrl = links.get(link.id);
      if (shortUrl === undefined) {
        shortUrl = this.#shortUrlJson(link.shortCode, link.domain);
        links.set(link.id, shortUrl);
      }
      if (shortUrl === null) continue;
      const data = `{"shortUrl":${shortUrl},"visit":${JSON.stringify(this.#visitJson(visit))}}`;
      // Shlink publishes the short URL's own topic first, then the general one.
      if (toCode) updates.push({ topic: codeTopic, data });
      if (toAll) updates.push({ topic: TOPICS.newVisit, data });
    }
    if (updates.length > 0) feed.publish(updates);
  }

  #visitJson(visit: Visit) {
    return visitJson(visitRecord(visit, this.privacy, this.locate));
  }

  #shortUrlJson(shortCode: string, domain: string): string | null {
    let shortUrl: ShortUrl;
    try {
      shortUrl = this.shortUrls.get(shortCode, domain === "" ? null : domain);
    } catch {
      return null;
    }
    return JSON.stringify(shortUrlJson(shortUrl, this.baseUrl));
  }
}

/** Publishes each created link once its transaction committed. */
export class LiveLinkPublisher implements LinkEventListener {
  constructor(
    private readonly feed: LiveFeed,
    private readonly baseUrl: string,
  ) {}

  wants(type: LinkEventType): boolean {
    return type === "link.created" && this.feed.wants(TOPICS.newShortUrl);
  }

  afterCommit(event: LinkEvent): void {
    if (event.type !== "link.created" || !this.feed.wants(TOPICS.newShortUrl)) return;
    this.feed.publish([{ topic: TOPICS.newShortUrl, data: JSON.stringify({ shortUrl: shortUrlJson(event.shortUrl, this.baseUrl) }) }]);
  }
}
