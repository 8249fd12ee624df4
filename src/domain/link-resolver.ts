/**
 * Resolves a short code to where it redirects: the in-process LRU first, one prepared SELECT on a miss (and one more
 * for the link's redirect rules when it has any).
 * It also decides whether a visit may still be served (validSince, validUntil, maxVisits) and counts it,
 * exactly, without touching the database.
 */
import { LRUCache } from "lru-cache";
import type { LinkChangeStore } from "../storage/link-change-store";
import type { RedirectRuleStore } from "../storage/redirect-rule-store";
import type { ShortUrlStore } from "../storage/short-url-store";
import { type RedirectRule, rulesFromRows } from "./redirect-rules";
import type { VisitBuffer } from "./visit-buffer";

/** Reads of a link's counts before giving up on a quiet moment between commits (they come milliseconds apart). */
const MAX_COUNT_READS = 10;

export interface CachedLink {
  id: number;
  shortCode: string;
  /** '' for the default domain. */
  domain: string;
  longUrl: string;
  /** null: the server's default redirect status. */
  status: number | null;
  forwardQuery: boolean;
  validSince: number | null;
  validUntil: number | null;
  maxVisits: number | null;
  /** Visits counted so far, written or still buffered. */
  visits: number;
  /** The link's redirect rules in priority order, or null when it has none (most links). */
  rules: readonly RedirectRule[] | null;
  /** The link's password hash: it redirects only once a visitor gives the password. null for most links. */
  passwordHash: string | null;
}

/** `cached` says whether the LRU answered (a hit) or SQLite did (a miss). */
export type Resolution =
  | { kind: "redirect"; link: CachedLink; cached: boolean }
  | { kind: "not-found" }
  | { kind: "expired" }
  /** A password-protected link that was not unlocked: nothing was counted. */
  | { kind: "locked"; link: CachedLink };

/** Cache key: codes never contain '/', so `domain/code` cannot collide with a default-domain code. */
function cacheKey(domain: string, code: string): string {
  return domain === "" ? code : `${domain}/${code}`;
}

export class LinkResolver {
  readonly #cache: LRUCache<string, CachedLink>;
  #hits = 0;
  #misses = 0;

  constructor(
    private readonly store: ShortUrlStore,
    private readonly visits: VisitBuffer,
    cacheSize: number,
    private readonly rules: RedirectRuleStore,
    /** The journal other processes serving this database read (the other colour); null writes none (unit tests). */
    private readonly changes: LinkChangeStore | null = null,
  ) {
    this.#cache = new LRUCache({ max: cacheSize });
  }

  /**
   * Looks a code up and, when it redirects, counts the visit (unless `count` is false: a visit that must not be
   * tracked still redirects, and does not use up maxVisits). `domain` is '' for the default domain. A
   * password-protected link redirects only when `unlocked` (its password was given, or nothing is revealed).
   */
  resolveAndCount(domain: string, code: string, bot: boolean, now: number, count = true, unlocked = false): Resolution {
    const hitsBefore = this.#hits;
    const link = this.lookup(domain, code);
    if (link === null) return { kind: "not-found" };
    if ((link.validSince !== null && now < link.validSince) || (link.validUntil !== null && now > link.validUntil)) {
      return { kind: "expired" };
    }
    if (link.maxVisits !== null && link.visits >= link.maxVisits) return { kind: "expired" };
    if (link.passwordHash !== null && !unlocked) return { kind: "locked", link };
    if (count) {
      link.visits++;
      this.visits.record(link.id, bot);
    }
    return { kind: "redirect", link, cached: this.#hits !== hitsBefore };
  }

  lookup(domain: string, code: string): CachedLink | null {
    const key = cacheKey(domain, code);
    const cached = this.#cache.get(key);
    if (cached !== undefined) {
      this.#hits++;
      return cached;
    }
    this.#misses++;
    // The stored count and the buffered one must be read between the same two visit flush commits: the visit writer
    // commits on its own thread, and a commit in between would count its visits twice or not at all.
    let row: ReturnType<ShortUrlStore["findForRedirect"]>;
    let pending = 0;
    for (let tries = 0; ; tries++) {
      const commits = this.visits.commits;
      row = this.store.findForRedirect(domain, code);
      if (row === null) return null;
      pending = this.visits.pendingFor(row.id).total;
      if (this.visits.commits === commits || tries >= MAX_COUNT_READS) break;
    }
    const link: CachedLink = {
      id: row.id,
      shortCode: code,
      domain,
      longUrl: row.long_url,
      status: row.redirect_status,
      forwardQuery: row.forward_query === 1,
      validSince: row.valid_since,
      validUntil: row.valid_until,
      maxVisits: row.max_visits,
      visits: row.visits_total + pending,
      rules: row.has_rules === 1 ? rulesFromRows(this.rules.forLink(row.id)) : null,
      passwordHash: row.password_hash,
    };
    this.#cache.set(key, link);
    return link;
  }

  /** Drops a code's entry here. */
  invalidate(domain: string, code: string): void {
    this.#cache.delete(cacheKey(domain, code));
  }

  /**
   * Drops a code's entry here and records the change for any other process serving this database, which drops it
   * from its own cache at its next look (domain/link-change-watch.ts). Every write that changes what a code resolves
   * to, or its count, calls this inside its transaction, so the change is journaled if and only if it commits.
   */
  changed(domain: string, code: string): void {
    this.invalidate(domain, code);
    this.changes?.record(domain, code);
  }

  clear(): void {
    this.#cache.clear();
  }

  stats(): { size: number; hits: number; misses: number } {
    return { size: this.#cache.size, hits: this.#hits, misses: this.#misses };
  }
}
