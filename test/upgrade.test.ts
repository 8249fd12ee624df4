/**
 * An upgrade, end to end: a database as schema version 4 left it (the first with visits and webhooks; version 5 is the
 * first migration that changes existing tables), with links, tags, a key, raw visits and their roll-ups, is served
 * by the compiled binary. It migrates at start, keeping a snapshot before each migration that rewrites tables, and
 * then every link, tag, count and visit reads back through the Shlink SDK as it was, and redirects honour the old
 * counts (a link that used up its maxVisits stays used up).
 */
import { Database } from "bun:sqlite";
import { expect, test } from "bun:test";
import { existsSync, rmSync } from "node:fs";
import { join } from "node:path";
import { MIGRATIONS } from "../src/storage/migrations";
import { eventLines, TestServer, tempDir, waitFor } from "./support/binary";
import { BROWSER_UA, sdkClient } from "./support/sdk";

const OLD_VERSION = 4;
const DAY_MS = 86_400_000;
const KEY = "shk_upgrade-test-key-0123456789abcdef";
const CUSTOM_DOMAIN = "s.example.com";

/** Writes a schema-4 database with three links, two tags, a key, nine raw visits and two orphan visits. */
function writeOldDatabase(path: string, now: number): void {
  const db = new Database(path);
  db.exec("PRAGMA journal_mode = WAL");
  for (const migration of MIGRATIONS.filter((m) => m.version <= OLD_VERSION)) db.exec(migration.sql);
  db.exec(`PRAGMA user_version = ${OLD_VERSION}`);
  const today = Math.floor(now / DAY_MS);
  const yesterday = today - 1;
  const at = (day: number, minute: number) => day * DAY_MS + minute * 60_000;
  db.run("INSERT INTO api_keys (id, name, key_hash, role, created_at) VALUES (1, 'admin', ?, 'admin', ?)", [
    new Bun.CryptoHasher("sha256").update(KEY).digest("hex"),
    at(yesterday, 0),
  ]);
  const link = db.query(
    `INSERT INTO short_urls (id, domain, short_code, long_url, title, crawlable, forward_query, redirect_status, max_visits,
       created_at, visits_total, visits_bots, api_key_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1)`,
  );
  link.run(1, "", "docs", "https://example.com/docs", "Docs", 0, 1, null, null, at(yesterday, 1), 5, 2);
  link.run(2, "", "capped", "https://example.com/capped", null, 0, 1, null, 3, at(yesterday, 2), 3, 0);
  link.run(3, CUSTOM_DOMAIN, "promo", "https://example.com/promo", "Promo", 1, 0, 301, null, at(yesterday, 3), 1, 0);
  db.run("INSERT INTO tags (id, name) VALUES (1, 'docs'), (2, 'public')");
  db.run("INSERT INTO short_url_tags (short_url_id, tag_id) VALUES (1, 1), (1, 2), (3, 2)");
  const visit = db.query(
    `INSERT INTO visits (id, short_url_id, orphan_type, at, potential_bot, referer, user_agent, visited_url, redirect_url, country_code)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  );
  let id = 0;
  const add = (linkId: number | null, orphan: string | null, when: number, bot: number, referer: string | null = null) =>
    visit.run(
      ++id,
      linkId,
      orphan,
      when,
      bot,
      referer,
      bot ? "curl/8.5.0" : BROWSER_UA,
      "https://sho.rt/x",
      linkId ? "https://example.com/" : null,
      "ES",
    );
  add(1, null, at(yesterday, 10), 0, "https://referrer.example/");
  add(1, null, at(yesterday, 11), 1);
  add(1, null, at(yesterday, 12), 0);
  for (let i = 0; i < 3; i++) add(2, null, at(yesterday, 20 + i), 0);
  add(1, null, at(today, 1), 1);
  add(1, null, at(today, 2), 0);
  add(3, null, at(today, 3), 0);
  add(null, "base_url", at(today, 4), 0);
  add(null, "base_url", at(today, 5), 0);
  const day = db.query("INSERT INTO visit_days (short_url_id, day, total, bots, visitors) VALUES (?, ?, ?, ?, ?)");
  day.run(1, yesterday, 3, 1, 2);
  day.run(2, yesterday, 3, 0, 1);
  day.run(1, today, 2, 1, 2);
  day.run(3, today, 1, 0, 1);
  db.run("INSERT INTO orphan_visit_days (orphan_type, day, total, bots, visitors) VALUES ('base_url', ?, 2, 0, 1)", [today]);
  db.run("INSERT INTO visit_totals (kind, total, bots) VALUES ('non_orphan', 9, 2), ('base_url', 2, 0)");
  db.close();
}

test("a schema-4 database is migrated at start and reads back whole: links, tags, counts, visits; old counts still cap redirects", async () => {
  const dataDir = tempDir();
  await using _dir = { [Symbol.asyncDispose]: async () => rmSync(dataDir, { recursive: true, force: true }) };
  const path = join(dataDir, "shortener.db");
  writeOldDatabase(path, Date.now());
  await using server = new TestServer({ dataDir });
  server.apiKey = KEY;
  server.keys.push(KEY);
  await server.start();

  const migrated = eventLines(server.stdout, "schema_migrated").map((line) => (JSON.parse(line) as { version: number }).version);
  expect(migrated).toEqual(MIGRATIONS.filter((m) => m.version > OLD_VERSION).map((m) => m.version));
  for (const m of MIGRATIONS.filter((m) => m.version > OLD_VERSION && m.changesExisting === true)) {
    expect(existsSync(`${path}.before-migration-${m.version}`)).toBe(true);
  }
  // Its tags are already in Shlink's form: migration 13 changes nothing, so it copies nothing either.
  expect(existsSync(`${path}.before-migration-13`)).toBe(false);

  const sdk = sdkClient(server);
  const links = (await sdk.listShortUrls({ itemsPerPage: -1, orderBy: { field: "shortCode", dir: "ASC" } })).data;
  expect(
    links.map((l) => ({
      code: l.shortCode,
      longUrl: l.longUrl,
      domain: l.domain,
      title: l.title,
      tags: l.tags,
      crawlable: l.crawlable,
      forwardQuery: l.forwardQuery,
      maxVisits: l.meta.maxVisits,
      visits: l.visitsSummary,
    })),
  ).toEqual([
    {
      code: "capped",
      longUrl: "https://example.com/capped",
      domain: null,
      title: null,
      tags: [],
      crawlable: false,
      forwardQuery: true,
      maxVisits: 3,
      visits: { total: 3, nonBots: 3, bots: 0 },
    },
    {
      code: "docs",
      longUrl: "https://example.com/docs",
      domain: null,
      title: "Docs",
      tags: ["docs", "public"],
      crawlable: false,
      forwardQuery: true,
      maxVisits: null,
      visits: { total: 5, nonBots: 3, bots: 2 },
    },
    {
      code: "promo",
      longUrl: "https://example.com/promo",
      domain: CUSTOM_DOMAIN,
      title: "Promo",
      tags: ["public"],
      crawlable: true,
      forwardQuery: false,
      maxVisits: null,
      visits: { total: 1, nonBots: 1, bots: 0 },
    },
  ]);

  expect(await sdk.getVisitsOverview()).toMatchObject({
    nonOrphanVisits: { total: 9, nonBots: 7, bots: 2 },
    orphanVisits: { total: 2, nonBots: 2, bots: 0 },
  });
  const docsVisits = await sdk.getShortUrlVisits({ shortCode: "docs" });
  expect(docsVisits.pagination.totalItems).toBe(5);
  expect(docsVisits.data.map((v) => v.potentialBot)).toEqual([false, true, false, true, false]);
  expect(docsVisits.data.at(-1)?.referer).toBe("https://referrer.example/");
  expect((await sdk.getTagVisits("public")).pagination.totalItems).toBe(6);
  expect((await sdk.getDomainVisits(CUSTOM_DOMAIN)).pagination.totalItems).toBe(1);
  expect((await sdk.getDomainVisits("DEFAULT")).pagination.totalItems).toBe(8);
  expect((await sdk.getNonOrphanVisits()).pagination.totalItems).toBe(9);
  expect((await sdk.getNonOrphanVisits({ excludeBots: true })).pagination.totalItems).toBe(7);
  expect((await sdk.getOrphanVisits()).pagination.totalItems).toBe(2);
  expect((await sdk.tagsStats()).data.map((t) => [t.tag, t.shortUrlsCount, t.visitsSummary.total])).toEqual([
    ["docs", 1, 5],
    ["public", 2, 6],
  ]);

  // Redirects go on from the migrated rows; the old count has used up `capped`; new visits add to the old counts.
  const follow = async (code: string, host?: string) => {
    const response = await fetch(`${server.baseUrl}/${code}?utm=x`, { redirect: "manual", headers: host ? { Host: host } : {} });
    return `${response.status} ${response.headers.get("location")}`;
  };
  expect(await follow("docs")).toBe("302 https://example.com/docs?utm=x");
  expect(await follow("promo", CUSTOM_DOMAIN)).toBe("301 https://example.com/promo");
  expect((await follow("capped")).startsWith("404")).toBe(true);
  // A link's visitsSummary counts its visits at once; the overview, once they are written.
  await waitFor("the new visits written", async () => (await sdk.getVisitsOverview()).nonOrphanVisits.total === 11);
  expect((await sdk.getShortUrl({ shortCode: "docs" })).visitsSummary.total).toBe(6);
  expect((await sdk.getShortUrl({ shortCode: "promo", domain: CUSTOM_DOMAIN })).visitsSummary.total).toBe(2);
  expect((await sdk.getShortUrl({ shortCode: "capped" })).visitsSummary.total).toBe(3);
  expect((await sdk.getDomainVisits(CUSTOM_DOMAIN)).pagination.totalItems).toBe(2);
  expect(await server.stop()).toBe(0);
});
