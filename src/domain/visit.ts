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
