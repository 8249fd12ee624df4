/**
 * Shlink v3 visits through @shlinkio/shlink-js-sdk against the compiled binary: the overview, visit lists by short
 * URL, tag, domain, orphan and non-orphan (shapes, filters, paging, errors), and deleting visits.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { startServer, type TestServer, waitFor } from "./support/binary";
import { BOT_UA, BROWSER_UA, paginationOf, problemType, SHLINK_DATE, type ShlinkApi, sdkClient } from "./support/sdk";

let server: TestServer;
let sdk: ShlinkApi;

const REFERER = "https://referrer.example/page";
const CUSTOM_DOMAIN = "d.example.com";

async function hit(path: string, init: { method?: string; ua?: string; host?: string; referer?: string } = {}): Promise<number> {
  const headers: Record<string, string> = { "User-Agent": init.ua ?? BROWSER_UA };
  if (init.host) headers.Host = init.host;
  if (init.referer) headers.Referer = init.referer;
  const response = await fetch(`${server.baseUrl}${path}`, { method: init.method ?? "GET", headers, redirect: "manual" });
  await response.arrayBuffer();
  return response.status;
}

/** Waits (bounded) until the flush has written what the overview should count. */
async function waitForOverview(nonOrphan: number, orphan: number): Promise<void> {
  await waitFor(`overview of ${nonOrphan} + ${orphan} visits`, async () => {
    const overview = await sdk.getVisitsOverview();
    return overview.nonOrphanVisits.total === nonOrphan && overview.orphanVisits.total === orphan;
  });
}

beforeAll(async () => {
  server = await startServer();
  sdk = sdkClient(server);
  await sdk.createShortUrl({ longUrl: "https://example.com/a", customSlug: "v-a", tags: ["t1"] });
  await sdk.createShortUrl({ longUrl: "https://example.com/b", customSlug: "v-b", tags: ["t1", "t2"] });
  await sdk.createShortUrl({ longUrl: "https://example.com/c", customSlug: "v-c", domain: CUSTOM_DOMAIN });
  await sdk.createShortUrl({ longUrl: "https://example.com/quiet", customSlug: "v-quiet", tags: ["quiet", "café"] });
  // v-a: 3 people (one with a referer), a crawler twice, and a HEAD (counted as a bot, as Shlink does).
  for (let i = 0; i < 3; i++) expect(await hit("/v-a", i === 0 ? { referer: REFERER } : {})).toBe(302);
  for (let i = 0; i < 2; i++) expect(await hit("/v-a", { ua: BOT_UA })).toBe(302);
  expect(await hit("/v-a", { method: "HEAD" })).toBe(302);
  for (let i = 0; i < 2; i++) expect(await hit("/v-b")).toBe(302);
  expect(await hit("/v-c", { host: CUSTOM_DOMAIN })).toBe(302);
  // Orphans: the base URL, an unknown code, any other path.
  expect(await hit("/")).toBe(404);
  expect(await hit("/no-such-code")).toBe(404);
  expect(await hit("/a/b")).toBe(404);
  await waitForOverview(9, 3);
});
afterAll(async () => {
  await server[Symbol.asyncDispose]();
});

describe("getVisitsOverview", () => {
  test("returns non-orphan and orphan totals split into bots and non-bots", async () => {
    expect(await sdk.getVisitsOverview()).toEqual({
      nonOrphanVisits: { total: 9, nonBots: 6, bots: 3 },
      orphanVisits: { total: 3, nonBots: 3, bots: 0 },
      visitsCount: 9,
      orphanVisitsCount: 3,
    } as never);
  });
});

describe("getShortUrlVisits", () => {
  test("lists a link's visits newest first in Shlink's visit shape", async () => {
    const visits = await sdk.getShortUrlVisits({ shortCode: "v-a" });
    expect(paginationOf(visits)).toEqual({ currentPage: 1, pagesCount: 1, itemsPerPage: 6, itemsInCurrentPage: 6, totalItems: 6 });
    const dates = visits.data.map((v) => Date.parse(v.date));
    expect(dates).toEqual([...dates].sort((a, b) => b - a));
    // The oldest is the first browser visit, the one with a referer.
    expect(visits.data.at(-1)).toEqual({
      referer: REFERER,
      date: expect.stringMatching(SHLINK_DATE),
      userAgent: BROWSER_UA,
      visitLocation: null,
      potentialBot: false,
      visitedUrl: `${server.baseUrl}/v-a`,
      redirectUrl: "https://example.com/a",
    });
    expect(visits.data.map((v) => v.potentialBot)).toEqual([true, true, true, false, false, false]);
    expect(visits.data[1]?.userAgent).toBe(BOT_UA);
    expect(visits.data[1]?.referer).toBe("");
  });

  test("with excludeBots lists only people's visits", async () => {
    const visits = await sdk.getShortUrlVisits({ shortCode: "v-a" }, { excludeBots: true });
    expect(visits.data).toHaveLength(3);
    expect(visits.data.every((v) => !v.potentialBot)).toBe(true);
    expect(paginationOf(visits).totalItems).toBe(3);
  });

  test("pages through every visit exactly once, with Shlink's pagination block", async () => {
    const all = (await sdk.getShortUrlVisits({ shortCode: "v-a" })).data;
    const pages = [];
    for (let page = 1; page <= 3; page++) {
      const list = await sdk.getShortUrlVisits({ shortCode: "v-a" }, { page, itemsPerPage: 2 });
      expect(paginationOf(list)).toEqual({ currentPage: page, pagesCount: 3, itemsPerPage: 2, itemsInCurrentPage: 2, totalItems: 6 });
      pages.push(...list.data);
    }
    expect(pages).toEqual(all);
    const past = await sdk.getShortUrlVisits({ shortCode: "v-a" }, { page: 4, itemsPerPage: 2 });
    expect(past.data).toEqual([]);
    expect(paginationOf(past)).toMatchObject({ currentPage: 4, pagesCount: 3, itemsInCurrentPage: 0, totalItems: 6 });
  });

  test("filters by startDate and endDate, inclusive", async () => {
    const all = (await sdk.getShortUrlVisits({ shortCode: "v-a" })).data;
    const newest = all[0]?.date as string;
    const oldest = all.at(-1)?.date as string;
    const fromNewest = await sdk.getShortUrlVisits({ shortCode: "v-a" }, { startDate: newest });
    expect(fromNewest.data).toEqual(all.filter((v) => v.date >= newest));
    const untilOldest = await sdk.getShortUrlVisits({ shortCode: "v-a" }, { endDate: oldest.replace("+00:00", ".999+00:00") });
    expect(untilOldest.data).toEqual(all.filter((v) => v.date <= oldest));
    const future = await sdk.getShortUrlVisits({ shortCode: "v-a" }, { startDate: "2999-01-01T00:00:00+00:00" });
    expect(future.data).toEqual([]);
    expect(paginationOf(future).totalItems).toBe(0);
    const past = await sdk.getShortUrlVisits({ shortCode: "v-a" }, { endDate: "2000-01-01" });
    expect(past.data).toEqual([]);
  });

  test("finds a link on a custom domain with ?domain=", async () => {
    const visits = await sdk.getShortUrlVisits({ shortCode: "v-c", domain: CUSTOM_DOMAIN });
    expect(visits.data).toHaveLength(1);
    expect(visits.data[0]?.visitedUrl).toBe(`http://${CUSTOM_DOMAIN}/v-c`);
  });

  test("answers 404 short-url-not-found for an unknown code, or a code on another domain", async () => {
    await expect(sdk.getShortUrlVisits({ shortCode: "nope" })).rejects.toMatchObject({
      type: problemType("short-url-not-found"),
      status: 404,
      shortCode: "nope",
    });
    await expect(sdk.getShortUrlVisits({ shortCode: "v-c" })).rejects.toMatchObject({
      status: 404,
      type: problemType("short-url-not-found"),
    });
  });

  test.each([
    ["startDate=yesterday", "startDate"],
    ["endDate=2026-13-01", "endDate"],
    ["page=0", "page"],
    ["itemsPerPage=abc", "itemsPerPage"],
    ["excludeBots=perhaps", "excludeBots"],
  ])("answers 400 invalid-data naming the field for %p", async (query, field) => {
    const response = await server.api(`/rest/v3/short-urls/v-a/visits?${query}`);
    expect(response.status).toBe(400);
    expect(response.headers.get("content-type")).toBe("application/problem+json");
    expect(await response.json()).toMatchObject({ type: problemType("invalid-data"), status: 400, invalidElements: [field] });
  });

  test("answers 401 without an API key", async () => {
    const response = await fetch(`${server.baseUrl}/rest/v3/short-urls/v-a/visits`);
    expect(response.status).toBe(401);
  });
});

describe("getTagVisits", () => {
  test("lists the visits of every link carrying the tag, newest first", async () => {
    const t1 = await sdk.getTagVisits("t1");
    expect(paginationOf(t1).totalItems).toBe(8);
    expect(new Set(t1.data.map((v) => v.redirectUrl))).toEqual(new Set(["https://example.com/a", "https://example.com/b"]));
    const dates = t1.data.map((v) => Date.parse(v.date));
    expect(dates).toEqual([...dates].sort((a, b) => b - a));
    expect((await sdk.getTagVisits("t2")).data.map((v) => v.visitedUrl)).toEqual([`${server.baseUrl}/v-b`, `${server.baseUrl}/v-b`]);
    expect(paginationOf(await sdk.getTagVisits("t1", { excludeBots: true, itemsPerPage: 3 }))).toEqual({
      currentPage: 1,
      pagesCount: 2,
      itemsPerPage: 3,
      itemsInCurrentPage: 3,
      totalItems: 5,
    });
  });

  test("a tag without visits has none; an unknown tag is 404 tag-not-found", async () => {
    expect((await sdk.getTagVisits("quiet")).data).toEqual([]);
    // The SDK puts the tag in the path as is: fetch percent-encodes the é, the server decodes it. (A space would not
    // do: tags are stored with dashes for spaces, as in Shlink, whose tag visits take the name as given.)
    expect(paginationOf(await sdk.getTagVisits("café")).totalItems).toBe(0);
    await expect(sdk.getTagVisits("missing-tag")).rejects.toMatchObject({
      type: problemType("tag-not-found"),
      status: 404,
      tag: "missing-tag",
    });
  });
});

describe("getDomainVisits", () => {
  test("DEFAULT lists the default domain's links' visits, a custom domain its own", async () => {
    expect(paginationOf(await sdk.getDomainVisits("DEFAULT")).totalItems).toBe(8);
    const custom = await sdk.getDomainVisits(CUSTOM_DOMAIN);
    expect(custom.data.map((v) => v.redirectUrl)).toEqual(["https://example.com/c"]);
  });

  test("an unknown domain is 404 domain-not-found naming the authority", async () => {
    await expect(sdk.getDomainVisits("unknown.example")).rejects.toMatchObject({
      type: problemType("domain-not-found"),
      status: 404,
      authority: "unknown.example",
    });
  });
});

describe("getOrphanVisits and getNonOrphanVisits", () => {
  test("orphan visits carry their type and the URL visited", async () => {
    const orphans = await sdk.getOrphanVisits();
    expect(paginationOf(orphans).totalItems).toBe(3);
    const byType = Object.fromEntries(orphans.data.map((v) => [(v as { type: string }).type, v.visitedUrl]));
    expect(byType).toEqual({
      base_url: `${server.baseUrl}/`,
      invalid_short_url: `${server.baseUrl}/no-such-code`,
      regular_404: `${server.baseUrl}/a/b`,
    });
    expect(orphans.data[0]).toMatchObject({ redirectUrl: null, potentialBot: false, date: expect.stringMatching(SHLINK_DATE) });
  });

  test("filter orphan visits by type; a bad type is 400 naming type", async () => {
    const invalid = await sdk.getOrphanVisits({ type: "invalid_short_url" });
    expect(invalid.data.map((v) => (v as { type: string }).type)).toEqual(["invalid_short_url"]);
    await expect(sdk.getOrphanVisits({ type: "nonsense" as never })).rejects.toMatchObject({
      type: problemType("invalid-data"),
      invalidElements: ["type"],
    });
  });

  test("non-orphan visits are every link's, without a type", async () => {
    const all = await sdk.getNonOrphanVisits();
    expect(paginationOf(all).totalItems).toBe(9);
    expect(all.data.some((v) => "type" in v)).toBe(false);
    expect(paginationOf(await sdk.getNonOrphanVisits({ excludeBots: true })).totalItems).toBe(6);
    expect(paginationOf(await sdk.getNonOrphanVisits({ domain: CUSTOM_DOMAIN })).totalItems).toBe(1);
  });
});

describe("deleting visits", () => {
  test("deleteShortUrlVisits removes a link's visits from its lists, its summary and the overview", async () => {
    expect(await sdk.deleteShortUrlVisits({ shortCode: "v-b" })).toEqual({ deletedVisits: 2 });
    expect((await sdk.getShortUrl({ shortCode: "v-b" })).visitsSummary).toEqual({ total: 0, nonBots: 0, bots: 0 });
    expect((await sdk.getShortUrlVisits({ shortCode: "v-b" })).data).toEqual([]);
    expect(paginationOf(await sdk.getTagVisits("t1")).totalItems).toBe(6);
    expect((await sdk.getVisitsOverview()).nonOrphanVisits).toEqual({ total: 7, nonBots: 4, bots: 3 });
    expect((await sdk.getShortUrl({ shortCode: "v-a" })).visitsSummary).toEqual({ total: 6, nonBots: 3, bots: 3 });
  });

  test("deleting the visits of a link at its maxVisits makes it redirect again", async () => {
    await sdk.createShortUrl({ longUrl: "https://example.com/max", customSlug: "v-max", maxVisits: 2 });
    expect(await hit("/v-max")).toBe(302);
    expect(await hit("/v-max")).toBe(302);
    expect(await hit("/v-max")).toBe(404);
    // The two visits may still be buffered: the deletion takes them too.
    expect(await sdk.deleteShortUrlVisits({ shortCode: "v-max" })).toEqual({ deletedVisits: 2 });
    expect(await hit("/v-max")).toBe(302);
  });

  test("deleteShortUrlVisits of an unknown code is 404; a read-only key gets 403", async () => {
    await expect(sdk.deleteShortUrlVisits({ shortCode: "nope" })).rejects.toMatchObject({
      status: 404,
      type: problemType("short-url-not-found"),
    });
    const readOnly = sdkClient(server, await server.createKey("visits-ro", "read-only"));
    await expect(readOnly.deleteShortUrlVisits({ shortCode: "v-a" })).rejects.toMatchObject({ status: 403 });
    expect((await readOnly.getShortUrlVisits({ shortCode: "v-a" })).data).toHaveLength(6);
  });

  test("deleteOrphanVisits removes every orphan visit", async () => {
    // The three of beforeAll, and the refused visit to v-max over its maxVisits (an invalid_short_url, as Shlink).
    expect(await sdk.deleteOrphanVisits()).toEqual({ deletedVisits: 4 });
    expect((await sdk.getOrphanVisits()).data).toEqual([]);
    expect((await sdk.getVisitsOverview()).orphanVisits).toEqual({ total: 0, nonBots: 0, bots: 0 });
  });
});
