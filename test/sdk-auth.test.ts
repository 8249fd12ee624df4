/**
 * API keys as Shlink's clients see them, through the SDK against the compiled binary: missing and unknown keys,
 * read-only keys (our extension: reads pass, writes are 403), revocation while the server runs; and robots.txt.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { runCli, startServer, type TestServer } from "./support/binary";
import { problemType, type ShlinkApi, sdkClient } from "./support/sdk";

let server: TestServer;
let admin: ShlinkApi;
beforeAll(async () => {
  server = await startServer();
  admin = sdkClient(server);
  await admin.createShortUrl({ longUrl: "https://example.com/seen", customSlug: "seen", tags: ["ro-tag"] });
});
afterAll(async () => {
  await server[Symbol.asyncDispose]();
});

describe("authentication", () => {
  test("returns 401 missing-authentication naming X-Api-Key when no key is sent", async () => {
    const response = await fetch(`${server.baseUrl}/rest/v3/short-urls`);
    expect(response.status).toBe(401);
    expect(response.headers.get("content-type")).toBe("application/problem+json");
    expect(await response.json()).toMatchObject({
      type: problemType("missing-authentication"),
      title: "Invalid authorization",
      status: 401,
      expectedHeaders: ["X-Api-Key"],
    });
  });

  test("returns 401 missing-authentication through the SDK when the key is empty", async () => {
    await expect(sdkClient(server, "").listShortUrls()).rejects.toMatchObject({ type: problemType("missing-authentication"), status: 401 });
  });

  test("returns 401 invalid-api-key for a key the server never issued", async () => {
    const stranger = sdkClient(server, "shk_00000000000000000000000000000000");
    await expect(stranger.listShortUrls()).rejects.toMatchObject({
      type: problemType("invalid-api-key"),
      title: "Invalid API key",
      status: 401,
    });
    await expect(stranger.createShortUrl({ longUrl: "https://example.com/x" })).rejects.toMatchObject({ status: 401 });
  });

  test("returns 401 before looking at the body of an unauthenticated write", async () => {
    for (const body of ["{not json", JSON.stringify({ longUrl: "javascript:alert(1)" })]) {
      const response = await fetch(`${server.baseUrl}/rest/v3/short-urls`, {
        method: "POST",
        body,
        headers: { "Content-Type": "application/json" },
      });
      expect(response.status).toBe(401);
    }
  });

  test("health needs no key", async () => {
    expect((await sdkClient(server, "").health()).status).toBe("pass");
  });
});

describe("a read-only key", () => {
  let readOnly: ShlinkApi;
  beforeAll(async () => {
    readOnly = sdkClient(server, await server.createKey("ro", "read-only"));
  });

  test("reads short URLs, tags, tag stats and domains", async () => {
    expect((await readOnly.listShortUrls()).data.map((s) => s.shortCode)).toContain("seen");
    expect((await readOnly.getShortUrl({ shortCode: "seen" })).longUrl).toBe("https://example.com/seen");
    expect((await readOnly.listTags()).data).toEqual(["ro-tag"]);
    expect((await readOnly.tagsStats()).data.map((t) => t.tag)).toEqual(["ro-tag"]);
    expect((await readOnly.listDomains()).data[0]?.isDefault).toBe(true);
  });

  test("gets 403 on every short URL write, and nothing changes", async () => {
    const forbidden = { type: problemType("forbidden-operation"), status: 403 };
    await expect(readOnly.createShortUrl({ longUrl: "https://example.com/ro" })).rejects.toMatchObject(forbidden);
    await expect(readOnly.updateShortUrl({ shortCode: "seen" }, { title: "ro" })).rejects.toMatchObject(forbidden);
    await expect(readOnly.deleteShortUrl({ shortCode: "seen" })).rejects.toMatchObject(forbidden);
    const seen = await admin.getShortUrl({ shortCode: "seen" });
    expect(seen.title).toBeNull();
    expect((await admin.listShortUrls()).pagination.totalItems).toBe(1);
  });

  test("gets 403 forbidden-tag-operation on tag renames and deletes, as Shlink's restricted keys do", async () => {
    await expect(readOnly.editTag({ oldName: "ro-tag", newName: "x" })).rejects.toMatchObject({
      type: problemType("forbidden-tag-operation"),
      title: "Forbidden tag operation",
      status: 403,
    });
    await expect(readOnly.deleteTags(["ro-tag"])).rejects.toMatchObject({ type: problemType("forbidden-tag-operation"), status: 403 });
    expect((await admin.listTags()).data).toEqual(["ro-tag"]);
  });

  test("gets 401 invalid-api-key once revoked, while the server keeps running", async () => {
    const revoked = await runCli(["keys", "revoke", "ro", "--data-dir", server.dataDir]);
    expect(revoked.exitCode).toBe(0);
    await expect(readOnly.listShortUrls()).rejects.toMatchObject({ type: problemType("invalid-api-key"), status: 401 });
    expect((await admin.listShortUrls()).pagination.totalItems).toBe(1);
  });
});

describe("robots.txt", () => {
  test("allows exactly the crawlable codes of the default domain and ends with Disallow: /", async () => {
    await admin.createShortUrl({ longUrl: "https://example.com/c1", customSlug: "crawl-b", crawlable: true });
    await admin.createShortUrl({ longUrl: "https://example.com/c2", customSlug: "crawl-a", crawlable: true });
    await admin.createShortUrl({ longUrl: "https://example.com/c3", customSlug: "hidden" });
    await admin.createShortUrl({ longUrl: "https://example.com/c4", customSlug: "elsewhere", crawlable: true, domain: "r.example.com" });
    const response = await fetch(`${server.baseUrl}/robots.txt`);
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toStartWith("text/plain");
    const text = await response.text();
    const allows = text.split("\n").filter((line) => line.startsWith("Allow:"));
    expect(allows).toEqual(["Allow: /crawl-a", "Allow: /crawl-b"]);
    expect(text).toContain("User-agent: *");
    expect(text.trimEnd().endsWith("Disallow: /")).toBe(true);
  });

  test("follows every link write at once, though it is kept between writes", async () => {
    const allows = async () =>
      (await (await fetch(`${server.baseUrl}/robots.txt`)).text()).split("\n").filter((line) => line.startsWith("Allow: /rb-"));
    await admin.createShortUrl({ longUrl: "https://example.com/rb", customSlug: "rb-edit" });
    expect(await allows()).toEqual([]);
    await admin.updateShortUrl({ shortCode: "rb-edit" }, { crawlable: true });
    expect(await allows()).toEqual(["Allow: /rb-edit"]);
    await admin.createShortUrl({ longUrl: "https://example.com/rb2", customSlug: "rb-new", crawlable: true });
    expect(await allows()).toEqual(["Allow: /rb-edit", "Allow: /rb-new"]);
    await admin.deleteShortUrl({ shortCode: "rb-edit" });
    expect(await allows()).toEqual(["Allow: /rb-new"]);
  });
});
