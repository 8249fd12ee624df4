/** All SQL for link passwords: the hash of each password-protected link's password (never the password itself). */
import type { Database } from "bun:sqlite";
import { preparedOnFirstUse } from "./first-use";

/**
 * Migration 15. A table of its own, not a column of short_urls: a new table changes no existing one (no snapshot
 * before migrating), and a link without a password (most) has no row. A link's password goes with it.
 */
export const LINK_PASSWORDS_SCHEMA = `
  CREATE TABLE link_passwords (
    short_url_id INTEGER PRIMARY KEY REFERENCES short_urls(id) ON DELETE CASCADE,
    hash TEXT NOT NULL
  ) STRICT;
`;

/** Every statement (prepared on first use, see first-use.ts: the table came with schema 15). */
function prepare(db: Database) {
  return {
    hashOf: db.query<{ hash: string }, [number]>("SELECT hash FROM link_passwords WHERE short_url_id = ?"),
    set: db.query<unknown, [number, string]>(
      "INSERT INTO link_passwords (short_url_id, hash) VALUES (?1, ?2) ON CONFLICT (short_url_id) DO UPDATE SET hash = ?2",
    ),
    clear: db.query<unknown, [number]>("DELETE FROM link_passwords WHERE short_url_id = ?"),
    protectedOf: db.query<{ id: number }, [string]>(
      "SELECT short_url_id AS id FROM link_passwords WHERE short_url_id IN (SELECT value FROM json_each(?))",
    ),
  };
}

export class LinkPasswordStore {
  readonly #statements: () => ReturnType<typeof prepare>;

  constructor(db: Database) {
    this.#statements = preparedOnFirstUse(db, prepare);
  }

  /** The link's password hash, or null when it has no password. */
  hashOf(shortUrlId: number): string | null {
    return this.#statements().hashOf.get(shortUrlId)?.hash ?? null;
  }

  /** Sets (`hash`) or removes (null) a link's password (call inside a write transaction). */
  set(shortUrlId: number, hash: string | null): void {
    if (hash === null) this.#statements().clear.run(shortUrlId);
    else this.#statements().set.run(shortUrlId, hash);
  }

  /** Which of these links have a password. */
  protectedOf(ids: readonly number[]): Set<number> {
    if (ids.length === 0) return new Set();
    return new Set(
      this.#statements()
        .protectedOf.all(JSON.stringify(ids))
        .map((row) => row.id),
    );
  }
}
