import { Database } from "bun:sqlite";
import { afterEach, describe, expect, test } from "bun:test";
import { AuditStore } from "../storage/audit-store";
import { runMigrations } from "../storage/migrations";
import { RedirectRuleStore } from "../storage/redirect-rule-store";
import { ShortUrlStore } from "../storage/short-url-store";
import { TagStore } from "../storage/tag-store";
import { VisitPurgeStore } from "../storage/visit-purge-store";
import { VisitStaging } from "../storage/visit-staging";
import { VisitStore } from "../storage/visit-store";
import { AuditLog } from "./audit-log";
import { type ImportedLink, importedLink, importedRules, LinkImportWriter, stagedVisit } from "./link-import";

const DAY = 86_400_000;
const domainKey = (d: string | null) => (d === null || d === "s.test" ? "" : d);

/** A link as Shlink's API lists it. */
function shlinkLink(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    shortCode: "abc123",
    shortUrl: "https://old.example/abc123",
    longUrl: "https://example.com/landing",
    deviceLongUrls: { android: null, ios: null, desktop: null },
    dateCreated: "2024-03-01T10:00:00+01:00",
    tags: ["launch", "q1"],
    meta: { validSince: null, validUntil: "2030-01-01T00:00:00+00:00", maxVisits: 500 },
    domain: null,
    title: "Landing",
    crawlable: true,
    forwardQuery: false,
    visitsSummary: { total: 2, nonBots: 1, bots: 1 },
    ...overrides,
  };
}

const visit = (date: string, extra: Record<string, unknown> = {}) => ({
  referer: "https://ref.example/",
  date,
  userAgent: "Mozilla/5.0 Firefox/130",
  visitLocation: null,
  potentialBot: false,
  visitedUrl: "https://old.example/abc123",
  redirectUrl: "https://example.com/landing",
  ...extra,
});

describe("a source link checked as a create would be", () => {
  test("keeps code, domain, creation date, tags, title, validity and flags", () => {
    const link = importedLink(shlinkLink(), domainKey) as ImportedLink;
    expect(link.createdAt).toBe(Date.parse("2024-03-01T09:00:00Z"));
    expect(link.domain).toBe("");
    expect(link.input).toMatchObject({
      customSlug: "abc123",
      longUrl: "https://example.com/landing",
      tags: ["launch", "q1"],
      title: "Landing",
      crawlable: true,
      forwardQuery: false,
      validUntil: Date.parse("2030-01-01T00:00:00Z"),
      maxVisits: 500,
    });
    expect(link.deviceRules).toEqual([]);
    expect((importedLink(shlinkLink({ domain: "s.test" }), domainKey) as ImportedLink).domain).toBe("");
    expect((importedLink(shlinkLink({ domain: "Go.Example.NET" }), domainKey) as ImportedLink).domain).toBe("go.example.net");
  });

  test("turns Shlink 3's device long URLs into device rules, android, ios, desktop", () => {
    const link = importedLink(
      shlinkLink({ deviceLongUrls: { desktop: "https://example.com/d", android: "https://example.com/a", ios: null } }),
      domainKey,
    );
    expect((link as ImportedLink).deviceRules).toEqual([
      { longUrl: "https://example.com/a", conditions: [{ type: "device", matchKey: null, matchValue: "android" }] },
      { longUrl: "https://example.com/d", conditions: [{ type: "device", matchKey: null, matchValue: "desktop" }] },
    ]);
  });

  test.each([
    [{ shortCode: "rest" }, "customSlug: "],
    [{ longUrl: "ftp://example.com/file" }, "longUrl: "],
    [{ passwordProtected: true }, "password-protected"],
    [{ dateCreated: "yesterday" }, "dateCreated: must be an ISO 8601 date"],
    [{ meta: { maxVisits: 0 } }, "maxVisits: must be a whole number of at least 1"],
    [{ deviceLongUrls: { ios: "javascript:alert(1)" } }, "redirectRules[0].longUrl: "],
  ])("refuses %p, saying why", (overrides, reason) => {
    const result = importedLink(shlinkLink(overrides), domainKey);
    expect("refused" in result).toBe(true);
    expect((result as { refused: string }).refused).toContain(reason);
  });

  test("checks redirect rules as the rules endpoint does, naming conditions of later Shlink versions", () => {
    const rules = [
      { longUrl: "https://example.com/es", priority: 1, conditions: [{ type: "language", matchKey: null, matchValue: "es" }] },
    ];
    expect(importedRules(rules)).toEqual([
      { longUrl: "https://example.com/es", conditions: [{ type: "language", matchKey: null, matchValue: "es" }] },
    ]);
    const later = importedRules([
      { longUrl: "https://example.com/x", conditions: [{ type: "ip-address", matchKey: null, matchValue: "1.2.3.4" }] },
    ]);
    expect((later as { refused: string }).refused).toContain(
      'redirect rules: redirectRules[0].conditions[0].type: "ip-address" is a condition of a later Shlink',
    );
  });
});

describe("a source visit as staged", () => {
  test("keeps what Shlink shows, cutting long fields as a redirect does", () => {
    const located = {
      countryCode: "ES",
      countryName: "Spain",
      regionName: "Madrid",
      cityName: "Madrid",
      latitude: 40.4,
      longitude: -3.7,
      timezone: "Europe/Madrid",
      isEmpty: false,
    };
    expect(
      stagedVisit(visit("2024-03-02T10:00:00+00:00", { visitLocation: located, potentialBot: true, userAgent: "x".repeat(600) })),
    ).toEqual([
      Date.parse("2024-03-02T10:00:00Z"),
      1,
      "https://ref.example/",
      "x".repeat(512),
      null,
      "https://old.example/abc123",
      "https://example.com/landing",
      "ES",
      "Spain",
      "Madrid",
      "Madrid",
      40.4,
      -3.7,
      "Europe/Madrid",
    ]);
    expect(stagedVisit(visit("2024-03-02T10:00:00+00:00", { referer: "", userAgent: "" }))?.slice(2, 4)).toEqual([null, null]);
    expect(stagedVisit(visit("not a date"))).toBeNull();
  });
});

describe("LinkImportWriter", () => {
  const open: { db: Database; staging: VisitStaging }[] = [];
  afterEach(() => {
    for (const { db, staging } of open.splice(0)) {
      staging[Symbol.dispose]();
      db.close();
    }
  });

  function setup(retentionMs: number | null = null) {
    const db = new Database(":memory:", { strict: true });
    runMigrations(db, ":memory:");
    const staging = new VisitStaging(db);
    open.push({ db, staging });
    const stores = {
      links: new ShortUrlStore(db),
      tags: new TagStore(db),
      rules: new RedirectRuleStore(db),
      visits: new VisitStore(db),
      purges: new VisitPurgeStore(db),
    };
    const writer = new LinkImportWriter(db, stores, new AuditLog(new AuditStore(db)), "https://old.example", retentionMs);
    return { db, staging, writer, stores };
  }

  const entry = (overrides: Record<string, unknown> = {}, staged = 0) => ({
    link: importedLink(shlinkLink(overrides), domainKey) as ImportedLink,
    rules: [{ longUrl: "https://example.com/es", conditions: [{ type: "language" as const, matchKey: null, matchValue: "es" }] }],
    staged,
  });

  test("writes the link as it was, its visits oldest first with their roll-ups, and an audit event", async () => {
    const { db, staging, writer, stores } = setup();
    const now = Date.now();
    // Pages come newest first; two visits share a millisecond and keep their order.
    const newest = new Date(now - DAY).toISOString();
    const rows = [
      visit(newest, { referer: "https://r/3" }),
      visit(newest, { referer: "https://r/2", potentialBot: true }),
      visit(new Date(now - 3 * DAY).toISOString(), { referer: "https://r/1" }),
    ];
    staging.add(
      0,
      rows.map((v) => stagedVisit(v) as (string | number | null)[]),
    );
    expect(await writer.write([entry()], staging)).toEqual([{ kind: "imported", visits: 3 }]);

    const link = stores.links.find("", "abc123");
    expect(link).toMatchObject({
      long_url: "https://example.com/landing",
      created_at: Date.parse("2024-03-01T09:00:00Z"),
      title: "Landing",
      crawlable: 1,
      forward_query: 0,
      max_visits: 500,
    });
    const id = link?.id as number;
    expect(stores.tags.tagsFor([id]).get(id)).toEqual(["launch", "q1"]);
    expect(stores.rules.forLink(id).map((r) => r.long_url)).toEqual(["https://example.com/es"]);
    expect(db.query("SELECT referer FROM visits WHERE short_url_id = ? ORDER BY id").all(id)).toEqual([
      { referer: "https://r/1" },
      { referer: "https://r/2" },
      { referer: "https://r/3" },
    ]);
    expect(db.query("SELECT total, bots FROM link_visits WHERE short_url_id = ?").get(id)).toEqual({ total: 3, bots: 1 });
    expect(db.query("SELECT day, total, bots FROM visit_days WHERE short_url_id = ? ORDER BY day").all(id)).toEqual([
      { day: Math.floor((now - 3 * DAY) / DAY), total: 1, bots: 0 },
      { day: Math.floor((now - DAY) / DAY), total: 2, bots: 1 },
    ]);
    expect(db.query("SELECT sum(total) AS total FROM domain_visit_days WHERE domain = ''").get()).toEqual({ total: 3 });
    expect(db.query("SELECT total, bots FROM visit_totals WHERE kind = 'non_orphan'").get()).toEqual({ total: 3, bots: 1 });
    const audit = db.query("SELECT action, actor_type, subject, details FROM audit_events").all() as { details: string }[];
    expect(audit).toHaveLength(1);
    expect(audit[0]).toMatchObject({ action: "short-url.imported", actor_type: "cli", subject: "abc123" });
    expect(JSON.parse(audit[0]?.details as string)).toMatchObject({
      from: "https://old.example",
      visits: 3,
      redirectRules: 1,
      dateCreated: "2024-03-01T09:00:00+00:00",
    });
  });

  test("counts visits older than the retention period without keeping them, as the retention job would", async () => {
    const { db, staging, writer, stores } = setup(7 * DAY);
    const now = Date.now();
    staging.add(
      0,
      [visit(new Date(now - DAY).toISOString()), visit(new Date(now - 30 * DAY).toISOString())].map(
        (v) => stagedVisit(v) as (string | number | null)[],
      ),
    );
    await writer.write([entry()], staging);
    const id = stores.links.find("", "abc123")?.id as number;
    expect(db.query("SELECT count(*) AS n FROM visits").get()).toEqual({ n: 1 });
    expect(db.query("SELECT total FROM link_visits WHERE short_url_id = ?").get(id)).toEqual({ total: 2 });
    expect(db.query("SELECT count FROM visits_purged WHERE short_url_id = ?").get(id)).toEqual({ count: 1 });
    expect(db.query("SELECT count FROM visit_kinds_purged WHERE kind = 'non_orphan'").get()).toEqual({ count: 1 });
  });

  test("leaves a link already here alone: the same long URL is present, another is a conflict", async () => {
    const { db, staging, writer } = setup();
    await writer.write([entry()], staging);
    const outcomes = await writer.write([entry(), entry({ shortCode: "taken", longUrl: "https://example.com/mine" })], staging);
    expect(outcomes[0]).toEqual({ kind: "present" });
    expect(outcomes[1]).toEqual({ kind: "imported", visits: 0 });
    expect(await writer.write([entry({ longUrl: "https://example.com/theirs" })], staging)).toEqual([
      { kind: "conflict", longUrl: "https://example.com/landing" },
    ]);
    expect(db.query("SELECT count(*) AS n FROM short_urls").get()).toEqual({ n: 2 });
    expect(db.query("SELECT count(*) AS n FROM audit_events").get()).toEqual({ n: 2 });
  });

  test("a batch is one transaction: a failure writes none of its links", async () => {
    const { db, staging, writer } = setup();
    db.exec("CREATE TRIGGER refuse AFTER INSERT ON short_urls WHEN new.short_code = 'bad' BEGIN SELECT RAISE(ABORT, 'refused'); END");
    await expect(writer.write([entry(), entry({ shortCode: "bad" })], staging)).rejects.toThrow("refused");
    expect(db.query("SELECT count(*) AS n FROM short_urls").get()).toEqual({ n: 0 });
  });
});
