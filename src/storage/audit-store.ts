/**
 * All SQL for the audit history: one row per change made through the API or the CLI, written in the change's own
 * transaction (so a change that rolls back leaves no row, and one that commits always has its row). Rows are only
 * ever added; nothing in the product updates or deletes them.
 */
import type { Database } from "bun:sqlite";
import { preparedOnFirstUse } from "./first-use";

/**
 * Migration 14. `domain` and `short_code` are set for a link's events ('' = default domain): the index serves one
 * link's history, the other one key's (or login's) changes.
 */
export const AUDIT_EVENTS_SCHEMA = `
  CREATE TABLE audit_events (
    id INTEGER PRIMARY KEY,
    at INTEGER NOT NULL,
    action TEXT NOT NULL,
    actor_type TEXT NOT NULL CHECK (actor_type IN ('api-key', 'cli')),
    actor_name TEXT NOT NULL,
    api_key_id INTEGER,
    subject TEXT NOT NULL,
    domain TEXT,
    short_code TEXT,
    details TEXT NOT NULL CHECK (json_valid(details))
  ) STRICT;
  CREATE INDEX audit_events_link ON audit_events (domain, short_code, id) WHERE short_code IS NOT NULL;
  CREATE INDEX audit_events_actor ON audit_events (actor_name, id);
`;

export interface AuditRow {
  id: number;
  at: number;
  action: string;
  actor_type: "api-key" | "cli";
  actor_name: string;
  api_key_id: number | null;
  subject: string;
  domain: string | null;
  short_code: string | null;
  /** JSON. */
  details: string;
}

export interface AuditFilter {
  /** A link's events only: its stored domain key and code. */
  link?: { domain: string; shortCode: string };
  /** One actor's events only: an API key's name, or a login name. */
  actor?: string;
  /** Epoch ms, inclusive. */
  from?: number;
  to?: number;
}

export class AuditStore {
  readonly #insert: () => ReturnType<Database["query"]>;

  constructor(private readonly db: Database) {
    this.#insert = preparedOnFirstUse(db, (d) =>
      d.query(
        `INSERT INTO audit_events (at, action, actor_type, actor_name, api_key_id, subject, domain, short_code, details)
         VALUES ($at, $action, $actor_type, $actor_name, $api_key_id, $subject, $domain, $short_code, $details)`,
      ),
    );
  }

  insert(row: Omit<AuditRow, "id">): void {
    this.#insert().run(row);
  }

  /** Newest first: `limit` rows after skipping `offset`, and how many match in all. */
  page(filter: AuditFilter, limit: number, offset: number): { rows: AuditRow[]; total: number } {
    const where: string[] = [];
    const params: Record<string, string | number> = {};
    if (filter.link !== undefined) {
      where.push("domain = $domain AND short_code = $code");
      params.domain = filter.link.domain;
      params.code = filter.link.shortCode;
    }
    if (filter.actor !== undefined) {
      where.push("actor_name = $actor");
      params.actor = filter.actor;
    }
    if (filter.from !== undefined) {
      where.push("at >= $from");
      params.from = filter.from;
    }
    if (filter.to !== undefined) {
      where.push("at <= $to");
      params.to = filter.to;
    }
    const clause = where.length === 0 ? "" : `WHERE ${where.join(" AND ")}`;
    const rows = this.db
      .query<AuditRow, Record<string, string | number>>(`SELECT * FROM audit_events ${clause} ORDER BY id DESC LIMIT $limit OFFSET $offset`)
      .all({ ...params, limit, offset });
    const total = (this.db.query(`SELECT count(*) AS n FROM audit_events ${clause}`).get(params) as { n: number }).n;
    return { rows, total };
  }
}
