import { Database } from "bun:sqlite";
import { expect, test } from "bun:test";
import { recordingStatements } from "../../test/support/query-plans";
import { runMigrations } from "./migrations";
import { ShortUrlStore } from "./short-url-store";

/** How SQLite runs each statement ShortUrlStore prepares whose WHERE matches `where`, one line per statement. */
function plans(where: RegExp): { sql: string; plan: string }[] {
  const db = new Database(":memory:", { strict: true });
  runMigrations(db, ":memory:");
  const { recording, statements } = recordingStatements(db);
  // Some statements are prepared on first use.
  const store = new ShortUrlStore(recording);
  store.find("", "abc");
  store.findForRedirect("", "abc");
  store.findByLongUrl("https://example.com/", "");
  return [...statements]
    .filter((sql) => where.test(sql))
    .map((sql) => {
      const params = Array((sql.match(/\?\d*/g) ?? []).length).fill("x");
      const rows = db.query(`EXPLAIN QUERY PLAN ${sql}`).all(...params) as { detail: string }[];
      return { sql, plan: rows.map((r) => r.detail).join(" | ") };
    });
}

test("findIfExists finds a long URL's links through short_urls_long_url, never by scanning the links", () => {
  const found = plans(/long_url = \?/);
  expect(found).toHaveLength(1);
  for (const { sql, plan } of found) {
    expect({ sql, plan }).toEqual({
      sql,
      plan: expect.stringMatching(/SEARCH s USING INDEX short_urls_long_url \(long_url=\? AND domain=\?\)/),
    });
    expect({ sql, plan }).toEqual({ sql, plan: expect.not.stringMatching(/SCAN s\b|TEMP B-TREE/) });
  }
});

test("a redirect's lookup by domain and code seeks the unique index", () => {
  const found = plans(/s\.domain = \? AND s\.short_code = \?/);
  expect(found.length).toBeGreaterThanOrEqual(2);
  for (const { sql, plan } of found) {
    expect({ sql, plan }).toEqual({
      sql,
      plan: expect.stringMatching(/SEARCH s USING INDEX short_urls_domain_code \(domain=\? AND short_code=\?\)/),
    });
    expect({ sql, plan }).toEqual({ sql, plan: expect.not.stringMatching(/SCAN s\b/) });
  }
});
