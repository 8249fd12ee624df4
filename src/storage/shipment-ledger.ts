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

/** How long a taken shipment's name is kept: far longer than its object or spool file can outlive its taking. */
const KEPT_MS = 30 * 86_400_000;

function prepare(db: Database) {
  return {
    has: db.query<{ visits: number }, [string]>("SELECT visits FROM taken_visit_shipments WHERE name = ?"),
    add: db.query<unknown, [string, number, number]>("INSERT INTO taken_visit_shipments (name, taken_at, visits) VALUES (?, ?, ?)"),
    prune: db.query<unknown, [number]>("DELETE FROM taken_visit_shipments WHERE taken_at < ?"),
    // The prefix as a range of the primary key: ';' is the character after ':'.
    imported: db.query<{ batches: number; latest: number }, [string, string]>(
      "SELECT count(*) AS batches, coalesce(max(taken_at), 0) AS latest FROM taken_visit_shipments WHERE name >= ? AND name < ?",
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

  /**
   * `import db`'s batches kept (how many, and when the last was written), as one string that changes with each batch:
   * the server compares it to notice them, as they are written by another process (commands/serve.ts).
   */
  importedBatches(): string {
    const { batches, latest } = this.#statements().imported.get(IMPORTED_BATCH_PREFIX, IMPORTED_BATCH_PREFIX.replace(/:$/, ";")) as {
      batches: number;
      latest: number;
    };
    return `${batches}@${latest}`;
  }

  /** Inside the transaction that writes the shipment's visits; forgets names taken long ago. */
  add(name: string, visits: number, now = Date.now()): void {
    const statements = this.#statements();
    statements.prune.run(now - KEPT_MS);
    statements.add.run(name, now, visits);
  }
}
