/**
 * Shlink v3 short URL listing through the SDK against the compiled binary: paging, search, tag filters,
 * ordering by every field, date bounds, the exclude flags and the domain filter. Each group of links carries
 * its own tag so assertions are exact.
 */

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { ShlinkShortUrlsListParams } from "@shlinkio/shlink-js-sdk/api-contract";
import { startServer, type TestServer, waitFor } from "./support/binary";
import { BOT_UA, paginationOf, problemType, type ShlinkApi, sdkClient, visitTimes } from "./support/sdk";

let server: TestServer;
let sdk: ShlinkApi;

/** Short codes of a listing, in order. */
async function codes(params: ShlinkShortUrlsListParams): Promise<string[]> {
  return (await sdk.listShortUrls({ itemsPerPage: -1, ...params })).data.map((s) => s.shortCode);
}

const create = (longUrl: string, customSlug: string, extra: Record<string, unknown> = {}) =>
  sdk.createShortUrl({ longUrl, customSlug, ...extra });

beforeAll(async () => {
  server = await startServer({ args: ["--visit-flush-interval", "100ms"] });
  sdk = sdkClient(server);
  // Ordering set, created in this order: each field orders the three differently.
  await create("https://b.example/", "ord-c", { tags: ["ord"], title: "Alpha" });
  await create("https://c.example/", "ord-a", { tags: ["ord"], title: "Charlie" });
  await create("https://a.example/", "ord-b", { tags: ["ord"], title: "Bravo" });
  await visitTimes(server, "ord-c", 3, BOT_UA);
  await visitTimes(server, "ord-a", 2);
  await visitTimes(server, "ord-b", 1);
  // Ordering by visits reads stored counters: wait until the buffered visits are flushed.
  await waitFor("visits flushed", async () => (await sdk.tagsStats()).data.find((t) => t.tag === "ord")?.visitsSummary.total === 6);
});
afterAll(async () => {
  await server[Symbol.asyncDispose]();
});

describe("listShortUrls of every link (itemsPerPage -1)", () => {
  // More links than one batch of the streamed listing holds (ALL_LINKS_BATCH, 200).
  const BULK = 450;
  const bulkCode = (i: number) => `bulk-${String(i).padStart(3, "0")}`;
  beforeAll(async () => {
    for (let start = 0; start < BULK; start += 50) {
      await Promise.all(
        Array.from({ length: 50 }, (_, i) => create(`https://bulk.example/${start + i}`, bulkCode(start + i), { tags: ["bulk"] })),
      );
    }
  });

  test("is written out as it is read, in batches, and holds the same links in the same order as a page of 1000", async () => {
    const response = await server.api("/rest/v3/short-urls?tags[]=bulk&itemsPerPage=-1&orderBy=shortCode-ASC");
    expect(response.status).toBe(200);
    expect(response.headers.get("content-length")).toBeNull();
    expect(response.headers.get("transfer-encoding")).toBe("chunked");
    const all = (await response.json()) as { shortUrls: { data: { shortCode: string }[]; pagination: unknown } };
    expect(all.shortUrls.data.map((s) => s.shortCode)).toEqual(Array.from({ length: BULK }, (_, i) => bulkCode(i)));
    const page = await sdk.listShortUrls({ tags: ["bulk"], itemsPerPage: 1000, orderBy: { field: "shortCode", dir: "ASC" } });
    expect(all.shortUrls.data).toEqual(page.data as unknown as { shortCode: string }[]);
    expect(all.shortUrls.pagination).toEqual({
      currentPage: 1,
      pagesCount: 1,
      itemsPerPage: BULK,
      itemsInCurrentPage: BULK,
      totalItems: BULK,
    });
  });

  test("a client that hangs up part-way leaves the server answering", async () => {
    const controller = new AbortController();
    const response = await server.api("/rest/v3/short-urls?tags[]=bulk&itemsPerPage=-1", { signal: controller.signal });
    const reader = (response.body as ReadableStream<Uint8Array>).getReader();
    expect((await reader.read()).done).toBe(false);
    controller.abort();
    expect(await codes({ tags: ["bulk"] })).toHaveLength(BULK);
    expect((await server.api("/rest/v3/short-urls?tags[]=bulk&itemsPerPage=-1")).status).toBe(200);
  });
});

describe("listShortUrls paging", () => {
  beforeAll(async () => {
    for (let i = 1; i <= 5; i++) await create(`https://example.com/page/${i}`, `page-${i}`, { tags: ["paged"] });
  });

  test("returns the requested page with Shlink's pagination block", async () => {
    const list = await sdk.listShortUrls({ tags: ["paged"], itemsPerPage: 2, page: "2", orderBy: { field: "shortCode", dir: "ASC" } });
    expect(list.data.map((s) => s.shortCode)).toEqual(["page-3", "page-4"]);
    expect(paginationOf(list)).toEqual({ currentPage: 2, pagesCount: 3, itemsPerPage: 2, itemsInCurrentPage: 2, totalItems: 5 });
  });

  test("returns a short last page and an empty page past the end", async () => {
    const last = await sdk.listShortUrls({ tags: ["paged"], itemsPerPage: 2, page: "3" });
    expect(paginationOf(last)).toEqual({ currentPage: 3, pagesCount: 3, itemsPerPage: 2, itemsInCurrentPage: 1, totalItems: 5 });
    const past = await sdk.listShortUrls({ tags: ["paged"], itemsPerPage: 2, page: "9" });
    expect(past.data).toEqual([]);
  });

  test("returns every item on one page for itemsPerPage -1", async () => {
    const all = await sdk.listShortUrls({ tags: ["paged"], itemsPerPage: -1 });
    expect(all.data).toHaveLength(5);
    expect(paginationOf(all)).toEqual({ currentPage: 1, pagesCount: 1, itemsPerPage: 5, itemsInCurrentPage: 5, totalItems: 5 });
  });

  test("reports itemsPerPage 1 for itemsPerPage -1 when nothing matches, as Shlink", async () => {
    const none = await sdk.listShortUrls({ tags: ["no-such-tag"], itemsPerPage: -1 });
    expect(paginationOf(none)).toEqual({ currentPage: 1, pagesCount: 1, itemsPerPage: 1, itemsInCurrentPage: 0, totalItems: 0 });
  });

  test("defaults to 10 items per page, newest first", async () => {
    const list = await sdk.listShortUrls({ tags: ["paged"] });
    expect(paginationOf(list).itemsPerPage).toBe(10);
    expect(list.data.map((s) => s.shortCode)).toEqual(["page-5", "page-4", "page-3", "page-2", "page-1"]);
  });

  test("rejects page 0 with 400 invalid-data naming page", async () => {
    await expect(sdk.listShortUrls({ page: "0" })).rejects.toMatchObject({
      type: problemType("invalid-data"),
      status: 400,
      invalidElements: ["page"],
    });
  });
});

describe("listShortUrls orderBy", () => {
  const expected: Record<string, string[]> = {
    dateCreated: ["ord-c", "ord-a", "ord-b"],
    shortCode: ["ord-a", "ord-b", "ord-c"],
    longUrl: ["ord-b", "ord-c", "ord-a"],
    title: ["ord-c", "ord-b", "ord-a"],
    visits: ["ord-b", "ord-a", "ord-c"],
    nonBotVisits: ["ord-c", "ord-b", "ord-a"],
  };
  for (const [field, ascending] of Object.entries(expected)) {
    test(`orders by ${field} ascending and descending`, async () => {
      const orderField = field as "dateCreated";
      expect(await codes({ tags: ["ord"], orderBy: { field: orderField, dir: "ASC" } })).toEqual(ascending);
      expect(await codes({ tags: ["ord"], orderBy: { field: orderField, dir: "DESC" } })).toEqual([...ascending].reverse());
    });
  }

  test("runs listings and tag stats on the binary's reader worker, which started without a failure", async () => {
    // The worker is an extra entrypoint of the compiled binary; had it failed, reads would fall back (still
    // answering) and the server would have logged why.
    expect((await sdk.listShortUrls({ orderBy: { field: "visits", dir: "DESC" } })).data.length).toBeGreaterThan(0);
    expect((await sdk.tagsStats()).data.length).toBeGreaterThan(0);
    expect(server.stdout + server.stderr).not.toContain("reader_worker_failed");
  });

  test("counts bot and human visits separately in visitsSummary", async () => {
    const list = await sdk.listShortUrls({ tags: ["ord"], orderBy: { field: "shortCode", dir: "ASC" } });
    expect(list.data.map((s) => s.visitsSummary)).toEqual([
      { total: 2, nonBots: 2, bots: 0 },
      { total: 1, nonBots: 1, bots: 0 },
      { total: 3, nonBots: 0, bots: 3 },
    ]);
  });
});

describe("listShortUrls filters", () => {
  beforeAll(async () => {
    await create("https://example.com/rb", "tag-rb", { tags: ["t-red", "t-blue"] });
    await create("https://example.com/r", "tag-r", { tags: ["t-red"] });
    await create("https://example.com/b", "tag-b", { tags: ["t-blue"] });
    await create("https://example.com/needle-in-url", "srch-url", { tags: ["srch"] });
    await create("https://example.com/x", "srch-title", { tags: ["srch"], title: "A Needle in the title" });
    await create("https://example.com/y", "needle-code", { tags: ["srch"] });
    await create("https://example.com/z", "srch-tag", { tags: ["srch", "has-needle"] });
    await create("https://example.com/hay", "srch-none", { tags: ["srch"] });
  });

  const sorted = (params: ShlinkShortUrlsListParams) => codes({ ...params, orderBy: { field: "shortCode", dir: "ASC" } });

  test("searchTerm matches long URL, short code, title and tags, case-insensitively", async () => {
    expect(await sorted({ tags: ["srch"], searchTerm: "NEEDLE" })).toEqual(["needle-code", "srch-tag", "srch-title", "srch-url"]);
  });

  test("tags with tagsMode any matches links with at least one of the tags", async () => {
    expect(await sorted({ tags: ["t-red", "t-blue"], tagsMode: "any" })).toEqual(["tag-b", "tag-r", "tag-rb"]);
    expect(await sorted({ tags: ["t-red", "t-blue"] })).toEqual(["tag-b", "tag-r", "tag-rb"]);
  });

  test("tags with tagsMode all matches only links with every tag", async () => {
    expect(await sorted({ tags: ["t-red", "t-blue"], tagsMode: "all" })).toEqual(["tag-rb"]);
  });

  test("excludeTags drops links carrying any excluded tag, or all of them with excludeTagsMode all", async () => {
    expect(await sorted({ tags: ["t-red"], excludeTags: ["t-blue"] })).toEqual(["tag-r"]);
    expect(await sorted({ tags: ["t-red", "t-blue"], excludeTags: ["t-red", "t-blue"], excludeTagsMode: "all" })).toEqual([
      "tag-b",
      "tag-r",
    ]);
  });

  test("tags and excludeTags are normalised as on create: case and spaces do not matter", async () => {
    await create("https://example.com/norm", "tag-norm", { tags: ["Mixed Case"] });
    expect(await sorted({ tags: ["MIXED CASE"] })).toEqual(["tag-norm"]);
    expect(await sorted({ tags: [" mixed-case "], tagsMode: "all" })).toEqual(["tag-norm"]);
    expect(await sorted({ tags: ["mixed-case"], excludeTags: ["Mixed Case"] })).toEqual([]);
  });

  test("rejects tagsMode some with 400 invalid-data naming tagsMode", async () => {
    await expect(sdk.listShortUrls({ tags: ["t-red"], tagsMode: "some" as "any" })).rejects.toMatchObject({
      type: problemType("invalid-data"),
      status: 400,
      invalidElements: ["tagsMode"],
    });
  });

  test("startDate and endDate bound dateCreated, inclusive, with millisecond precision", async () => {
    await create("https://example.com/early", "date-early", { tags: ["dated"] });
    const between = Date.now();
    // Let the clock pass `between` so the next link is strictly later (a poll, not a readiness sleep).
    await waitFor("the clock to tick", () => Date.now() > between + 1, 1_000, 1);
    await create("https://example.com/late", "date-late", { tags: ["dated"] });
    const iso = (ms: number) => new Date(ms).toISOString();
    expect(await sorted({ tags: ["dated"], startDate: iso(between + 1) })).toEqual(["date-late"]);
    expect(await sorted({ tags: ["dated"], endDate: iso(between) })).toEqual(["date-early"]);
    expect(await sorted({ tags: ["dated"], startDate: iso(between - 60_000), endDate: iso(Date.now() + 60_000) })).toEqual([
      "date-early",
      "date-late",
    ]);
  });

  test("excludeMaxVisitsReached drops links whose visits reached maxVisits", async () => {
    await create("https://example.com/max-1", "max-used", { tags: ["maxv"], maxVisits: 1 });
    await create("https://example.com/max-2", "max-left", { tags: ["maxv"], maxVisits: 2 });
    await visitTimes(server, "max-used", 1);
    await visitTimes(server, "max-left", 1);
    await waitFor("visits flushed", async () => (await sdk.tagsStats()).data.find((t) => t.tag === "maxv")?.visitsSummary.total === 2);
    expect(await sorted({ tags: ["maxv"] })).toEqual(["max-left", "max-used"]);
    expect(await sorted({ tags: ["maxv"], excludeMaxVisitsReached: true })).toEqual(["max-left"]);
  });

  test("excludePastValidUntil drops links whose validUntil has passed", async () => {
    await create("https://example.com/past", "valid-past", { tags: ["validity"], validUntil: "2020-01-01T00:00:00+00:00" });
    await create("https://example.com/future", "valid-future", { tags: ["validity"], validUntil: "2099-01-01T00:00:00+00:00" });
    await create("https://example.com/forever", "valid-forever", { tags: ["validity"] });
    expect(await sorted({ tags: ["validity"], excludePastValidUntil: true })).toEqual(["valid-forever", "valid-future"]);
  });

  test("domain lists one domain's links, and DEFAULT only the default domain's", async () => {
    await create("https://example.com/dom", "dom-link", { tags: ["doms"], domain: "s.example.com" });
    await create("https://example.com/def", "def-link", { tags: ["doms"] });
    expect(await sorted({ tags: ["doms"], domain: "s.example.com" })).toEqual(["dom-link"]);
    expect(await sorted({ tags: ["doms"], domain: "DEFAULT" })).toEqual(["def-link"]);
    expect(await sorted({ tags: ["doms"], domain: new URL(server.baseUrl).host })).toEqual(["def-link"]);
    expect(await sorted({ tags: ["doms"] })).toEqual(["def-link", "dom-link"]);
  });
});
