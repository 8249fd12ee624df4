/**
 * Shlink v3 tags and domains through the SDK against the compiled binary: listing, stats with counts,
 * renaming (with its 404 and 409 problems) and deleting tags, and the domain list.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { startServer, type TestServer, waitFor } from "./support/binary";
import { BOT_UA, problemType, type ShlinkApi, sdkClient, visitTimes } from "./support/sdk";

let server: TestServer;
let sdk: ShlinkApi;
beforeAll(async () => {
  server = await startServer({ args: ["--visit-flush-interval", "100ms"] });
  sdk = sdkClient(server);
  await sdk.createShortUrl({ longUrl: "https://example.com/1", customSlug: "tg-1", tags: ["apple", "banana"] });
  await sdk.createShortUrl({ longUrl: "https://example.com/2", customSlug: "tg-2", tags: ["banana"] });
  await sdk.createShortUrl({ longUrl: "https://example.com/3", customSlug: "tg-3", tags: ["cherry"] });
});
afterAll(async () => {
  await server[Symbol.asyncDispose]();
});

const tagsOf = async (shortCode: string) => (await sdk.getShortUrl({ shortCode })).tags;

describe("listTags and tagsStats", () => {
  test("listTags returns every tag name, sorted", async () => {
    expect((await sdk.listTags()).data).toEqual(["apple", "banana", "cherry"]);
  });

  test("tagsStats counts short URLs and visits, bots apart, per tag", async () => {
    await visitTimes(server, "tg-1", 2);
    await visitTimes(server, "tg-2", 1, BOT_UA);
    await waitFor("visits flushed", async () => (await sdk.tagsStats()).data.find((t) => t.tag === "banana")?.visitsSummary.total === 3);
    expect((await sdk.tagsStats()).data).toEqual([
      { tag: "apple", shortUrlsCount: 1, visitsSummary: { total: 2, nonBots: 2, bots: 0 } },
      { tag: "banana", shortUrlsCount: 2, visitsSummary: { total: 3, nonBots: 2, bots: 1 } },
      { tag: "cherry", shortUrlsCount: 1, visitsSummary: { total: 0, nonBots: 0, bots: 0 } },
    ]);
  });

  test("both carry Shlink's pagination block", async () => {
    for (const path of ["/rest/v3/tags", "/rest/v3/tags/stats"]) {
      const body = (await (await server.api(path)).json()) as { tags: { pagination: unknown } };
      expect(body.tags.pagination).toEqual({ currentPage: 1, pagesCount: 1, itemsPerPage: 3, itemsInCurrentPage: 3, totalItems: 3 });
    }
  });
});

describe("orderBy on listTags and tagsStats (sent raw: the SDK does not pass it)", () => {
  // shortUrlsCount a 1, b 2, c 3, d 2; visits a 3 (bots), b 4, c 4, d 2; nonBotVisits a 0, b 1, c 1, d 2.
  beforeAll(async () => {
    await sdk.createShortUrl({ longUrl: "https://example.com/o1", customSlug: "ob-1", tags: ["ob-a", "ob-b", "ob-c"] });
    await sdk.createShortUrl({ longUrl: "https://example.com/o2", customSlug: "ob-2", tags: ["ob-b", "ob-c"] });
    await sdk.createShortUrl({ longUrl: "https://example.com/o3", customSlug: "ob-3", tags: ["ob-c", "ob-d"] });
    await sdk.createShortUrl({ longUrl: "https://example.com/o4", customSlug: "ob-4", tags: ["ob-d"] });
    await visitTimes(server, "ob-1", 3, BOT_UA);
    await visitTimes(server, "ob-2", 1);
    await visitTimes(server, "ob-4", 2);
    await waitFor("visits flushed", async () => (await sdk.tagsStats()).data.find((t) => t.tag === "ob-c")?.visitsSummary.total === 4);
  });

  async function listed<T>(path: string): Promise<{ data: T[]; pagination: unknown }> {
    const response = await server.api(path);
    expect(response.status).toBe(200);
    return ((await response.json()) as { tags: { data: T[]; pagination: unknown } }).tags;
  }
  const statsOrder = async (query: string) =>
    (await listed<{ tag: string }>(`/rest/v3/tags/stats?searchTerm=ob-&${query}`)).data.map((t) => t.tag.slice(3)).join("");
  const namesOrder = async (query: string) =>
    (await listed<string>(`/rest/v3/tags?searchTerm=ob-&${query}`)).data.map((t) => t.slice(3)).join("");

  const expected: Record<string, [ascending: string, descending: string]> = {
    tag: ["abcd", "dcba"],
    shortUrlsCount: ["abdc", "cbda"],
    visits: ["dabc", "bcad"],
    nonBotVisits: ["abcd", "dbca"],
  };
  for (const [field, [ascending, descending]] of Object.entries(expected)) {
    test(`tagsStats orders by ${field} both ways (ASC when no direction is given), equal counts by name ascending`, async () => {
      expect(await statsOrder(`orderBy=${field}-ASC`)).toBe(ascending);
      expect(await statsOrder(`orderBy=${field}-DESC`)).toBe(descending);
      expect(await statsOrder(`orderBy=${field}`)).toBe(ascending);
    });
  }

  test("visitsCount, Shlink's deprecated name, orders by visits", async () => {
    expect(await statsOrder("orderBy=visitsCount-DESC")).toBe("bcad");
  });

  test("takes the direction in lower case too, as Shlink's SQL does", async () => {
    expect(await statsOrder("orderBy=visits-desc")).toBe("bcad");
    expect(await namesOrder("orderBy=tag-desc")).toBe("dcba");
  });

  test("without orderBy, or with a field Shlink does not know, tagsStats is by name, in the direction given", async () => {
    expect(await statsOrder("")).toBe("abcd");
    expect(await statsOrder("orderBy=nope-DESC")).toBe("dcba");
    expect(await statsOrder("orderBy=nope")).toBe("abcd");
  });

  test("pages the sorted list", async () => {
    const second = await listed<{ tag: string }>("/rest/v3/tags/stats?searchTerm=ob-&orderBy=visits-DESC&itemsPerPage=3&page=2");
    expect(second.data.map((t) => t.tag)).toEqual(["ob-d"]);
    expect(second.pagination).toEqual({ currentPage: 2, pagesCount: 2, itemsPerPage: 3, itemsInCurrentPage: 1, totalItems: 4 });
    expect((await listed<string>("/rest/v3/tags?searchTerm=ob-&orderBy=tag-DESC&itemsPerPage=3")).data).toEqual(["ob-d", "ob-c", "ob-b"]);
  });

  test("listTags orders by name whatever the field, in the direction given, as Shlink", async () => {
    expect(await namesOrder("orderBy=tag-DESC")).toBe("dcba");
    expect(await namesOrder("orderBy=visits-DESC")).toBe("dcba");
    expect(await namesOrder("orderBy=shortUrlsCount-ASC")).toBe("abcd");
    expect(await namesOrder("")).toBe("abcd");
  });
});

describe("tag names, normalised as Shlink does", () => {
  test("createShortUrl stores tags trimmed, lower-cased and with dashes for spaces, each once", async () => {
    const created = await sdk.createShortUrl({
      longUrl: "https://example.com/n1",
      customSlug: "norm-1",
      tags: ["Foo Bar", " foo-bar ", "UPPER"],
    });
    expect(created.tags).toEqual(["foo-bar", "upper"]);
    expect(await tagsOf("norm-1")).toEqual(["foo-bar", "upper"]);
    expect((await sdk.listTags()).data.filter((t) => t.toLowerCase().includes("foo"))).toEqual(["foo-bar"]);
  });

  test("updateShortUrl normalises the tags it is given", async () => {
    await sdk.createShortUrl({ longUrl: "https://example.com/n2", customSlug: "norm-2", tags: ["plain"] });
    expect((await sdk.updateShortUrl({ shortCode: "norm-2" }, { tags: ["Edited Tag", "FOO BAR"] })).tags).toEqual([
      "edited-tag",
      "foo-bar",
    ]);
    expect(await tagsOf("norm-2")).toEqual(["edited-tag", "foo-bar"]);
  });

  test("findIfExists finds a link whose tags differ only in case and spaces", async () => {
    const first = await sdk.createShortUrl({ longUrl: "https://example.com/n3", tags: ["Same Tag"] });
    const again = await sdk.createShortUrl({ longUrl: "https://example.com/n3", tags: ["same-tag"], findIfExists: true });
    expect(again.shortCode).toBe(first.shortCode);
  });

  test("rename takes both names as given, as Shlink: the new name is not normalised", async () => {
    await sdk.createShortUrl({ longUrl: "https://example.com/n4", customSlug: "norm-4", tags: ["to-rename"] });
    expect(await sdk.editTag({ oldName: "to-rename", newName: "Renamed Tag" })).toEqual({ oldName: "to-rename", newName: "Renamed Tag" });
    expect(await tagsOf("norm-4")).toEqual(["Renamed Tag"]);
    await expect(sdk.editTag({ oldName: "renamed-tag", newName: "x" })).rejects.toMatchObject({ status: 404, tag: "renamed-tag" });
  });
});

describe("editTag", () => {
  test("renames a tag on every link that carries it, answering 204", async () => {
    await sdk.createShortUrl({ longUrl: "https://example.com/r1", customSlug: "ren-1", tags: ["before"] });
    await sdk.createShortUrl({ longUrl: "https://example.com/r2", customSlug: "ren-2", tags: ["before", "stay"] });
    const response = await server.api("/rest/v3/tags", { method: "PUT", body: JSON.stringify({ oldName: "before", newName: "after" }) });
    expect(response.status).toBe(204);
    expect(await tagsOf("ren-1")).toEqual(["after"]);
    expect(await tagsOf("ren-2")).toEqual(["after", "stay"]);
    expect((await sdk.listTags()).data).not.toContain("before");
  });

  test("resolves with the renaming through the SDK", async () => {
    await sdk.createShortUrl({ longUrl: "https://example.com/r3", customSlug: "ren-3", tags: ["sdk-old"] });
    expect(await sdk.editTag({ oldName: "sdk-old", newName: "sdk-new" })).toEqual({ oldName: "sdk-old", newName: "sdk-new" });
    expect(await tagsOf("ren-3")).toEqual(["sdk-new"]);
  });

  test("returns 404 tag-not-found naming the tag for an unknown tag", async () => {
    await expect(sdk.editTag({ oldName: "ghost", newName: "spirit" })).rejects.toMatchObject({
      type: problemType("tag-not-found"),
      title: "Tag not found",
      status: 404,
      tag: "ghost",
    });
  });

  test("returns 409 tag-conflict naming both tags when the new name exists, and changes nothing", async () => {
    await expect(sdk.editTag({ oldName: "apple", newName: "cherry" })).rejects.toMatchObject({
      type: problemType("tag-conflict"),
      title: "Tag conflict",
      status: 409,
      oldName: "apple",
      newName: "cherry",
    });
    expect(await tagsOf("tg-1")).toEqual(["apple", "banana"]);
  });

  test("returns 400 invalid-data naming oldName and newName when they are empty", async () => {
    await expect(sdk.editTag({ oldName: "", newName: " " })).rejects.toMatchObject({
      type: problemType("invalid-data"),
      status: 400,
      invalidElements: ["oldName", "newName"],
    });
  });
});

describe("deleteTags", () => {
  test("removes the tags from every link and from the tag list, answering 204", async () => {
    await sdk.createShortUrl({ longUrl: "https://example.com/d1", customSlug: "del-1", tags: ["gone-1", "gone-2", "kept"] });
    const response = await server.api("/rest/v3/tags?tags[]=gone-1", { method: "DELETE" });
    expect(response.status).toBe(204);
    expect(await sdk.deleteTags(["gone-2", "never-existed"])).toEqual({ tags: ["gone-2", "never-existed"] });
    expect(await tagsOf("del-1")).toEqual(["kept"]);
    expect((await sdk.listTags()).data).not.toContain("gone-1");
    expect((await sdk.listTags()).data).not.toContain("gone-2");
    expect((await sdk.getShortUrl({ shortCode: "del-1" })).longUrl).toBe("https://example.com/d1");
  });

  test("deletes nothing and answers 204 when no tag is given, as Shlink", async () => {
    const before = (await sdk.listTags()).data;
    expect(before.length).toBeGreaterThan(0);
    expect(await sdk.deleteTags([])).toEqual({ tags: [] });
    expect((await server.api("/rest/v3/tags", { method: "DELETE" })).status).toBe(204);
    expect((await sdk.listTags()).data).toEqual(before);
  });
});

describe("listDomains", () => {
  test("lists the default domain first, then every domain holding links once, in order, with null redirects", async () => {
    await sdk.createShortUrl({ longUrl: "https://example.com/on-dom", domain: "links.example.com" });
    await sdk.createShortUrl({ longUrl: "https://example.com/on-dom-2", domain: "links.example.com" });
    await sdk.createShortUrl({ longUrl: "https://example.com/on-a", domain: "a.example.com" });
    await sdk.createShortUrl({ longUrl: "https://example.com/on-z", domain: "z.example.com" });
    const noRedirects = { baseUrlRedirect: null, regular404Redirect: null, invalidShortUrlRedirect: null };
    expect(await sdk.listDomains()).toEqual({
      data: [
        { domain: new URL(server.baseUrl).host, isDefault: true, redirects: noRedirects },
        { domain: "a.example.com", isDefault: false, redirects: noRedirects },
        { domain: "links.example.com", isDefault: false, redirects: noRedirects },
        { domain: "z.example.com", isDefault: false, redirects: noRedirects },
      ],
      defaultRedirects: noRedirects,
    });
  });
});
