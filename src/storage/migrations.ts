/**
 * Forward-only schema migrations keyed by PRAGMA user_version. A migration that changes existing tables
 * first snapshots the database (VACUUM INTO) beside it, so a bad migration can be undone by hand.
 */
import type { Database } from "bun:sqlite";
import { snapshotBefore } from "./migration-snapshot";
import { NEW_TABLE_MIGRATIONS } from "./new-table-migrations";
import { currentVersion } from "./schema-version";
import { normalizeStoredTagNames, tagNamesNeedNormalizing } from "./tag-names-migration";
import { VISIT_BUCKETS_SCHEMA } from "./visit-buckets";

export interface Migration {
  version: number;
  /**
   * True when it alters or rewrites tables that already hold data (then the database is copied first); a function
   * when only some databases need that, so the others upgrade without the copy's time and disk space.
   */
  changesExisting: boolean | ((db: Database) => boolean);
  /** Schema changes; '' when `rewrite` does all the work. */
  sql: string;
  /** Data changes SQL cannot make (Unicode case, say), run after `sql` in the same transaction. */
  rewrite?: (db: Database) => void;
}

// The default domain is stored as '' (not NULL) so the unique index covers it: SQLite treats NULLs as distinct.
// short_urls ids are AUTOINCREMENT so a deleted link's id is never reused: buffered visits are keyed by id.
export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    changesExisting: false,
    sql: `
      CREATE TABLE api_keys (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        key_hash TEXT NOT NULL UNIQUE,
        role TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        expires_at INTEGER,
        revoked_at INTEGER
      ) STRICT;
      CREATE TABLE short_urls (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        domain TEXT NOT NULL DEFAULT '',
        short_code TEXT NOT NULL,
        long_url TEXT NOT NULL,
        title TEXT,
        crawlable INTEGER NOT NULL DEFAULT 0,
        forward_query INTEGER NOT NULL DEFAULT 1,
        redirect_status INTEGER,
        valid_since INTEGER,
        valid_until INTEGER,
        max_visits INTEGER,
        created_at INTEGER NOT NULL,
        visits_total INTEGER NOT NULL DEFAULT 0,
        visits_bots INTEGER NOT NULL DEFAULT 0,
        api_key_id INTEGER REFERENCES api_keys(id) ON DELETE SET NULL
      ) STRICT;
      CREATE UNIQUE INDEX short_urls_domain_code ON short_urls(domain, short_code);
      CREATE INDEX short_urls_long_url ON short_urls(long_url, domain);
      CREATE INDEX short_urls_created_at ON short_urls(created_at);
      CREATE TABLE tags (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE
      ) STRICT;
      CREATE TABLE short_url_tags (
        short_url_id INTEGER NOT NULL REFERENCES short_urls(id) ON DELETE CASCADE,
        tag_id INTEGER NOT NULL REFERENCES tags(id) ON DELETE CASCADE,
        PRIMARY KEY (short_url_id, tag_id)
      ) STRICT, WITHOUT ROWID;
      CREATE INDEX short_url_tags_tag ON short_url_tags(tag_id, short_url_id);
    `,
  },
  {
    // One row, rewritten every second by the primary: the newest heartbeat in a restored copy measures RPO.
    version: 2,
    changesExisting: false,
    sql: `
      CREATE TABLE heartbeat (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        at INTEGER NOT NULL
      ) STRICT;
      INSERT INTO heartbeat (id, at) VALUES (1, 0);
    `,
  },
  {
    // Visits (issue 3). Raw rows are written by the visit flush, with the roll-ups in the same transaction, so
    // totals and per-day breakdowns stay exact when raw rows past the retention period are purged.
    // visits.short_url_id has no foreign key: deleting a link must not cascade over millions of rows inside one
    // transaction; its rows are purged in small batches instead (ids are never reused, so they cannot be misread).
    // A link's rows are written in time order (one flush at a time, sorted), so within a link `id` order is time
    // order and keyset pagination on `id` pages by date.
    version: 3,
    changesExisting: false,
    sql: `
      CREATE TABLE visits (
        id INTEGER PRIMARY KEY,
        short_url_id INTEGER,
        orphan_type TEXT CHECK (orphan_type IN ('base_url', 'invalid_short_url', 'regular_404')),
        at INTEGER NOT NULL,
        potential_bot INTEGER NOT NULL,
        referer TEXT,
        user_agent TEXT,
        remote_addr TEXT,
        visited_url TEXT,
        redirect_url TEXT,
        country_code TEXT,
        country_name TEXT,
        region_name TEXT,
        city_name TEXT,
        latitude REAL,
        longitude REAL,
        timezone TEXT,
        CHECK ((short_url_id IS NULL) <> (orphan_type IS NULL))
      ) STRICT;
      -- The visits API reads these index-only: a link's rows newest first (orphans all sit under NULL), seeking a
      -- page's offset and filtering bots without touching the table (src/storage/visit-query-store.ts).
      CREATE INDEX visits_short_url ON visits(short_url_id, id, potential_bot);
      CREATE INDEX visits_orphan ON visits(orphan_type, id, potential_bot) WHERE orphan_type IS NOT NULL;
      -- Per link and UTC day (days since the epoch): visits, bots among them, distinct visitors.
      CREATE TABLE visit_days (
        short_url_id INTEGER NOT NULL,
        day INTEGER NOT NULL,
        total INTEGER NOT NULL DEFAULT 0,
        bots INTEGER NOT NULL DEFAULT 0,
        visitors INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (short_url_id, day)
      ) STRICT, WITHOUT ROWID;
      -- Several links' visits in a date range (a domain's, all) sum the days in range, not every link's days; a
      -- (link, day) row is inserted once a day, so the flush rarely touches this index.
      CREATE INDEX visit_days_day ON visit_days(day);
      CREATE TABLE orphan_visit_days (
        orphan_type TEXT NOT NULL,
        day INTEGER NOT NULL,
        total INTEGER NOT NULL DEFAULT 0,
        bots INTEGER NOT NULL DEFAULT 0,
        visitors INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (orphan_type, day)
      ) STRICT, WITHOUT ROWID;
      -- Whole-database totals by kind ('non_orphan' or an orphan type), so GET /visits never counts rows.
      CREATE TABLE visit_totals (
        kind TEXT PRIMARY KEY,
        total INTEGER NOT NULL DEFAULT 0,
        bots INTEGER NOT NULL DEFAULT 0
      ) STRICT, WITHOUT ROWID;
      -- The day's salt and the visitor hashes seen that day (scope: a link id, or -1/-2/-3 for the orphan types).
      -- Both exist only to count distinct visitors of the current day; earlier days are deleted.
      CREATE TABLE visitor_salts (
        day INTEGER PRIMARY KEY,
        salt BLOB NOT NULL
      ) STRICT;
      CREATE TABLE visitor_hashes (
        day INTEGER NOT NULL,
        scope INTEGER NOT NULL,
        hash BLOB NOT NULL,
        PRIMARY KEY (day, scope, hash)
      ) STRICT, WITHOUT ROWID;
      -- Raw rows deleted past the retention period, per link and per kind ('non_orphan' or an orphan type), so the
      -- raw rows left are the roll-up totals less these, without COUNT(*) (src/storage/visit-purge-store.ts).
      CREATE TABLE visits_purged (
        short_url_id INTEGER PRIMARY KEY,
        count INTEGER NOT NULL DEFAULT 0
      ) STRICT;
      CREATE TABLE visit_kinds_purged (
        kind TEXT PRIMARY KEY,
        count INTEGER NOT NULL DEFAULT 0
      ) STRICT, WITHOUT ROWID;
    `,
  },
  {
    // Webhooks (issue 3). The outbox is written in the same transaction as the change it reports; its id is the
    // delivery order. Per (webhook, link) only the oldest pending row has a next_attempt_at (the one being tried);
    // the rows behind it wait with NULL, so finding due work never scans a blocked backlog.
    // message_id is random (160 bits), not derived from the id: after a point-in-time restore, ids are given out again.
    // It has no unique index: random keys would put every insert on a random page, 3-4x slower on a large outbox.
    version: 4,
    changesExisting: false,
    sql: `
      CREATE TABLE webhooks (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        name TEXT,
        url TEXT NOT NULL,
        secret TEXT NOT NULL,
        -- After a rotation, the old secret also signs deliveries until previous_secret_until (epoch ms).
        previous_secret TEXT,
        previous_secret_until INTEGER,
        events TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        disabled INTEGER NOT NULL DEFAULT 0
      ) STRICT;
      CREATE TABLE webhook_outbox (
        id INTEGER PRIMARY KEY,
        webhook_id INTEGER NOT NULL REFERENCES webhooks(id) ON DELETE CASCADE,
        message_id TEXT NOT NULL,
        event_type TEXT NOT NULL,
        link_id INTEGER NOT NULL,
        payload TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at INTEGER,
        state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivered', 'dead')),
        last_status INTEGER,
        last_error TEXT,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        delivered_at INTEGER
      ) STRICT;
      CREATE INDEX webhook_outbox_queue ON webhook_outbox(webhook_id, link_id, id) WHERE state = 'pending';
      CREATE INDEX webhook_outbox_due ON webhook_outbox(next_attempt_at, id) WHERE state = 'pending' AND next_attempt_at IS NOT NULL;
      CREATE INDEX webhook_outbox_dead ON webhook_outbox(webhook_id, id) WHERE state = 'dead';
      CREATE INDEX webhook_outbox_webhook ON webhook_outbox(webhook_id, id);
      CREATE INDEX webhook_outbox_delivered ON webhook_outbox(delivered_at) WHERE state = 'delivered';
    `,
  },
  {
    // A link's visit counters move out of short_urls into a narrow table. The visit flush updates the counters of
    // every link visited since the last flush: in short_urls' wide rows (long URLs, titles) that rewrote about a
    // page per link, ~35 % of the WAL a flush wrote (bench/visit-flush.ts); here ~300 links share a page. A link
    // that was never visited has no row (read as 0).
    version: 5,
    changesExisting: true,
    sql: `
      CREATE TABLE link_visits (
        short_url_id INTEGER PRIMARY KEY,
        total INTEGER NOT NULL DEFAULT 0,
        bots INTEGER NOT NULL DEFAULT 0
      ) STRICT;
      INSERT INTO link_visits (short_url_id, total, bots)
        SELECT id, visits_total, visits_bots FROM short_urls WHERE visits_total <> 0 OR visits_bots <> 0;
      ALTER TABLE short_urls DROP COLUMN visits_total;
      ALTER TABLE short_urls DROP COLUMN visits_bots;
    `,
  },
  {
    // Listing links by short code or title (Shlink's orderBy) sorted every link in a temporary B-tree: ~450 ms of
    // event loop at 1 000 000 links (bench/list-links.ts). With these indexes (the rowid is the tie-break) a page is
    // read in order. Ordering by long URL uses short_urls_long_url, created with the first schema.
    version: 6,
    changesExisting: false,
    sql: `
      CREATE INDEX short_urls_short_code ON short_urls(short_code);
      CREATE INDEX short_urls_title ON short_urls(title);
    `,
  },
  {
    // robots.txt lists a domain's crawlable codes. Through short_urls_domain_code that read every link of the domain
    // and looked each row up for its crawlable flag: 5.5 s at 1 000 000 links, on the event loop, for an
    // unauthenticated GET. This partial index holds the crawlable links alone, in the order robots.txt lists them.
    version: 7,
    changesExisting: false,
    sql: `
      CREATE INDEX short_urls_crawlable ON short_urls(domain, short_code) WHERE crawlable = 1;
    `,
  },
  {
    // A link's raw visits were indexed on (short_url_id, id): every flush wrote a page of that index per link it
    // touched, anywhere in the history, so a flushed visit cost ~4 µs at 100 000 raw visits and ~11 µs at 5 000 000.
    // Led by the id's bucket (2^20 ids), the flush writes only the newest bucket's pages, in the order it writes links
    // (src/storage/visit-buckets.ts). Orphans sit under a NULL link as before. Building it reads every raw row once.
    version: 8,
    changesExisting: false,
    sql: `
      CREATE INDEX visits_link ON visits((id >> 20), short_url_id, id, potential_bot);
      DROP INDEX visits_short_url;
    `,
  },
  {
    // The same for the per-day roll-ups: keyed by (short_url_id, day), the flush's upsert of each visited link's
    // row for today wrote a page per link, anywhere in a table that gains a row per link and day and keeps them
    // all (90 days of 100 000 links: 5.0 µs a flushed visit against 1.8 with one day). Keyed by (day, short_url_id),
    // today's rows sit together. A link's days are found through visit_days_link, which changes only when a link's
    // first visit of the day adds its row. Several links' sums over a range of days read that range in key order.
    version: 9,
    changesExisting: true,
    sql: `
      CREATE TABLE visit_days_by_day (
        day INTEGER NOT NULL,
        short_url_id INTEGER NOT NULL,
        total INTEGER NOT NULL DEFAULT 0,
        bots INTEGER NOT NULL DEFAULT 0,
        visitors INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (day, short_url_id)
      ) STRICT, WITHOUT ROWID;
      INSERT INTO visit_days_by_day (day, short_url_id, total, bots, visitors)
        SELECT day, short_url_id, total, bots, visitors FROM visit_days ORDER BY day, short_url_id;
      DROP TABLE visit_days;
      ALTER TABLE visit_days_by_day RENAME TO visit_days;
      CREATE INDEX visit_days_link ON visit_days(short_url_id, day);
    `,
  },
  {
    // Per domain ('' for the default) and day: the day roll-ups of that domain's live links, summed. A domain's
    // visits and the non-orphan visits over a date range were summed from every link's day rows in range, each looked
    // up in short_urls (1 700 000 rows: ~0.9 s on the event loop, bench/visit-sets.ts); now from a row per domain and
    // day. The visit flush adds to it (a row per domain and day it wrote, not per link: a trigger on visit_days
    // made the flush of 45 000 links 55 % slower, bench/visit-flush.ts), and so does every deletion of visits. A
    // deleted link's days leave its domain with it, by trigger, whichever binary deletes it. Visits an older binary
    // flushes (the other colour, during an upgrade) are added when the retention job re-sums each closed day
    // (VisitPurgeStore.resumDomainDay). A later migration that rebuilds visit_days must keep the trigger compiling.
    version: 10,
    changesExisting: false,
    sql: `
      CREATE TABLE domain_visit_days (
        domain TEXT NOT NULL,
        day INTEGER NOT NULL,
        total INTEGER NOT NULL DEFAULT 0,
        bots INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (domain, day)
      ) STRICT, WITHOUT ROWID;
      INSERT INTO domain_visit_days (domain, day, total, bots)
        SELECT s.domain, d.day, sum(d.total), sum(d.bots) FROM visit_days d JOIN short_urls s ON s.id = d.short_url_id
        GROUP BY s.domain, d.day;
      CREATE TRIGGER short_urls_deleted AFTER DELETE ON short_urls BEGIN
        UPDATE domain_visit_days SET total = domain_visit_days.total - d.total, bots = domain_visit_days.bots - d.bots
          FROM (SELECT day, total, bots FROM visit_days WHERE short_url_id = old.id) AS d
          WHERE domain_visit_days.domain = old.domain AND domain_visit_days.day = d.day;
      END;
    `,
  },
  {
    // Shlink's dynamic redirect rules: per link, in priority order, each a long URL and its conditions as JSON
    // ([{type, matchKey, matchValue}], validated by domain/redirect-rules.ts). A link's rules go with it. The redirect
    // path's SELECT asks whether a link has any (the primary key's prefix), so a link without rules costs nothing more.
    version: 11,
    changesExisting: false,
    sql: `
      CREATE TABLE redirect_rules (
        short_url_id INTEGER NOT NULL REFERENCES short_urls(id) ON DELETE CASCADE,
        priority INTEGER NOT NULL CHECK (priority >= 1),
        long_url TEXT NOT NULL,
        conditions TEXT NOT NULL CHECK (json_valid(conditions)),
        PRIMARY KEY (short_url_id, priority)
      ) STRICT, WITHOUT ROWID;
    `,
  },
  {
    // Shlink's "not found redirects" a domain sets through the API ('' is the default domain): where visitors of its
    // base URL, of other unknown paths and of unknown or unusable codes are sent. A null falls back to the settings.
    version: 12,
    changesExisting: false,
    sql: `
      CREATE TABLE domain_redirects (
        domain TEXT PRIMARY KEY,
        base_url_redirect TEXT,
        regular_404_redirect TEXT,
        invalid_short_url_redirect TEXT
      ) STRICT, WITHOUT ROWID;
    `,
  },
  {
    // Tag names as Shlink stores them (lib/tag-name.ts): tags saved before the API normalised them are renamed, and
    // those that then share a name merged, each link keeping its tags (tag-names-migration.ts). A merge is not undone.
    version: 13,
    changesExisting: tagNamesNeedNormalizing,
    sql: "",
    rewrite: normalizeStoredTagNames,
  },
  // 14 on: new tables only (new-table-migrations.ts).
  ...NEW_TABLE_MIGRATIONS,
  // The bucketed index of 8 again, over buckets of 2^17 ids: a flush writes a third fewer pages (visit-buckets.ts).
  { version: 19, changesExisting: false, sql: VISIT_BUCKETS_SCHEMA },
];

export const LATEST_VERSION = MIGRATIONS.at(-1)?.version ?? 0;
export { currentVersion };

/**
 * Reported before and after each migration: some rebuild an index over every raw visit or copy a table, which takes
 * seconds per million visits, and the server does not listen meanwhile.
 */
export type MigrationEvent = { kind: "starting"; version: number } | { kind: "applied"; version: number; durationMs: number };

/** Applies every migration newer than user_version, each in its own immediate transaction. */
export function runMigrations(db: Database, path: string, report?: (event: MigrationEvent) => void): void {
  const from = currentVersion(db);
  if (from > LATEST_VERSION) {
    throw new Error(
      `database schema version ${from} is newer than this binary knows (${LATEST_VERSION}). Try: run the newer shortener binary, or restore a backup.`,
    );
  }
  for (const migration of MIGRATIONS) {
    if (migration.version <= from) continue;
    // An in-memory database (the tests') has no file to keep a snapshot of.
    const changes = typeof migration.changesExisting === "function" ? migration.changesExisting(db) : migration.changesExisting;
    if (changes && from > 0 && path !== ":memory:") snapshotBefore(db, `${path}.before-migration-${migration.version}`);
    report?.({ kind: "starting", version: migration.version });
    const started = performance.now();
    db.transaction(() => {
      if (migration.sql !== "") db.exec(migration.sql);
      migration.rewrite?.(db);
      db.exec(`PRAGMA user_version = ${migration.version}`);
    }).immediate();
    report?.({ kind: "applied", version: migration.version, durationMs: performance.now() - started });
  }
}
