/** All SQL for the domain_redirects table: per domain, where its "not found" visitors are sent. */
import type { Database } from "bun:sqlite";
import { preparedOnFirstUse } from "./first-use";

/** One domain's redirects ('' is the default domain); null: none of its own. */
export interface DomainRedirectRow {
  domain: string;
  base_url_redirect: string | null;
  regular_404_redirect: string | null;
  invalid_short_url_redirect: string | null;
}

const COLUMNS = "domain, base_url_redirect, regular_404_redirect, invalid_short_url_redirect";

/** Every statement (prepared on first use, see first-use.ts: the table came with schema 12). */
function prepare(db: Database) {
  return {
    find: db.query<DomainRedirectRow, [string]>(`SELECT ${COLUMNS} FROM domain_redirects WHERE domain = ?`),
    all: db.query<DomainRedirectRow, []>(`SELECT ${COLUMNS} FROM domain_redirects ORDER BY domain`),
    save: db.query<unknown, [string, string | null, string | null, string | null]>(
      `INSERT INTO domain_redirects (${COLUMNS}) VALUES (?, ?, ?, ?)
       ON CONFLICT (domain) DO UPDATE SET base_url_redirect = excluded.base_url_redirect,
         regular_404_redirect = excluded.regular_404_redirect, invalid_short_url_redirect = excluded.invalid_short_url_redirect`,
    ),
  };
}

export class DomainRedirectStore {
  readonly #statements: () => ReturnType<typeof prepare>;

  constructor(db: Database) {
    this.#statements = preparedOnFirstUse(db, prepare);
  }

  find(domain: string): DomainRedirectRow | null {
    return this.#statements().find.get(domain);
  }

  all(): DomainRedirectRow[] {
    return this.#statements().all.all();
  }

  /** Sets a domain's three redirects (call inside a write transaction). */
  save(row: DomainRedirectRow): void {
    this.#statements().save.run(row.domain, row.base_url_redirect, row.regular_404_redirect, row.invalid_short_url_redirect);
  }
}
