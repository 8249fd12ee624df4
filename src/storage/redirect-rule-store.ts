/** All SQL for the redirect_rules table: a link's dynamic redirect rules, in priority order. */
import type { Database } from "bun:sqlite";
import { preparedOnFirstUse } from "./first-use";

/** A stored rule; `conditions` is the JSON the domain wrote (domain/redirect-rules.ts reads it back). */
export interface RedirectRuleRow {
  priority: number;
  long_url: string;
  conditions: string;
}

/** Every statement (prepared on first use, see first-use.ts: the table came with schema 11). */
function prepare(db: Database) {
  return {
    forLink: db.query<RedirectRuleRow, [number]>(
      "SELECT priority, long_url, conditions FROM redirect_rules WHERE short_url_id = ? ORDER BY priority",
    ),
    clear: db.query<unknown, [number]>("DELETE FROM redirect_rules WHERE short_url_id = ?"),
    insert: db.query<unknown, [number, number, string, string]>(
      "INSERT INTO redirect_rules (short_url_id, priority, long_url, conditions) VALUES (?, ?, ?, ?)",
    ),
    linksWithRules: db.query<{ id: number }, [string]>(
      "SELECT DISTINCT short_url_id AS id FROM redirect_rules WHERE short_url_id IN (SELECT value FROM json_each(?))",
    ),
  };
}

export class RedirectRuleStore {
  readonly #statements: () => ReturnType<typeof prepare>;

  constructor(db: Database) {
    this.#statements = preparedOnFirstUse(db, prepare);
  }

  /** A link's rules, priority 1 first. */
  forLink(shortUrlId: number): RedirectRuleRow[] {
    return this.#statements().forLink.all(shortUrlId);
  }

  /** Replaces a link's rules with these, priority 1 first, in this order (call inside a write transaction). */
  replace(shortUrlId: number, rules: readonly Omit<RedirectRuleRow, "priority">[]): void {
    const { clear, insert } = this.#statements();
    clear.run(shortUrlId);
    rules.forEach((rule, i) => {
      insert.run(shortUrlId, i + 1, rule.long_url, rule.conditions);
    });
  }

  /** Which of these links have at least one rule. */
  linksWithRules(ids: readonly number[]): Set<number> {
    if (ids.length === 0) return new Set();
    return new Set(
      this.#statements()
        .linksWithRules.all(JSON.stringify(ids))
        .map((row) => row.id),
    );
  }
}
