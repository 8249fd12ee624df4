/** A visit as the redirect path records it, and what the visit flush hands it to. */
/** Shlink's orphan visit types: a visit to the base URL, to an unknown short code, or to any other unknown path. */
export type OrphanType = "base_url" | "invalid_short_url" | "regular_404";

/** The link a visit went to, as the redirect path knows it. */
export interface VisitedLink {
  id: number;
  shortCode: string;
  /** '' for the default domain. */
  domain: string;
}

/**
 * One visit as the public listener saw it. `ip` is the client's address as received: it is never stored as is
 * (the flush anonymises or drops it, per the privacy settings, after using it for location and unique visitors).
 */
export interface Visit {
  /** The link visited; null for an orphan visit. */
  link: VisitedLink | null;
  orphanType: OrphanType | null;
  /** Epoch milliseconds. */
  at: number;
  bot: boolean;
  referer: string | null;
  userAgent: string | null;
  ip: string | null;
  visitedUrl: string;
  /** The Location sent; null for orphan visits. */
  redirectUrl: string | null;
}

/**
 * The longest value of each field a visit keeps, in UTF-16 units; longer ones are cut to it, as Shlink's `Visitor`
 * crops them (its columns have these lengths). A request can carry up to 16 KiB of headers (Bun's limit) and a
 * forwarded query can make the Location as long: kept whole, one client sending such requests would store, ship to
 * the replica and hold in the visit buffer ~16 KB a visit instead of ~300 bytes.
 */
export const VISIT_FIELD_LIMITS = {
  referer: 1024,
  userAgent: 512,
  ip: 256,
  visitedUrl: 2048,
  redirectUrl: 2048,
} as const satisfies Record<"referer" | "userAgent" | "ip" | "visitedUrl" | "redirectUrl", number>;

/** `text` cut to at most `limit` UTF-16 units, never between the two halves of a surrogate pair. */
export function cropText(text: string, limit: number): string {
  if (text.length <= limit) return text;
  const last = text.charCodeAt(limit - 1);
  return text.slice(0, last >= 0xd800 && last <= 0xdbff ? limit - 1 : limit);
}

/** Something that persists a batch of visits inside the flush transaction. */
export interface VisitSink {
  /** Inside the flush transaction: throwing rolls the whole batch back (it stays buffered). */
  write(visits: readonly Visit[]): void;
  /** After the batch committed; must not throw (best-effort fan-out). */
  committed?(visits: readonly Visit[]): void;
  /**
   * A sink that only listens (the real-time feed) says here whether it wants `committed` now. When the visit writer's
   * thread writes a batch, the sinks of this thread do not, and only those that say yes hear of it, after its commit.
   */
  wantsCommitted?(): boolean;
}

export interface PendingCount {
  total: number;
  bots: number;
}
