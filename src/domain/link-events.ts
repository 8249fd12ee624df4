/**
 * Link changes as events, for the durable webhook outbox (written in the change's own transaction) and the
 * real-time feed (told after the commit).
 */
import type { ShortUrl } from "./short-urls";

export type LinkEventType = "link.created" | "link.updated" | "link.deleted";

export interface LinkEvent {
  type: LinkEventType;
  /** The link after the change; for a deletion, as it was just before. */
  shortUrl: ShortUrl;
  /** Epoch milliseconds. */
  at: number;
}

export interface LinkEventListener {
  /**
   * Whether this listener wants events of `type` now (default: always). When no listener wants one, the write
   * does not build the event at all.
   */
  wants?(type: LinkEventType): boolean;
  /** Inside the change's transaction: throwing rolls the change back (a durable outbox writes here). */
  inTransaction?(event: LinkEvent): void;
  /** After the change committed; must not throw (best-effort fan-out). */
  afterCommit?(event: LinkEvent): void;
}
