/**
 * All SQL that writes the visits tables: raw rows, per-day roll-ups, whole-database totals, and the current day's
 * visitor salt and hashes. Called inside the visit flush's transaction.
 */
import type { Database } from "bun:sqlite";

export interface VisitRow {
  short_url_id: number | null;
  orphan_type: string | null;
  at: number;
  potential_bot: number;
  referer: string | null;
  user_agent: string | null;
  remote_addr: string | null;
  visited_url: string | null;
  redirect_url: string | null;
  country_code: string | null;
  country_name: string | null;
  region_name: string | null;
  city_name: string | null;
  latitude: number | null;
  longitude: number | null;
  timezone: string | null;
}

type Value = string | number | null;

/**
 * The highest raw visit id the database holds, 0 when none (or when it predates raw visits, schema 3): visits
 * recorded after that state have higher ones.
 */
export function lastVisitId(db: Database): number {
  if (db.query("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'visits'").get() === null) return 0;
  return (db.query("SELECT max(id) AS id FROM visits").get() as { id: number | null } | null)?.id ?? 0;
}

export const VISIT_COLUMNS = [
  "short_url_id",
  "orphan_type",
  "at",
  "potential_bot",
  "referer",
  "user_agent",
  "remote_addr",
  "visited_url",
  "redirect_url",
  "country_code",
  "country_name",
  "region_name",
  "city_name",
  "latitude",
  "longitude",
  "timezone",
] as const satisfies readonly (keyof VisitRow)[];
const COLUMNS = VISIT_COLUMNS;

/** Rows per multi-row INSERT of unlocated visits (9 parameters each, far below SQLite's limit of 32 766). */
const ROWS_PER_INSERT = 32;
/** How many rows (visits and visitor hashes) are written, at least, between two calls of the `between` hook. */
const ROWS_BETWEEN = 16;

/** The columns before the location ones (country_code onwards). */
export const UNLOCATED_COLUMNS = VISIT_COLUMNS.indexOf("country_code");

function prepareDomainDays(db: Database) {
  return {
    addToDomainDay: db.query<unknown, [string, number, number, number]>(
      `INSERT INTO domain_visit_days (domain, day, total, bots) VALUES (?1, ?2, ?3, ?4)
       ON CONFLICT (domain, day) DO UPDATE SET total = total + ?3, bots = bots + ?4`,
    ),
    liveLinks: db.query<{ id: number }, [string]>("SELECT id FROM short_urls WHERE id IN (SELECT value FROM json_each(?))"),
  };
}

export class VisitStore {
  readonly #insert;
  readonly #insertUnlocated;
  readonly #insertUnlocatedMany;
  readonly #addToDay;
  readonly #addToOrphanDay;
  readonly #addToTotals;
  readonly #salt;
  readonly #saltBefore;
  readonly #insertSalt;
  readonly #dropOldSalts;
  readonly #dropOldHashes;
  readonly #addHash;
  readonly #db: Database;
  /** Prepared on first use: `check` builds the app on a database that may predate domain_visit_days (schema 10). */
  #domainStatements: ReturnType<typeof prepareDomainDays> | undefined;
  #rowsSinceBetween = 0;

  /**
   * `between` runs after a statement that made ROWS_BETWEEN rows written since its last run (the visit writer's
   * thread steps aside there while the event loop waits for its CPU: lib/thread-priority.ts).
   */
  constructor(
    db: Database,
    private readonly between: (() => unknown) | null = null,
  ) {
    this.#db = db;
    this.#insert = db.query<unknown, Value[]>(`INSERT INTO visits (${COLUMNS.join(", ")}) VALUES (${COLUMNS.map(() => "?").join(", ")})`);
    const unlocated = COLUMNS.slice(0, UNLOCATED_COLUMNS);
    const placeholders = `(${unlocated.map(() => "?").join(", ")})`;
    this.#insertUnlocated = db.query<unknown, Value[]>(`INSERT INTO visits (${unlocated.join(", ")}) VALUES ${placeholders}`);
    this.#insertUnlocatedMany = db.query<unknown, Value[]>(
      `INSERT INTO visits (${unlocated.join(", ")}) VALUES ${Array(ROWS_PER_INSERT).fill(placeholders).join(", ")}`,
    );
    this.#addToDay = db.query<unknown, [number, number, number, number, number]>(
      `INSERT INTO visit_days (short_url_id, day, total, bots, visitors) VALUES (?1, ?2, ?3, ?4, ?5)
       ON CONFLICT (day, short_url_id) DO UPDATE SET total = total + ?3, bots = bots + ?4, visitors = visitors + ?5`,
    );
    this.#addToOrphanDay = db.query<unknown, [string, number, number, number, number]>(
      `INSERT INTO orphan_visit_days (orphan_type, day, total, bots, visitors) VALUES (?1, ?2, ?3, ?4, ?5)
       ON CONFLICT (orphan_type, day) DO UPDATE SET total = total + ?3, bots = bots + ?4, visitors = visitors + ?5`,
    );
    this.#addToTotals = db.query<unknown, [string, number, number]>(
      `INSERT INTO visit_totals (kind, total, bots) VALUES (?1, ?2, ?3)
       ON CONFLICT (kind) DO UPDATE SET total = total + ?2, bots = bots + ?3`,
    );
    this.#salt = db.query<{ salt: Uint8Array }, [number]>("SELECT salt FROM visitor_salts WHERE day = ?");
    this.#saltBefore = db.query<{ day: number; salt: Uint8Array }, [number]>(
      "SELECT day, salt FROM visitor_salts WHERE day < ? ORDER BY day DESC LIMIT 1",
    );
    this.#insertSalt = db.query<unknown, [number, Uint8Array]>("INSERT INTO visitor_salts (day, salt) VALUES (?, ?)");
    this.#dropOldSalts = db.query<unknown, [number]>("DELETE FROM visitor_salts WHERE day < ?");
    this.#dropOldHashes = db.query<unknown, [number]>("DELETE FROM visitor_hashes WHERE day < ?");
    this.#addHash = db.query<unknown, [number, number, Uint8Array]>(
      "INSERT OR IGNORE INTO visitor_hashes (day, scope, hash) VALUES (?, ?, ?)",
    );
  }

  /**
   * Raw rows, each its values in the order of VISIT_COLUMNS (positional binding: this runs for every visit), in
   * order. A row without a location has only the first UNLOCATED_COLUMNS values: binding fewer parameters is
   * measurably cheaper. Runs of unlocated rows go in multi-row INSERTs of ROWS_PER_INSERT rows, which measured at
   * about half the time per row of one INSERT each (bench/visit-flush.ts).
   */
  insert(rows: readonly Value[][]): void {
    let i = 0;
    while (i < rows.length) {
      const row = rows[i] as Value[];
      if (row.length !== UNLOCATED_COLUMNS) {
        this.#insert.run(...row);
        i++;
        this.#wrote(1);
        continue;
      }
      let end = i + 1;
      while (end < rows.length && end - i < ROWS_PER_INSERT && (rows[end] as Value[]).length === UNLOCATED_COLUMNS) end++;
      if (end - i === ROWS_PER_INSERT) this.#insertUnlocatedMany.run(...rows.slice(i, end).flat());
      else for (let j = i; j < end; j++) this.#insertUnlocated.run(...(rows[j] as Value[]));
      this.#wrote(end - i);
      i = end;
    }
  }

  addToDay(shortUrlId: number, day: number, total: number, bots: number, visitors: number): void {
    this.#addToDay.run(shortUrlId, day, total, bots, visitors);
  }

  addToOrphanDay(orphanType: string, day: number, total: number, bots: number, visitors: number): void {
    this.#addToOrphanDay.run(orphanType, day, total, bots, visitors);
  }

  /** Adds to a domain's day ('' for the default domain): the sum of its links' addToDay calls in one flush. */
  addToDomainDay(domain: string, day: number, total: number, bots: number): void {
    this.#domainStatements ??= prepareDomainDays(this.#db);
    this.#domainStatements.addToDomainDay.run(domain, day, total, bots);
  }

  /** Those of these link ids that still exist. */
  liveLinks(ids: readonly number[]): Set<number> {
    this.#domainStatements ??= prepareDomainDays(this.#db);
    return new Set(this.#domainStatements.liveLinks.all(JSON.stringify(ids)).map((r) => r.id));
  }

  /** `kind` is 'non_orphan' or an orphan type. */
  addToTotals(kind: string, total: number, bots: number): void {
    this.#addToTotals.run(kind, total, bots);
  }

  /**
   * The salt of `day`, made on the day's first visit by `make` from the latest salt stored before it (or null).
   * Salts and visitor hashes older than the day before are deleted then (the day before stays, for visits flushed just
   * after midnight): once a day is over they only let someone test guesses of who visited.
   */
  saltFor(day: number, make: (earlier: { day: number; salt: Uint8Array } | null) => Uint8Array): Uint8Array {
    const row = this.#salt.get(day);
    if (row !== null) return row.salt;
    const salt = make(this.saltBefore(day));
    this.#dropOldSalts.run(day - 1);
    this.#dropOldHashes.run(day - 1);
    this.#insertSalt.run(day, salt);
    return salt;
  }

  /**
   * Stores `salt` as `day`'s when the database holds no salt at all (a new database); true when it did. Takes the
   * write lock only then: a database that holds one is only read.
   */
  startChain(day: number, salt: Uint8Array): boolean {
    const any = this.#db.query("SELECT 1 FROM visitor_salts LIMIT 1");
    if (any.get() !== null) return false;
    return this.#db
      .transaction(() => {
        if (any.get() !== null) return false;
        this.#insertSalt.run(day, salt);
        return true;
      })
      .immediate();
  }

  /** The salt of `day` when the database has one (a standby reads its copy's: the primary's). */
  existingSalt(day: number): Uint8Array | null {
    return this.#salt.get(day)?.salt ?? null;
  }

  /** The latest salt stored for a day before `day`, with its day; null when none is. */
  saltBefore(day: number): { day: number; salt: Uint8Array } | null {
    return this.#saltBefore.get(day);
  }

  /** Records a visitor hash for the day and scope; true when it was not seen before. */
  addVisitor(day: number, scope: number, hash: Uint8Array): boolean {
    this.#wrote(1);
    return this.#addHash.run(day, scope, hash).changes === 1;
  }

  #wrote(rows: number): void {
    if (this.between === null) return;
    this.#rowsSinceBetween += rows;
    if (this.#rowsSinceBetween < ROWS_BETWEEN) return;
    this.#rowsSinceBetween = 0;
    this.between();
  }
}
