/**
 * Turns flushed visits into raw visit rows and roll-ups (per link and day, per domain and day, per orphan type and
 * day, whole-database totals), in the flush's transaction, applying the privacy settings. The client's address is
 * used here, in memory, for location and the day's distinct-visitor hash, and is then stored anonymised or not at all.
 */
import type { VisitStore } from "../storage/visit-store";
import type { LinkEvent, LinkEventListener, LinkEventType } from "./link-events";
import type { OrphanType, Visit, VisitSink } from "./visit-buffer";
import type { ShippedVisit } from "./visit-shipment";
import { randomSalt, saltFollowing } from "./visitor-salt";

export interface VisitLocation {
  countryCode: string | null;
  countryName: string | null;
  regionName: string | null;
  cityName: string | null;
  latitude: number | null;
  longitude: number | null;
  timezone: string | null;
}

export interface PrivacySettings {
  /** Store the client's address with its host part zeroed (IPv4 /24, IPv6 /48). Default on. */
  anonymizeRemoteAddr: boolean;
  trackRemoteAddr: boolean;
  trackReferrer: boolean;
  trackUserAgent: boolean;
}

export const DEFAULT_PRIVACY: Readonly<PrivacySettings> = Object.freeze({
  anonymizeRemoteAddr: true,
  trackRemoteAddr: true,
  trackReferrer: true,
  trackUserAgent: true,
});

/** Just the privacy settings of a larger settings object (the visit writer's thread gets a copy of them). */
export function privacySettings(settings: Readonly<PrivacySettings>): PrivacySettings {
  const { anonymizeRemoteAddr, trackRemoteAddr, trackReferrer, trackUserAgent } = settings;
  return { anonymizeRemoteAddr, trackRemoteAddr, trackReferrer, trackUserAgent };
}

/** Visitor-hash scopes of the orphan types (link scopes are link ids, which are positive). */
const ORPHAN_SCOPE: Record<OrphanType, number> = { base_url: -1, invalid_short_url: -2, regular_404: -3 };

const DAY_MS = 86_400_000;

/** UTC days since the epoch. */
export function dayOf(epochMs: number): number {
  return Math.floor(epochMs / DAY_MS);
}

/** The address with its host part zeroed: IPv4 keeps /24, IPv6 keeps /48. Anything else is dropped. */
export function anonymizeIp(ip: string): string | null {
  const v4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.\d{1,3}$/.exec(ip);
  if (v4) return `${v4[1]}.${v4[2]}.${v4[3]}.0`;
  const mapped = /^::ffff:(\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3})$/i.exec(ip);
  if (mapped) return anonymizeIp(mapped[1] as string);
  if (!ip.includes(":")) return null;
  const [head = "", tail] = ip.split("::");
  const groups = head === "" ? [] : head.split(":");
  // With "::" the missing groups are zeros; keep the first three (the /48) either way.
  const full = tail === undefined ? groups : [...groups, ...Array(Math.max(0, 8 - groups.length)).fill("0")];
  const prefix = full.slice(0, 3);
  while (prefix.length < 3) prefix.push("0");
  return `${prefix.map((g) => g.toLowerCase()).join(":")}::`;
}

interface Tally {
  scope: number;
  /** The link's domain ('' for the default one, and for orphan scopes). */
  domain: string;
  day: number;
  total: number;
  bots: number;
  visitors: number;
  /** The last visitor tallied here: a link's visits in one flush mostly come from a few, so repeats skip the set. */
  lastIp: string | null | undefined;
  lastAgent: string | null | undefined;
}

/** A number naming (scope, day) for the flush's tallies: days stay below 2^17 until the year 2328. */
function dayKey(scope: number, day: number): number {
  return scope * 131_072 + day;
}

/** The visit counted in its (scope, day)'s tally of the flush (its visitor is the caller's to count); returns it. */
function tallied(days: Map<number, Tally>, visit: Pick<Visit, "link" | "orphanType" | "at" | "bot">): Tally {
  const day = dayOf(visit.at);
  const scope = visit.link === null ? ORPHAN_SCOPE[visit.orphanType as OrphanType] : visit.link.id;
  const key = dayKey(scope, day);
  let t = days.get(key);
  if (t === undefined) {
    t = { scope, domain: visit.link?.domain ?? "", day, total: 0, bots: 0, visitors: 0, lastIp: undefined, lastAgent: undefined };
    days.set(key, t);
  }
  t.total++;
  if (visit.bot) t.bots++;
  return t;
}

const SCOPE_ORPHAN: Record<number, OrphanType> = { [-1]: "base_url", [-2]: "invalid_short_url", [-3]: "regular_404" };

/**
 * How many (day, scope, address, user agent) are remembered, so repeat visitors skip the hash and SQLite: enough for
 * one visitor on each of the 100 000 links the cache holds by default, twice. Remembered as 53-bit hashes of those
 * (~26 bytes each, ~5 MB at the limit, where the key strings themselves take ~200 bytes each).
 */
const SEEN_LIMIT = 200_000;
const SEEN_KEY_BITS = 0x1f_ffff_ffff_ffffn;
const MEMO_LIMIT = 10_000;
/** How long a link deleted by this process stays suspect: visits buffered before its deletion are flushed by then. */
const DELETED_SUSPECT_MS = 10 * 60_000;

/** What the visits tables keep of a client's address under the privacy settings; anonymised ones are remembered. */
export class KeptAddresses {
  #anonymized = new Map<string, string | null>();

  constructor(private readonly privacy: Readonly<PrivacySettings>) {}

  kept(ip: string | null): string | null {
    const { privacy } = this;
    if (!privacy.trackRemoteAddr || ip === null) return null;
    if (!privacy.anonymizeRemoteAddr) return ip;
    let anonymized = this.#anonymized.get(ip);
    if (anonymized === undefined) {
      anonymized = anonymizeIp(ip);
      if (this.#anonymized.size >= MEMO_LIMIT) this.#anonymized = new Map();
      this.#anonymized.set(ip, anonymized);
    }
    return anonymized;
  }
}

/**
 * Stores the day's salt when the database holds none, at a primary's start: a new deployment's standby, serving while
 * the primary is down before it counted its first visit, then finds the chain in its copy and hashes visitors as the
 * primary will once back (or as itself once promoted). True when it stored one.
 */
export function startSaltChain(store: VisitStore, now: number = Date.now()): boolean {
  return store.startChain(dayOf(now), randomSalt());
}

export class VisitRecorder implements VisitSink, LinkEventListener {
  readonly #salts = new Map<number, Uint8Array>();
  /** Visitors already counted, keyed by day, scope, address and user agent: in memory only, bounded. */
  #seen = new Set<number>();
  /**
   * Visitors and day salts the current flush added: remembered only once it commits. A flush that rolls back (a full
   * disk) wrote neither, and its visits come back in the next one, whose visitors must count then.
   */
  readonly #seenNow = new Set<number>();
  readonly #saltsNow = new Map<number, Uint8Array>();
  readonly #addresses: KeptAddresses;
  /** Where visitor hashes are computed; Bun wants room for the longest digest it knows. */
  readonly #digest = new Uint8Array(64);
  /** Links this process deleted lately, with when: their buffered visits must not count for their domain. */
  readonly #deleted = new Map<number, number>();

  constructor(
    private readonly store: VisitStore,
    private readonly privacy: Readonly<PrivacySettings> = DEFAULT_PRIVACY,
    /** Location of a client address (a local MaxMind-format database), or null when none is configured. */
    private readonly locate: ((ip: string) => VisitLocation | null) | null = null,
    /** The first salt of a database that stored none (and of a day past the chain's reach). */
    private readonly firstSalt: () => Uint8Array = randomSalt,
  ) {
    this.#addresses = new KeptAddresses(privacy);
  }

  write(visits: readonly Visit[]): void {
    this.#seenNow.clear();
    this.#saltsNow.clear();
    const days = new Map<number, Tally>();
    const rows: (string | number | null)[][] = [];
    for (const visit of visits) {
      const t = tallied(days, visit);
      if ((visit.ip !== t.lastIp || visit.userAgent !== t.lastAgent) && this.#newVisitor(t.day, t.scope, visit)) t.visitors++;
      t.lastIp = visit.ip;
      t.lastAgent = visit.userAgent;
      rows.push(this.#values(visit));
    }
    // Rows in flush order: within a link, id order stays time order (the visit lists page by id).
    this.store.insert(rows);
    this.#addDays(days);
  }

  /**
   * A standby's visits, taken from its shipment (domain/visit-shipment.ts): raw rows and roll-ups as `write` makes
   * them, but the privacy settings were applied on the standby, and the visitor hash is the one it worked out. Their
   * links exist (the caller dropped those deleted since). Inside the caller's transaction.
   */
  writeShipped(visits: readonly ShippedVisit[]): void {
    const days = new Map<number, Tally>();
    const rows: (string | number | null)[][] = [];
    for (const visit of visits) {
      const t = tallied(days, visit);
      if (this.store.addVisitor(t.day, t.scope, Buffer.from(visit.visitor, "hex"))) t.visitors++;
      rows.push(shippedValues(visit));
    }
    this.store.insert(rows);
    this.#addDays(days);
  }

  /** The day tallies' roll-ups: per orphan type and day, whole-database totals, per domain and day. */
  #addDays(days: Map<number, Tally>): void {
    // Whole-database totals per kind ('non_orphan' or an orphan type), summed from the day tallies.
    const totals = new Map<string, { total: number; bots: number }>();
    for (const t of days.values()) {
      const orphanType = SCOPE_ORPHAN[t.scope];
      if (orphanType === undefined) this.store.addToDay(t.scope, t.day, t.total, t.bots, t.visitors);
      else this.store.addToOrphanDay(orphanType, t.day, t.total, t.bots, t.visitors);
      const kind = orphanType ?? "non_orphan";
      const total = totals.get(kind) ?? { total: 0, bots: 0 };
      total.total += t.total;
      total.bots += t.bots;
      totals.set(kind, total);
    }
    for (const [kind, t] of totals) this.store.addToTotals(kind, t.total, t.bots);
    this.#addToDomains(days);
  }

  /** After the flush's commit: what it wrote of visitors and salts is in the database, so it can be remembered. */
  committed(): void {
    if (this.#seen.size + this.#seenNow.size > SEEN_LIMIT) this.#seen = new Set();
    for (const who of this.#seenNow) this.#seen.add(who);
    for (const [day, salt] of this.#saltsNow) {
      if (this.#salts.size > 3) this.#salts.clear();
      this.#salts.set(day, salt);
    }
    this.#seenNow.clear();
    this.#saltsNow.clear();
  }

  wants(type: LinkEventType): boolean {
    return type === "link.deleted";
  }

  /** In the deletion's transaction, so no flush after it counts the link's buffered visits for its domain. */
  inTransaction(event: LinkEvent): void {
    this.#deleted.set(event.shortUrl.id, Date.now());
  }

  /**
   * The per-domain day roll-ups: the links' day tallies summed by domain, one upsert per domain and day. A link
   * this process deleted lately (its link.deleted event) counts only if it still exists (the deletion rolled back):
   * its days left its domain when it was deleted.
   */
  #addToDomains(days: Map<number, Tally>): void {
    const now = Date.now();
    for (const [id, at] of this.#deleted) if (now - at > DELETED_SUSPECT_MS) this.#deleted.delete(id);
    let live: Set<number> | undefined;
    if (this.#deleted.size > 0) {
      const suspects = [...days.values()].filter((t) => this.#deleted.has(t.scope)).map((t) => t.scope);
      if (suspects.length > 0) live = this.store.liveLinks(suspects);
    }
    const sums = new Map<string, { domain: string; day: number; total: number; bots: number }>();
    for (const t of days.values()) {
      if (t.scope < 0 || (this.#deleted.has(t.scope) && !live?.has(t.scope))) continue;
      const key = `${t.day}\u0000${t.domain}`;
      const sum = sums.get(key);
      if (sum === undefined) sums.set(key, { domain: t.domain, day: t.day, total: t.total, bots: t.bots });
      else {
        sum.total += t.total;
        sum.bots += t.bots;
      }
    }
    for (const sum of sums.values()) this.store.addToDomainDay(sum.domain, sum.day, sum.total, sum.bots);
  }

  /**
   * Whether this is the visitor's first visit to the scope that day. The database keeps salted hashes (so the count
   * survives restarts); the in-memory set spares repeat visitors the hash and the insert (it learns this flush's
   * visitors only when the flush commits). Two visitors whose keys hash alike (odds ~2^-35 per lookup at the limit)
   * undercount one.
   */
  #newVisitor(day: number, scope: number, visit: Visit): boolean {
    const who = Number(Bun.hash(`${day}\u0000${scope}\u0000${visit.ip ?? ""}\u0000${visit.userAgent ?? ""}`) & SEEN_KEY_BITS);
    if (this.#seen.has(who) || this.#seenNow.has(who)) return false;
    this.#seenNow.add(who);
    return this.store.addVisitor(day, scope, this.#visitorHash(day, visit));
  }

  /**
   * A salted hash of who visited (address and user agent), for counting distinct visitors of the day: a view of a
   * reused array, valid until the next call (the caller binds it at once).
   */
  #visitorHash(day: number, visit: Visit): Uint8Array {
    let salt = this.#salts.get(day) ?? this.#saltsNow.get(day);
    if (salt === undefined) {
      salt = this.store.saltFor(day, (earlier) => saltFollowing(earlier, day) ?? this.firstSalt());
      this.#saltsNow.set(day, salt);
    }
    const hasher = new Bun.CryptoHasher("sha256");
    hasher.update(salt);
    hasher.update(`${visit.ip ?? ""}\u0000${visit.userAgent ?? ""}`);
    // Into a reused array (half the cost of a new Buffer): the caller binds the view, and SQLite copies it, at once.
    hasher.digest(this.#digest);
    return this.#digest.subarray(0, 16);
  }

  /** The raw row's values, in VISIT_COLUMNS order; the location ones only when there is a location. */
  #values(visit: Visit): (string | number | null)[] {
    const { privacy } = this;
    const values: (string | number | null)[] = [
      visit.link?.id ?? null,
      visit.link === null ? visit.orphanType : null,
      visit.at,
      visit.bot ? 1 : 0,
      privacy.trackReferrer ? visit.referer : null,
      privacy.trackUserAgent ? visit.userAgent : null,
      this.#addresses.kept(visit.ip),
      visit.visitedUrl,
      visit.redirectUrl,
    ];
    const location = visit.ip !== null && this.locate !== null ? this.locate(visit.ip) : null;
    if (location !== null) {
      values.push(
        location.countryCode,
        location.countryName,
        location.regionName,
        location.cityName,
        location.latitude,
        location.longitude,
        location.timezone,
      );
    }
    return values;
  }
}

/** A shipped visit's raw row values, in VISIT_COLUMNS order, as VisitRecorder's own rows are. */
function shippedValues(visit: ShippedVisit): (string | number | null)[] {
  const values: (string | number | null)[] = [
    visit.link?.id ?? null,
    visit.link === null ? visit.orphanType : null,
    visit.at,
    visit.bot ? 1 : 0,
    visit.referer,
    visit.userAgent,
    visit.remoteAddr,
    visit.visitedUrl,
    visit.redirectUrl,
  ];
  const place = visit.location;
  if (place === null) return values;
  values.push(place.countryCode, place.countryName, place.regionName, place.cityName, place.latitude, place.longitude, place.timezone);
  return values;
}
