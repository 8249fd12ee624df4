/**
 * All SQL for the journal of link changes: which codes a write changed the redirect of (target, status, validity,
 * rules, password, counts) or the robots.txt of, in the write's own transaction. Another process serving the same
 * database (the other colour in a blue/green overlap) reads it to drop those codes from its cache
 * (domain/link-change-watch.ts); the process that wrote them dropped its own entries already.
 */
import type { Database } from "bun:sqlite";
import { preparedOnFirstUse } from "./first-use";

/**
 * Migration 17: a new table only. seq is AUTOINCREMENT so a number is never given twice, and the committed numbers
 * have no holes (a rolled-back insert gives its number back): a reader that finds one missing knows rows it never
 * read were pruned.
 */
export const LINK_CHANGES_SCHEMA = `
  CREATE TABLE link_changes (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    domain TEXT NOT NULL,
    short_code TEXT NOT NULL
  ) STRICT;
`;

/** Rows kept: a reader that polls every 100 ms misses none unless thousands of changes come between two looks. */
export const LINK_CHANGES_KEPT = 10_000;

export interface LinkChange {
  seq: number;
  domain: string;
  shortCode: string;
}

/** Every statement (prepared on first use, see first-use.ts: the table came with schema 17). */
function prepare(db: Database) {
  return {
    insert: db.query<{ seq: number }, [string, string]>("INSERT INTO link_changes (domain, short_code) VALUES (?, ?) RETURNING seq"),
    prune: db.query<unknown, [number]>("DELETE FROM link_changes WHERE seq <= ?"),
    last: db.query<{ seq: number | null }, []>("SELECT max(seq) AS seq FROM link_changes"),
    after: db.query<LinkChange, [number, number]>(
      "SELECT seq, domain, short_code AS shortCode FROM link_changes WHERE seq > ? ORDER BY seq LIMIT ?",
    ),
  };
}

export class LinkChangeStore {
  readonly #statements: () => ReturnType<typeof prepare>;

  constructor(db: Database) {
    this.#statements = preparedOnFirstUse(db, prepare);
  }

  /** Records that a code changed, and forgets the oldest rows past LINK_CHANGES_KEPT (call inside a write transaction). */
  record(domain: string, shortCode: string): void {
    const statements = this.#statements();
    const seq = (statements.insert.get(domain, shortCode) as { seq: number }).seq;
    if (seq > LINK_CHANGES_KEPT) statements.prune.run(seq - LINK_CHANGES_KEPT);
  }

  /** The newest change's number, 0 when none was ever recorded (or all were pruned). */
  last(): number {
    return this.#statements().last.get()?.seq ?? 0;
  }

  /** Up to `limit` changes after `seq`, oldest first. */
  after(seq: number, limit: number): LinkChange[] {
    return this.#statements().after.all(seq, limit);
  }
}
