import type { Database } from "bun:sqlite";

/**
 * A store's statements, prepared on first use rather than when the store is built: `check` builds the app the way
 * serve does on a database that may predate a table, and must be able to say which migrations are pending.
 */
export function preparedOnFirstUse<T>(db: Database, prepare: (db: Database) => T): () => T {
  let prepared: T | undefined;
  return () => {
    prepared ??= prepare(db);
    return prepared;
  };
}
