/**
 * Keeps this process's cache true to link writes made by another process on the same database: in a blue/green
 * overlap both colours serve one database, and each caches the links it resolved. A write drops its code from its
 * own process's cache before it answers, and records it in the journal of link changes (storage/link-change-store.ts)
 * in its transaction; every other process reads the journal every LINK_CHANGES_WATCH_MS and drops those codes too,
 * so it serves an edited or deleted link's old redirect for at most about that long.
 */
import type { LinkChangeStore } from "../storage/link-change-store";
import { FailureStreak } from "../telemetry/failure-streak";
import { describeError } from "../telemetry/logger";

/** How often a primary looks for other processes' link changes: one indexed read of the newest journal rows. */
export const LINK_CHANGES_WATCH_MS = 100;

/** Rows read in one look; more than this since the last look, and the whole cache is dropped instead. */
const LOOK_LIMIT = 1000;

/** What a look drops: one code's cached link (and the robots.txt codes), or everything cached. */
export interface ChangedLinks {
  forgetChanged(domain: string, shortCode: string): void;
  forgetCached(): void;
}

export class LinkChangeWatch {
  /** The newest change this process has seen (its own included: dropping its own again costs one read). */
  #seen: number;

  constructor(
    private readonly journal: LinkChangeStore,
    private readonly cache: ChangedLinks,
  ) {
    this.#seen = journal.last();
  }

  /**
   * Drops what changed since the last look. When rows this process never read were pruned first (a stalled process,
   * or a burst of thousands of changes), which codes changed is unknown: everything cached is dropped.
   * Returns how many changes it read, or "all".
   */
  look(): number | "all" {
    const changes = this.journal.after(this.#seen, LOOK_LIMIT);
    if (changes.length === 0) return 0;
    if ((changes[0] as { seq: number }).seq !== this.#seen + 1 || changes.length === LOOK_LIMIT) {
      // The newest first, then the drop: a change committed in between is read again at the next look.
      this.#seen = this.journal.last();
      this.cache.forgetCached();
      return "all";
    }
    for (const change of changes) this.cache.forgetChanged(change.domain, change.shortCode);
    this.#seen = (changes.at(-1) as { seq: number }).seq;
    return changes.length;
  }
}

/**
 * Looks every `intervalMs` until the timer is cleared. A failed look (a damaged page, say) is logged as a streak
 * (`link_changes_watch_failed`, then `…_recovered`) and tried again at the next: the look after it reads on from the
 * last change it saw, so none is skipped.
 */
export function watchLinkChanges(
  journal: LinkChangeStore,
  cache: ChangedLinks,
  intervalMs = LINK_CHANGES_WATCH_MS,
  failures = new FailureStreak("link_changes_watch"),
): Timer {
  const watch = new LinkChangeWatch(journal, cache);
  return setInterval(() => {
    try {
      watch.look();
      failures.succeeded();
    } catch (error) {
      failures.failed({
        ...describeError(error),
        hint: "links changed through the other colour may be served as they were until looks work again",
      });
    }
  }, intervalMs);
}
