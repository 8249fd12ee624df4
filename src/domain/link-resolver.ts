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

/** What a link sets beyond its target. Most set nothing but their domain, and share one with the domain's others. */
export interface LinkTerms {
  /** '' for the default domain. */
  readonly domain: string;
  /** null: the server's default redirect status. */
  readonly status: number | null;
  readonly forwardQuery: boolean;
  readonly validSince: number | null;
  readonly validUntil: number | null;
  readonly maxVisits: number | null;
  /** The link's redirect rules in priority order, or null when it has none (most links). */
  readonly rules: readonly RedirectRule[] | null;
  /** The link's password hash: it redirects only once a visitor gives the password. null for most links. */
  readonly passwordHash: string | null;
}

const PLAIN_TERMS: LinkTerms = Object.freeze({
  domain: "",
  status: null,
  forwardQuery: true,
  validSince: null,
  validUntil: null,
  maxVisits: null,
  rules: null,
  passwordHash: null,
});

/** The most domains whose plain links share their terms: the default and each custom domain, a handful in practice. */
const SHARED_DOMAINS_LIMIT = 1000;
const plainTerms = new Map<string, LinkTerms>([["", PLAIN_TERMS]]);

/** `terms`, or the same terms shared by every plain link of its domain. */
function sharedTerms(terms: LinkTerms): LinkTerms {
  const plain =
    terms.status === null &&
    terms.forwardQuery &&
    terms.validSince === null &&
    terms.validUntil === null &&
    terms.maxVisits === null &&
    terms.rules === null &&
    terms.passwordHash === null;
  if (!plain) return terms;
  let shared = plainTerms.get(terms.domain);
  if (shared === undefined && plainTerms.size < SHARED_DOMAINS_LIMIT) {
    shared = Object.freeze({ ...PLAIN_TERMS, domain: terms.domain });
    plainTerms.set(terms.domain, shared);
  }
  return shared ?? terms;
}

/**
 * A link in the LRU. The cache holds 100 000 of them by default, so an entry keeps five fields, and a link that sets
 * nothing beyond its target and domain shares its `LinkTerms` with the domain's other such links: with the cache
 * full, ~5 MiB less heap than twelve fields each, and ~10 MiB less RSS (bench/RESULTS.md, fortieth session).
 */
export class CachedLink implements LinkTerms {
  constructor(
    readonly id: number,
    readonly shortCode: string,
    readonly longUrl: string,
    /** Visits counted so far, written or still buffered. */
    public visits: number,
    terms: LinkTerms,
  ) {
    this.#terms = sharedTerms(terms);
  }

  readonly #terms: LinkTerms;

  get domain(): string {
    return this.#terms.domain;
  }
  get status(): number | null {
    return this.#terms.status;
  }
  get forwardQuery(): boolean {
    return this.#terms.forwardQuery;
  }
  get validSince(): number | null {
    return this.#terms.validSince;
  }
  get validUntil(): number | null {
    return this.#terms.validUntil;
  }
  get maxVisits(): number | null {
    return this.#terms.maxVisits;
  }
  get rules(): readonly RedirectRule[] | null {
    return this.#terms.rules;
  }
  get passwordHash(): string | null {
    return this.#terms.passwordHash;
  }
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
    const link = new CachedLink(row.id, code, row.long_url, row.visits_total + pending, {
      domain,
      status: row.redirect_status,
      forwardQuery: row.forward_query === 1,
      validSince: row.valid_since,
      validUntil: row.valid_until,
      maxVisits: row.max_visits,
      rules: row.has_rules === 1 ? rulesFromRows(this.rules.forLink(row.id)) : null,
      passwordHash: row.password_hash,
    });
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
