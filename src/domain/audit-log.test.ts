import { Database } from "bun:sqlite";
import { describe, expect, test } from "bun:test";
import { AuditStore } from "../storage/audit-store";
import { GroupCommit } from "../storage/group-commit";
import { LinkPasswordStore } from "../storage/link-password-store";
import { runMigrations } from "../storage/migrations";
import { RedirectRuleStore } from "../storage/redirect-rule-store";
import { ShortUrlStore } from "../storage/short-url-store";
import { TagStore } from "../storage/tag-store";
import type { ApiKey } from "./api-keys";
import { AuditLog, parseAuditQuery } from "./audit-log";
import { LinkPasswords } from "./link-passwords";
import { LinkResolver } from "./link-resolver";
import { ShortUrlService } from "./short-urls";
import { VisitBuffer } from "./visit-buffer";

const ADMIN: ApiKey = { id: 1, name: "release-bot", role: "admin" };
const VIEWER: ApiKey = { id: 2, name: "dashboard", role: "read-only" };
const EVERYTHING = { filter: {}, page: 1, itemsPerPage: 50 };

/** Link writes on an in-memory database, recording into `audit` (by default a real one on the same database). */
function setup(auditOf: (db: Database) => AuditLog = (db) => new AuditLog(new AuditStore(db))) {
  const db = new Database(":memory:", { strict: true });
  runMigrations(db, ":memory:");
  const store = new ShortUrlStore(db);
  const visits = new VisitBuffer(db, store);
  const rules = new RedirectRuleStore(db);
  const audit = auditOf(db);
  const links = new ShortUrlService({
    writes: new GroupCommit(db),
    shortUrls: store,
    tags: new TagStore(db),
    redirectRules: rules,
    passwords: { store: new LinkPasswordStore(db), hasher: new LinkPasswords() },
    resolver: new LinkResolver(store, visits, 10, rules),
    defaultDomain: "s.test",
    shortCodeLength: 7,
    pendingVisits: (id) => visits.pendingFor(id),
    audit,
  });
  const count = () => (db.query("SELECT count(*) AS n FROM short_urls").get() as { n: number }).n;
  return { links, audit, count };
}

describe("the audit history", () => {
  test("records each link change with its key: what was created, the fields an edit changed, what was deleted", async () => {
    const { links, audit } = setup();
    await links.create({ findIfExists: false, longUrl: "https://example.com/a", customSlug: "launch", tags: ["promo"] }, ADMIN);
    await links.edit("launch", null, { longUrl: "https://example.com/b", maxVisits: 10 }, ADMIN);
    await links.edit("launch", null, { longUrl: "https://example.com/b" }, ADMIN); // changes nothing: no event
    await links.delete("launch", null, ADMIN);
    const { items, total } = audit.page(EVERYTHING, ADMIN);
    expect(total).toBe(3);
    expect(items.map((e) => [e.action, e.actor, e.subject, e.shortCode, e.domain])).toEqual([
      ["short-url.deleted", { type: "api-key", name: "release-bot" }, "launch", "launch", null],
      ["short-url.edited", { type: "api-key", name: "release-bot" }, "launch", "launch", null],
      ["short-url.created", { type: "api-key", name: "release-bot" }, "launch", "launch", null],
    ]);
    expect(items[1]?.details).toEqual({
      changes: { longUrl: { from: "https://example.com/a", to: "https://example.com/b" }, maxVisits: { from: null, to: 10 } },
    });
    expect(items[0]?.details).toMatchObject({ longUrl: "https://example.com/b", tags: ["promo"], maxVisits: 10 });
    // A creation keeps the long URL and what differs from a new link's defaults; a deletion keeps everything.
    expect(items[2]?.details).toEqual({ longUrl: "https://example.com/a", tags: ["promo"] });
  });

  test("is written in the change's transaction: when the event cannot be written the change is not made either", async () => {
    const failing = (db: Database) =>
      new AuditLog({
        insert: () => {
          throw new Error("disk I/O error");
        },
        page: new AuditStore(db).page.bind(new AuditStore(db)),
      } as unknown as AuditStore);
    const { links, count } = setup(failing);
    await expect(links.create({ findIfExists: false, longUrl: "https://example.com/a", customSlug: "lost" }, ADMIN)).rejects.toThrow(
      "disk I/O error",
    );
    expect(count()).toBe(0);
  });

  test("a refused change leaves no event", async () => {
    const { links, audit } = setup();
    await links.create({ findIfExists: false, longUrl: "https://example.com/a", customSlug: "taken" }, ADMIN);
    await expect(links.create({ findIfExists: false, longUrl: "https://example.com/other", customSlug: "taken" }, ADMIN)).rejects.toThrow();
    await expect(links.edit("taken", null, { longUrl: "https://example.com/c" }, VIEWER)).rejects.toThrow("read-only");
    await expect(links.delete("missing", null, ADMIN)).rejects.toThrow();
    expect(audit.page(EVERYTHING, ADMIN).items.map((e) => e.action)).toEqual(["short-url.created"]);
  });

  test("is read by admin keys only, newest first, a page at a time, and for one link", async () => {
    const { links, audit } = setup();
    for (const slug of ["one", "two", "three"])
      await links.create({ findIfExists: false, longUrl: `https://example.com/${slug}`, customSlug: slug }, ADMIN);
    await links.edit("one", null, { title: "One" }, ADMIN);
    expect(() => audit.page(EVERYTHING, VIEWER)).toThrow("Only admin API keys");
    const second = audit.page({ filter: {}, page: 2, itemsPerPage: 3 }, ADMIN);
    expect(second.items.map((e) => e.subject)).toEqual(["one"]);
    expect(second.total).toBe(4);
    const one = audit.page({ filter: { link: { domain: "", shortCode: "one" } }, page: 1, itemsPerPage: 50 }, ADMIN);
    expect(one.items.map((e) => e.action)).toEqual(["short-url.edited", "short-url.created"]);
    await links.edit("two", null, { title: "Two" }, { id: 3, name: "intern", role: "admin" });
    const intern = audit.page({ filter: { actor: "intern" }, page: 1, itemsPerPage: 50 }, ADMIN);
    expect(intern.items.map((e) => [e.action, e.subject])).toEqual([["short-url.edited", "two"]]);
  });
});

describe("parseAuditQuery", () => {
  const key = (domain: string | null) => (domain === null || domain === "s.test" ? "" : domain);
  test("reads pages, dates and one link's code and domain", () => {
    const query = parseAuditQuery(
      new URLSearchParams("page=2&itemsPerPage=10&startDate=2026-12-01&endDate=2026-12-05T10:00:00Z&shortCode=abc&domain=go.test&actor=ci"),
      key,
    );
    expect(query).toEqual({
      page: 2,
      itemsPerPage: 10,
      filter: {
        from: Date.parse("2026-12-01"),
        to: Date.parse("2026-12-05T10:00:00Z"),
        link: { domain: "go.test", shortCode: "abc" },
        actor: "ci",
      },
    });
    expect(parseAuditQuery(new URLSearchParams(""), key)).toEqual({ page: 1, itemsPerPage: 50, filter: {} });
  });

  test.each([
    ["itemsPerPage=501", "itemsPerPage"],
    ["page=0", "page"],
    ["startDate=yesterday", "startDate"],
    ["startDate=2026-12-05&endDate=2026-12-01", "endDate"],
    ["domain=go.test", "domain"],
  ])("refuses %s naming %s", (query, field) => {
    expect(() => parseAuditQuery(new URLSearchParams(query), key)).toThrow(field);
  });
});
