/**
 * The shipments of standby visits this database has taken (domain/visit-inbox.ts), by name: written in the
 * transaction that writes their visits, so a shipment taken again (its object was not removed, or its spool file
 * was also put in the bucket) is seen and not counted twice. `import db` keeps its batches of an old primary's later
 * visits here the same way (ops/import-later-visits.ts).
 */
import type { Database } from "bun:sqlite";
import { preparedOnFirstUse } from "./first-use";

export const TAKEN_SHIPMENTS_SCHEMA = `
  CREATE TABLE taken_visit_shipments (
    name TEXT PRIMARY KEY,
    taken_at INTEGER NOT NULL,
    visits INTEGER NOT NULL
  ) STRICT, WITHOUT ROWID;
`;

/** The names of `import db`'s batches of an old primary's later visits start so (ops/import-later-visits.ts). */
export const IMPORTED_BATCH_PREFIX = "import-db:";

export interface ImportedBatches {
  latest: number;
  batches: number;
}

/** Whether `now` says batches were imported since `before`. */
export function importedSince(before: ImportedBatches, now: ImportedBatches): boolean {
  return now.latest > before.latest || (now.latest === before.latest && now.batches > before.batches);
}

/**
 * How long a taken shipment's name is kept: far longer than its object or spool file can outlive its taking. `import
 * db`'s batch names are kept for good: the file they came from may be imported from again at any time, and they are
 * few (one per 5 000 visits).
 */
const KEPT_MS = 30 * 86_400_000;

/** The names that start with `prefix`, as a range of the primary key: from it to it with its last character one higher. */
function prefixRange(prefix: string): [string, string] {
  return [prefix, prefix.slice(0, -1) + String.fromCharCode(prefix.charCodeAt(prefix.length - 1) + 1)];
}

function prepare(db: Database) {
  return {
    has: db.query<{ visits: number }, [string]>("SELECT visits FROM taken_visit_shipments WHERE name = ?"),
    add: db.query<unknown, [string, number, number]>("INSERT INTO taken_visit_shipments (name, taken_at, visits) VALUES (?, ?, ?)"),
    // import db's names are left out (between ?2 and ?3): see KEPT_MS.
    prune: db.query<unknown, [number, string, string]>(
      "DELETE FROM taken_visit_shipments WHERE taken_at < ?1 AND NOT (name >= ?2 AND name < ?3)",
    ),
    named: db.query<{ name: string }, [string, string]>(
      "SELECT name FROM taken_visit_shipments WHERE name >= ? AND name < ? ORDER BY name",
    ),
    // The latest batch's time, and how many were written in that millisecond.
    imported: db.query<{ latest: number | null; batches: number }, [string, string, string, string]>(
      `SELECT taken_at AS latest, count(*) AS batches FROM taken_visit_shipments WHERE name >= ? AND name < ?
         AND taken_at = (SELECT max(taken_at) FROM taken_visit_shipments WHERE name >= ? AND name < ?)`,
    ),
  };
}

export class ShipmentLedger {
  readonly #statements;

  constructor(db: Database) {
    this.#statements = preparedOnFirstUse(db, prepare);
  }

  has(name: string): boolean {
    return this.taken(name) !== null;
  }

  /** How many visits the shipment or batch of that name brought, when it was taken; null when it was not. */
  taken(name: string): number | null {
    return this.#statements().has.get(name)?.visits ?? null;
  }

  /** The names kept that start with `prefix`. */
  namesStartingWith(prefix: string): string[] {
    return this.#statements()
      .named.all(...prefixRange(prefix))
      .map((row) => row.name);
  }

  /**
   * Where `import db`'s batches stand: the time the latest was written, and how many were written in that millisecond.
   * The server compares two of these to notice new batches, as another process writes them (commands/serve.ts);
   * forgetting names taken long ago never makes it later.
   */
  importedBatches(): ImportedBatches {
    const [from, to] = prefixRange(IMPORTED_BATCH_PREFIX);
    const { latest, batches } = this.#statements().imported.get(from, to, from, to) as { latest: number | null; batches: number };
    return { latest: latest ?? 0, batches };
  }

  /** Inside the transaction that writes the shipment's visits; forgets names taken long ago. */
  add(name: string, visits: number, now = Date.now()): void {
    const statements = this.#statements();
    statements.prune.run(now - KEPT_MS, ...prefixRange(IMPORTED_BATCH_PREFIX));
    statements.add.run(name, now, visits);
  }
}
