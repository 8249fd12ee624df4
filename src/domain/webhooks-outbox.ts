/**
 * The durable webhook outbox's writer: link events (inside the link write's transaction) and visits (inside the
 * visit flush's transaction) become one outbox row per subscribed webhook, so an event is stored if and only if
 * its change is. Which webhooks want which event is cached in memory: with none configured, an event costs one
 * `PRAGMA data_version` (which also notices webhooks created by the CLI in another process).
 */
import { randomBytes } from "node:crypto";
import type { WebhookStore } from "../storage/webhook-store";
import type { LinkEvent, LinkEventListener, LinkEventType } from "./link-events";
import type { ShortUrl } from "./short-urls";
import type { Visit, VisitSink } from "./visit-buffer";
import { DEFAULT_PRIVACY, type PrivacySettings } from "./visit-recorder";
import type { WebhookEventType } from "./webhooks";

/**
 * A Standard Webhooks message id: `msg_` and 160 random bits in base64url (27 characters, never a `.`), so ids are
 * never reused, even after a point-in-time restore. A fifth of the cost of a base62 string (one per visit event).
 */
export function newMessageId(): string {
  return `msg_${randomBytes(20).toString("base64url")}`;
}

/** The public short URL of a code on a domain ('' for the default domain, which is the base URL's). */
export function publicShortUrl(baseUrl: string, shortCode: string, domain: string): string {
  return domain === "" ? `${baseUrl}/${shortCode}` : `${new URL(baseUrl).protocol}//${domain}/${shortCode}`;
}

export interface OutboxOptions {
  /** A link as Shlink's API shows it (the `shortUrl` of link events). */
  linkJson: (shortUrl: ShortUrl) => unknown;
  /** The public short URL of a code on a domain ('' for the default domain). */
  shortUrlOf: (shortCode: string, domain: string) => string;
  privacy?: Readonly<PrivacySettings>;
  /** Told after a commit that stored events, so the dispatcher can send them at once. */
  onEnqueued?: () => void;
}

const isoTime = (ms: number) => new Date(ms).toISOString();

/**
 * The outbox of a thread that writes visits and never links (the visit writer's, the inbox's): `link.visited` events
 * only, under the privacy settings; `onEnqueued` hears of a commit that stored some.
 */
export function visitEventOutbox(store: WebhookStore, baseUrl: string, privacy: Readonly<PrivacySettings>, onEnqueued: () => void) {
  return new WebhookOutbox(store, {
    linkJson: () => {
      throw new Error("this thread stores visit events only");
    },
    shortUrlOf: (code, domain) => publicShortUrl(baseUrl, code, domain),
    privacy,
    onEnqueued,
  });
}

export class WebhookOutbox implements LinkEventListener, VisitSink {
  #subscribers = new Map<WebhookEventType, number[]>();
  #version = -1;
  #stale = true;
  #enqueued = false;

  constructor(
    private readonly store: WebhookStore,
    private readonly options: OutboxOptions,
  ) {}

  /** The webhooks changed on this connection: reload the subscriptions at the next event. */
  invalidate(): void {
    this.#stale = true;
  }

  /** Only events some webhook subscribes to are built (a create with no webhook reads nothing back). */
  wants(type: LinkEventType): boolean {
    return this.#subscribed(type).length > 0;
  }

  inTransaction(event: LinkEvent): void {
    const webhooks = this.#subscribed(event.type);
    if (webhooks.length === 0) return;
    const body = JSON.stringify({
      type: event.type,
      timestamp: isoTime(event.at),
      data: { shortUrl: this.options.linkJson(event.shortUrl) },
    });
    for (const webhookId of webhooks) {
      this.store.enqueue(
        { webhook_id: webhookId, message_id: newMessageId(), event_type: event.type, link_id: event.shortUrl.id, payload: body },
        event.at,
      );
    }
    this.#enqueued = true;
  }

  afterCommit(): void {
    this.#notify();
  }

  /** One `link.visited` event per visit to a link; orphan visits are not link events. */
  write(visits: readonly Visit[]): void {
    const webhooks = this.#subscribed("link.visited");
    if (webhooks.length === 0) return;
    const now = Date.now();
    for (const visit of visits) {
      if (visit.link === null) continue;
      const body = JSON.stringify({ type: "link.visited", timestamp: isoTime(visit.at), data: this.#visitData(visit) });
      for (const webhookId of webhooks) {
        this.store.enqueue(
          { webhook_id: webhookId, message_id: newMessageId(), event_type: "link.visited", link_id: visit.link.id, payload: body },
          now,
        );
      }
      this.#enqueued = true;
    }
  }

  committed(): void {
    this.#notify();
  }

  #notify(): void {
    if (!this.#enqueued) return;
    this.#enqueued = false;
    this.options.onEnqueued?.();
  }

  /** Shlink's visit shape (as its real-time updates send it), under the privacy settings; never the client's address. */
  #visitData(visit: Visit) {
    const link = visit.link as NonNullable<Visit["link"]>;
    const privacy = this.options.privacy ?? DEFAULT_PRIVACY;
    return {
      shortUrl: {
        shortCode: link.shortCode,
        domain: link.domain === "" ? null : link.domain,
        shortUrl: this.options.shortUrlOf(link.shortCode, link.domain),
      },
      visit: {
        referer: privacy.trackReferrer ? (visit.referer ?? "") : "",
        date: isoTime(visit.at).replace(/\.\d{3}Z$/, "+00:00"),
        userAgent: privacy.trackUserAgent ? (visit.userAgent ?? "") : "",
        visitLocation: null,
        potentialBot: visit.bot,
        visitedUrl: visit.visitedUrl,
        redirectUrl: visit.redirectUrl,
      },
    };
  }

  /** Ids of the enabled webhooks subscribed to `type`, reloaded when they changed here or in another process. */
  #subscribed(type: WebhookEventType): readonly number[] {
    const version = this.store.dataVersion();
    if (this.#stale || version !== this.#version) {
      const next = new Map<WebhookEventType, number[]>();
      for (const row of this.store.webhooks()) {
        if (row.disabled !== 0) continue;
        for (const event of row.events.split(",") as WebhookEventType[]) next.set(event, [...(next.get(event) ?? []), row.id]);
      }
      this.#subscribers = next;
      this.#version = version;
      this.#stale = false;
    }
    return this.#subscribers.get(type) ?? [];
  }
}
