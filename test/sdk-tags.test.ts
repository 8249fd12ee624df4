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
