/** Link management: create, read, edit, delete and list short URLs. Never sees HTTP. */
import { AppError, forbidden, nonUniqueSlug, shortUrlNotFound, unavailable } from "../errors";
import { batchesOf, type LinkBatches, type ListLinks } from "../storage/background-reader";
import type { GroupCommit } from "../storage/group-commit";
import type { LinkPasswordStore } from "../storage/link-password-store";
import type { RedirectRuleStore } from "../storage/redirect-rule-store";
import type { ShortUrlChanges, ShortUrlRow, ShortUrlStore } from "../storage/short-url-store";
import type { TagStore } from "../storage/tag-store";
import type { ApiKey } from "./api-keys";
import { type AuditLog, createdFacts, keyActor, linkChanges, linkFacts } from "./audit-log";
import type { LinkEvent, LinkEventListener, LinkEventType } from "./link-events";
import { type LinkPasswords, passwordsForCreates } from "./link-passwords";
import type { LinkResolver } from "./link-resolver";
import type { ShortUrlListQuery } from "./list-query";
import { generateShortCode } from "./short-code";
import { type CreateShortUrlInput, newLinkRow, normalizeDomain, type ShortUrlMeta } from "./short-url-input";
import { rethrowUnconfirmed, unconfirmedCreate } from "./unconfirmed-write";

/** A short URL as the domain sees it; `domain` is null for the default domain. */
export interface ShortUrl {
  id: number;
  shortCode: string;
  domain: string | null;
  longUrl: string;
  title: string | null;
  crawlable: boolean;
  forwardQuery: boolean;
  redirectStatus: number | null;
  validSince: number | null;
  validUntil: number | null;
  maxVisits: number | null;
  createdAt: number;
  visitsTotal: number;
  visitsBots: number;
  tags: string[];
  hasRedirectRules: boolean;
  /** Visitors must give the link's password before it redirects (domain/link-passwords.ts). */
  passwordProtected: boolean;
}

export interface Page<T> {
  items: T[];
  page: number;
  itemsPerPage: number;
  total: number;
}

const GENERATION_ATTEMPTS = 8;

/** A link listing that may run elsewhere (another thread, its own connection). */
type ListLinksAsync = (...args: Parameters<ListLinks>) => Promise<ReturnType<ListLinks>>;
/** The same in batches of `batch` rows, as they are asked for. */
type OpenLinkList = (...args: [...Parameters<ListLinks>, batch: number]) => Promise<LinkBatches>;

/**
 * Links per batch of a listing of every link: each is read, hydrated and written out on its own (a few ms), so
 * that at 1 000 000 links (~450 MB of JSON) neither the event loop nor memory carries the whole listing.
 */
export const ALL_LINKS_BATCH = 200;

/** Every link a query matches, in batches of hydrated links until an empty one; `close` ends it early. */
export interface LinkListing {
  next(): Promise<ShortUrl[]>;
  close(): void;
}

/** An event built inside a write, with the listeners that wanted it (told again after the commit). */
interface Emitted {
  event: LinkEvent;
  listeners: readonly LinkEventListener[];
}

export class ShortUrlService {
  /** robots.txt's codes per stored domain key, until the next link write. */
  readonly #crawlable = new Map<string, readonly string[]>();

  constructor(
    private readonly deps: {
      writes: GroupCommit;
      shortUrls: ShortUrlStore;
      tags: TagStore;
      redirectRules: RedirectRuleStore;
      /** Password-protected links' hashes, and the hasher that makes and checks them. */
      passwords: { store: LinkPasswordStore; hasher: LinkPasswords };
      resolver: LinkResolver;
      defaultDomain: string;
      shortCodeLength: number;
      /** Visits recorded but not yet flushed, so API totals match redirects served. */
      pendingVisits: (id: number) => { total: number; bots: number };
      /** Told of every non-default domain that gets a link. */
      onDomainUsed?: (domain: string) => void;
      /** Throws (for example 503) when writes must be refused. */
      guardWrites?: () => void;
      /** Told of every link created, edited or deleted (see LinkEventListener). */
      linkEvents?: readonly LinkEventListener[];
      /** Lists links off the event loop (storage/background-reader.ts); by default shortUrls.list here. */
      listLinks?: ListLinksAsync;
      /** Lists links in batches off the event loop; by default shortUrls.list here, whole. */
      openLinkList?: OpenLinkList;
      /** How many visit flushes have committed so far: tells whether counters read elsewhere may be behind. */
      visitFlushes?: () => number;
      /** Records who created, edited or deleted each link, in the change's transaction. */
      audit?: AuditLog;
    },
  ) {}

  /** The stored domain key for a client-supplied domain: '' for the default domain or none. */
  domainKey(domain: string | null | undefined): string {
    if (domain === null || domain === undefined || domain === "" || domain === "DEFAULT") return "";
    const normalized = normalizeDomain(domain) ?? domain;
    return normalized === this.deps.defaultDomain ? "" : normalized;
  }

  async create(input: CreateShortUrlInput, key: ApiKey): Promise<ShortUrl> {
    return (await this.createMany([input], key))[0] as ShortUrl;
  }

  /**
   * Creates every link of `inputs` in one transaction, or none: a refused one (a taken slug, say) rolls the others
   * back, and its error names its index when there are several (`shortUrls[3]: …`).
   */
  async createMany(inputs: readonly CreateShortUrlInput[], key: ApiKey): Promise<ShortUrl[]> {
    this.assertCanWrite(key);
    const candidates = (input: CreateShortUrlInput) => this.deps.shortUrls.findByLongUrl(input.longUrl, this.domainKey(input.domain));
    const secrets = await passwordsForCreates(inputs, this.deps.passwords, candidates);
    const events: Emitted[] = [];
    const ids = await this.#write(() =>
      inputs.map((input, index) => {
        try {
          return this.#insert(input, key, events, secrets.hashes[index] ?? null, secrets.unlocked);
        } catch (error) {
          if (inputs.length === 1 || !(error instanceof AppError)) throw error;
          const { status, code, title, detail, extras, headers } = error;
          throw new AppError(status, code, title, `shortUrls[${index}]: ${detail}`, { ...extras, index }, headers);
        }
      }),
    );
    this.#published(events);
    return ids.map((id) => this.#byId(id));
  }

  /** Inside a write: one link created (or, with findIfExists, found), its audit event and link event. */
  #insert(input: CreateShortUrlInput, key: ApiKey, events: Emitted[], hash: string | null, unlocked: Set<number>): number {
    const domain = this.domainKey(input.domain);
    if (input.findIfExists) {
      const existing = this.#findMatching(input, domain, unlocked);
      if (existing !== null) return existing.id;
    }
    const row = newLinkRow(input, domain, Date.now(), key.id);
    let newId: number | null = null;
    let code = "";
    if (input.customSlug !== undefined) {
      code = input.customSlug;
      newId = this.deps.shortUrls.insert({ ...row, short_code: input.customSlug });
      if (newId === null) throw nonUniqueSlug(input.customSlug, domain === "" ? null : domain);
      this.deps.resolver.invalidate(domain, input.customSlug);
    } else {
      const length = input.shortCodeLength ?? this.deps.shortCodeLength;
      for (let attempt = 0; newId === null && attempt < GENERATION_ATTEMPTS; attempt++) {
        code = generateShortCode(length + Math.floor(attempt / 4));
        newId = this.deps.shortUrls.insert({ ...row, short_code: code });
        if (newId !== null) this.deps.resolver.invalidate(domain, code);
      }
      if (newId === null) throw unavailable("Could not find a free short code; try again or ask for a longer one.", 1);
    }
    if (input.tags && input.tags.length > 0) this.deps.tags.setTags(newId, input.tags);
    // Another process serving this database lists crawlable codes in its robots.txt too.
    if (input.crawlable === true) this.deps.resolver.changed(domain, code);
    if (hash !== null) this.deps.passwords.store.set(newId, hash);
    if (domain !== "") this.deps.onDomainUsed?.(domain);
    this.deps.audit?.record(keyActor(key), "short-url.created", { domain, shortCode: code }, createdFacts(input));
    this.#emit(events, "link.created", newId);
    return newId;
  }

  get(shortCode: string, domain: string | null | undefined): ShortUrl {
    const key = this.domainKey(domain);
    const row = this.deps.shortUrls.find(key, shortCode);
    if (row === null) throw shortUrlNotFound(shortCode, key === "" ? null : key);
    return this.#hydrate([row])[0] as ShortUrl;
  }

  async edit(shortCode: string, domain: string | null | undefined, changes: ShortUrlMeta, key: ApiKey): Promise<ShortUrl> {
    this.assertCanWrite(key);
    const domainKey = this.domainKey(domain);
    const password = changes.password;
    const hash = typeof password === "string" ? await this.deps.passwords.hasher.hash(password) : password;
    const events: Emitted[] = [];
    await this.#write(() => {
      const row = this.deps.shortUrls.find(domainKey, shortCode);
      if (row === null) throw shortUrlNotFound(shortCode, domainKey === "" ? null : domainKey);
      const before = this.#byId(row.id);
      const update: ShortUrlChanges = {};
      if (changes.longUrl !== undefined) update.long_url = changes.longUrl;
      if (changes.title !== undefined) update.title = changes.title;
      if (changes.crawlable !== undefined) update.crawlable = changes.crawlable ? 1 : 0;
      if (changes.forwardQuery !== undefined) update.forward_query = changes.forwardQuery ? 1 : 0;
      if (changes.redirectStatus !== undefined) update.redirect_status = changes.redirectStatus;
      if (changes.validSince !== undefined) update.valid_since = changes.validSince;
      if (changes.validUntil !== undefined) update.valid_until = changes.validUntil;
      if (changes.maxVisits !== undefined) update.max_visits = changes.maxVisits;
      this.deps.shortUrls.update(row.id, update);
      if (changes.tags !== undefined) this.deps.tags.setTags(row.id, changes.tags);
      if (hash !== undefined) this.deps.passwords.store.set(row.id, hash);
      this.deps.resolver.changed(domainKey, shortCode);
      const after = this.#byId(row.id);
      const changed = linkChanges(before, after);
      // A new password on a protected link changes no field shown; the event says so, never what it is.
      if (typeof password === "string" && before.passwordProtected) changed.password = { from: "(hidden)", to: "(hidden, changed)" };
      if (Object.keys(changed).length > 0)
        this.deps.audit?.record(keyActor(key), "short-url.edited", { domain: domainKey, shortCode }, { changes: changed });
      this.#emit(events, "link.updated", after);
    });
    this.#published(events);
    return this.get(shortCode, domainKey === "" ? null : domainKey);
  }

  async delete(shortCode: string, domain: string | null | undefined, key: ApiKey): Promise<void> {
    this.assertCanWrite(key);
    const domainKey = this.domainKey(domain);
    const events: Emitted[] = [];
    await this.#write(() => {
      const row = this.deps.shortUrls.find(domainKey, shortCode);
      if (row === null) throw shortUrlNotFound(shortCode, domainKey === "" ? null : domainKey);
      const gone = this.#byId(row.id);
      this.deps.audit?.record(keyActor(key), "short-url.deleted", { domain: domainKey, shortCode }, linkFacts(gone));
      this.#emit(events, "link.deleted", gone);
      this.deps.shortUrls.delete(row.id);
      this.deps.resolver.changed(domainKey, shortCode);
    });
    this.#published(events);
  }

  async list(query: ShortUrlListQuery): Promise<Page<ShortUrl>> {
    const all = query.itemsPerPage === -1;
    const limit = all ? -1 : query.itemsPerPage;
    const offset = all ? 0 : (query.page - 1) * query.itemsPerPage;
    const exact = this.#exactCounters();
    const listed = this.deps.listLinks
      ? await this.deps.listLinks(query.filter, query.order, limit, offset)
      : this.deps.shortUrls.list(query.filter, query.order, limit, offset);
    const rows = exact(listed.rows);
    const total = listed.total;
    // As Shlink: "all items" reports the total as the page size, and at least 1 so the page count stays 1.
    return { items: this.#hydrate(rows), page: all ? 1 : query.page, itemsPerPage: all ? Math.max(1, total) : query.itemsPerPage, total };
  }

  /**
   * Every link the query matches (Shlink's `itemsPerPage` -1), as batches to be written out one by one. Counters are
   * made exact per batch as in `list`: the listing reads one snapshot, so once a visit flush commits after it was
   * opened, each batch's counters are read again here.
   */
  async listAll(query: ShortUrlListQuery): Promise<LinkListing> {
    const exact = this.#exactCounters();
    const batches = this.deps.openLinkList
      ? await this.deps.openLinkList(query.filter, query.order, -1, 0, ALL_LINKS_BATCH)
      : batchesOf(this.deps.shortUrls.list(query.filter, query.order, -1, 0), ALL_LINKS_BATCH);
    return {
      next: async () => this.#hydrate(exact(await batches.next())),
      close: () => batches.close(),
    };
  }

  /**
   * Call before rows are read (possibly by another connection); the returned function gives those rows with exact
   * counters. Stored counters read before a flush that has since committed predate it, while the pending counts
   * #hydrate adds no longer hold its visits: such rows get their counters read again here.
   */
  #exactCounters(): (rows: ShortUrlRow[]) => ShortUrlRow[] {
    const flushes = this.deps.visitFlushes ?? (() => 0);
    const before = flushes();
    return (rows) => (flushes() === before ? rows : this.deps.shortUrls.withCurrentCounters(rows));
  }

  /** Forgets what was read from the database (resolved links, robots.txt codes): another process changed it (a standby's copy). */
  forgetCached(): void {
    this.#crawlable.clear();
    this.deps.resolver.clear();
  }

  /** Forgets what was read of one code (its resolved link, robots.txt codes): another process changed it (the other colour). */
  forgetChanged(domain: string, shortCode: string): void {
    this.#crawlable.clear();
    this.deps.resolver.invalidate(domain, shortCode);
  }

  /**
   * Crawlable codes of a domain, for robots.txt: read once and kept until the next link write here or, seen in the
   * journal, in another process (robots.txt is public, and a domain may have many crawlable links). The same array
   * until then.
   */
  crawlableCodes(domain: string): readonly string[] {
    const key = this.domainKey(domain);
    const codes = this.#crawlable.get(key) ?? this.deps.shortUrls.crawlableCodes(key);
    this.#crawlable.set(key, codes);
    return codes;
  }

  /** Non-default domains that hold links. */
  domains(): string[] {
    return this.deps.shortUrls.domains();
  }

  /** Throws when this key may not change links, or this node refuses writes now (a standby, a lagging replica). */
  assertCanWrite(key: ApiKey): void {
    if (key.role === "read-only") throw forbidden("This API key is read-only.");
    this.deps.guardWrites?.();
  }

  /**
   * A write through the group commit; with replicated durability, an unconfirmed one becomes a 503. The cached
   * robots.txt codes are dropped inside it: the shared transaction commits in the same tick, so no read between
   * the commit and the drop can cache the state before it.
   */
  #write<T>(write: () => T): Promise<T> {
    const run = () => {
      this.#crawlable.clear();
      return write();
    };
    return this.deps.writes
      .run(run)
      .catch(rethrowUnconfirmed((value) => unconfirmedCreate(value, (id) => this.deps.shortUrls.findById(id))));
  }

  #findMatching(input: CreateShortUrlInput, domain: string, unlocked: Set<number>): ShortUrlRow | null {
    const candidates = this.deps.shortUrls.findByLongUrl(input.longUrl, domain);
    if (candidates.length === 0) return null;
    const tagsOf = this.deps.tags.tagsFor(candidates.map((c) => c.id));
    const locked = this.deps.passwords.store.protectedOf(candidates.map((c) => c.id));
    const wantedTags = [...(input.tags ?? [])].sort().join("\u0000");
    return (
      candidates.find(
        (c) =>
          (input.customSlug === undefined || c.short_code === input.customSlug) &&
          (typeof input.password === "string" ? unlocked.has(c.id) : !locked.has(c.id)) &&
          (input.validSince === undefined || c.valid_since === input.validSince) &&
          (input.validUntil === undefined || c.valid_until === input.validUntil) &&
          (input.maxVisits === undefined || c.max_visits === input.maxVisits) &&
          (input.tags === undefined || [...(tagsOf.get(c.id) ?? [])].sort().join("\u0000") === wantedTags),
      ) ?? null
    );
  }

  /** Inside a write: hands the event to the in-transaction listeners and keeps it for after the commit. */
  #emit(events: Emitted[], type: LinkEventType, link: ShortUrl | number): void {
    const listeners = this.deps.linkEvents?.filter((listener) => listener.wants?.(type) ?? true);
    if (listeners === undefined || listeners.length === 0) return;
    const event: LinkEvent = { type, shortUrl: typeof link === "number" ? this.#byId(link) : link, at: Date.now() };
    for (const listener of listeners) listener.inTransaction?.(event);
    events.push({ event, listeners });
  }

  /** After the commit: the after-commit listeners that wanted each event, each shielded from the others. */
  #published(events: readonly Emitted[]): void {
    for (const { event, listeners } of events) {
      for (const listener of listeners) {
        try {
          listener.afterCommit?.(event);
        } catch {
          // Committed is committed: a failing fan-out must not turn the answer into an error.
        }
      }
    }
  }

  #byId(id: number): ShortUrl {
    return this.#hydrate([this.deps.shortUrls.findById(id) as ShortUrlRow])[0] as ShortUrl;
  }

  #hydrate(rows: ShortUrlRow[]): ShortUrl[] {
    const ids = rows.map((r) => r.id);
    const tags = this.deps.tags.tagsFor(ids);
    const withRules = this.deps.redirectRules.linksWithRules(ids);
    const locked = this.deps.passwords.store.protectedOf(ids);
    return rows.map((r) => {
      const pending = this.deps.pendingVisits(r.id);
      return {
        id: r.id,
        shortCode: r.short_code,
        domain: r.domain === "" ? null : r.domain,
        longUrl: r.long_url,
        title: r.title,
        crawlable: r.crawlable === 1,
        forwardQuery: r.forward_query === 1,
        redirectStatus: r.redirect_status,
        validSince: r.valid_since,
        validUntil: r.valid_until,
        maxVisits: r.max_visits,
        createdAt: r.created_at,
        visitsTotal: r.visits_total + pending.total,
        visitsBots: r.visits_bots + pending.bots,
        tags: tags.get(r.id) ?? [],
        hasRedirectRules: withRules.has(r.id),
        passwordProtected: locked.has(r.id),
      };
    });
  }
}
