/**
 * Shlink v3 conformance through @shlinkio/shlink-js-sdk against the compiled binary: creating, reading,
 * editing and deleting short URLs, with the exact shapes and problem bodies Shlink's clients rely on.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { startServer, type TestServer } from "./support/binary";
import { problemType, SHLINK_DATE, type ShlinkApi, sdkClient, shlinkFields } from "./support/sdk";

let server: TestServer;
let sdk: ShlinkApi;
beforeAll(async () => {
  server = await startServer();
  sdk = sdkClient(server);
});
afterAll(async () => {
  await server[Symbol.asyncDispose]();
});

const NO_DEVICE_URLS = { android: null, ios: null, desktop: null };
const NO_VISITS = { total: 0, nonBots: 0, bots: 0 };

describe("createShortUrl", () => {
  test("returns the short URL in Shlink's exact shape, with every field given", async () => {
    const before = Date.now();
    const created = await sdk.createShortUrl({
      longUrl: "https://example.com/full?b=2&a=1",
      customSlug: "sdk-full",
      tags: ["alpha", "beta"],
      title: "Full",
      crawlable: true,
      forwardQuery: true,
      validSince: "2030-01-01T00:00:00+00:00",
      validUntil: "2031-06-30T12:30:00+02:00",
      maxVisits: 5,
    });
    expect(shlinkFields(created)).toEqual({
      shortCode: "sdk-full",
      shortUrl: `${server.baseUrl}/sdk-full`,
      longUrl: "https://example.com/full?b=2&a=1",
      deviceLongUrls: NO_DEVICE_URLS,
      dateCreated: expect.stringMatching(SHLINK_DATE),
      tags: ["alpha", "beta"],
      meta: { validSince: "2030-01-01T00:00:00+00:00", validUntil: "2031-06-30T10:30:00+00:00", maxVisits: 5 },
      domain: null,
      title: "Full",
      crawlable: true,
      forwardQuery: true,
      visitsSummary: NO_VISITS,
      hasRedirectRules: false,
    });
    const createdAt = Date.parse(created.dateCreated);
    expect(createdAt).toBeGreaterThanOrEqual(Math.floor(before / 1000) * 1000);
    expect(createdAt).toBeLessThanOrEqual(Date.now());
    expect(shlinkFields(await sdk.getShortUrl({ shortCode: "sdk-full" }))).toEqual(shlinkFields(created));
  });

  test("fills defaults when only longUrl is given: generated 7-character code, no meta, not crawlable", async () => {
    const created = await sdk.createShortUrl({ longUrl: "https://example.com/defaults" });
    expect(created.shortCode).toMatch(/^[0-9A-Za-z]{7}$/);
    expect(shlinkFields(created)).toMatchObject({
      tags: [],
      meta: { validSince: null, validUntil: null, maxVisits: null },
      domain: null,
      title: null,
      crawlable: false,
      forwardQuery: true,
    });
  });

  test("generates a code of the requested shortCodeLength", async () => {
    const created = await sdk.createShortUrl({ longUrl: "https://example.com/long-code", shortCodeLength: 12 });
    expect(created.shortCode).toMatch(/^[0-9A-Za-z]{12}$/);
  });

  test("stores forwardQuery false (sent raw, because the SDK drops false values from creates)", async () => {
    const response = await server.api("/rest/v3/short-urls", {
      method: "POST",
      body: JSON.stringify({ longUrl: "https://example.com/no-forward", forwardQuery: false }),
    });
    expect(response.status).toBe(200);
    const { shortCode } = (await response.json()) as { shortCode: string };
    expect((await sdk.getShortUrl({ shortCode })).forwardQuery).toBe(false);
  });

  test("with findIfExists returns the same shortCode for the same long URL and tags, and a new one otherwise", async () => {
    const first = await sdk.createShortUrl({ longUrl: "https://example.com/find-me", tags: ["found"] });
    const again = await sdk.createShortUrl({ longUrl: "https://example.com/find-me", tags: ["found"], findIfExists: true });
    expect(again.shortCode).toBe(first.shortCode);
    const otherTags = await sdk.createShortUrl({ longUrl: "https://example.com/find-me", tags: ["other"], findIfExists: true });
    expect(otherTags.shortCode).not.toBe(first.shortCode);
    const withoutFind = await sdk.createShortUrl({ longUrl: "https://example.com/find-me", tags: ["found"] });
    expect(withoutFind.shortCode).not.toBe(first.shortCode);
  });

  test("on a custom domain returns that domain and a short URL on its host", async () => {
    const created = await sdk.createShortUrl({ longUrl: "https://example.com/on-domain", customSlug: "shared", domain: "s.example.com" });
    expect(created.domain).toBe("s.example.com");
    expect(created.shortUrl).toBe("http://s.example.com/shared");
    const onDefault = await sdk.createShortUrl({ longUrl: "https://example.com/on-default", customSlug: "shared" });
    expect(onDefault.domain).toBeNull();
    expect((await sdk.getShortUrl({ shortCode: "shared", domain: "s.example.com" })).longUrl).toBe("https://example.com/on-domain");
    expect((await sdk.getShortUrl({ shortCode: "shared" })).longUrl).toBe("https://example.com/on-default");
  });

  test("treats the default domain's own host as the default domain (domain null)", async () => {
    const host = new URL(server.baseUrl).host;
    const created = await sdk.createShortUrl({ longUrl: "https://example.com/default-host", customSlug: "default-host", domain: host });
    expect(created.domain).toBeNull();
    expect((await sdk.getShortUrl({ shortCode: "default-host", domain: host })).shortCode).toBe("default-host");
  });

  test("rejects a taken customSlug with 400 non-unique-slug naming the slug", async () => {
    await sdk.createShortUrl({ longUrl: "https://example.com/taken", customSlug: "taken" });
    await expect(sdk.createShortUrl({ longUrl: "https://example.com/other", customSlug: "taken" })).rejects.toMatchObject({
      type: problemType("non-unique-slug"),
      title: "Invalid custom slug",
      status: 400,
      customSlug: "taken",
      detail: 'Provided slug "taken" is already in use.',
    });
  });

  test("rejects a slug taken on a custom domain with 400 non-unique-slug naming slug and domain", async () => {
    await sdk.createShortUrl({ longUrl: "https://example.com/d1", customSlug: "dom-taken", domain: "t.example.com" });
    await expect(
      sdk.createShortUrl({ longUrl: "https://example.com/d2", customSlug: "dom-taken", domain: "t.example.com" }),
    ).rejects.toMatchObject({ type: problemType("non-unique-slug"), status: 400, customSlug: "dom-taken", domain: "t.example.com" });
  });

  test("rejects invalid fields with 400 invalid-data listing every bad field in invalidElements", async () => {
    const error = await sdk
      .createShortUrl({ longUrl: "javascript:alert(1)", maxVisits: -1, validSince: "soon", customSlug: "has space" })
      .then(
        (created) => ({ created }) as Record<string, unknown>,
        (e: unknown) => e as Record<string, unknown>,
      );
    expect(error).toMatchObject({ type: problemType("invalid-data"), title: "Invalid data", status: 400 });
    expect([...(error.invalidElements as string[])].sort()).toEqual(["customSlug", "longUrl", "maxVisits", "validSince"]);
  });
});

describe("getShortUrl", () => {
  test("returns 404 short-url-not-found naming the code for an unknown code", async () => {
    await expect(sdk.getShortUrl({ shortCode: "nope-nope" })).rejects.toMatchObject({
      type: problemType("short-url-not-found"),
      title: "Short URL not found",
      status: 404,
      shortCode: "nope-nope",
      detail: 'No URL found with short code "nope-nope"',
    });
  });

  test("returns 404 short-url-not-found naming code and domain when the code exists only on another domain", async () => {
    await sdk.createShortUrl({ longUrl: "https://example.com/only-default", customSlug: "only-default" });
    await expect(sdk.getShortUrl({ shortCode: "only-default", domain: "u.example.com" })).rejects.toMatchObject({
      type: problemType("short-url-not-found"),
      status: 404,
      shortCode: "only-default",
      domain: "u.example.com",
    });
  });
});

describe("updateShortUrl", () => {
  test("changes each field it is given and returns the edited short URL", async () => {
    const { shortCode } = await sdk.createShortUrl({ longUrl: "https://example.com/before", tags: ["old"] });
    const edited = await sdk.updateShortUrl(
      { shortCode },
      {
        longUrl: "https://example.com/after",
        title: "After",
        tags: ["new1", "new2"],
        crawlable: true,
        forwardQuery: false,
        validSince: "2030-01-01T00:00:00+00:00",
        validUntil: "2030-12-31T23:59:59+00:00",
        maxVisits: 9,
      },
    );
    expect(shlinkFields(edited)).toMatchObject({
      shortCode,
      longUrl: "https://example.com/after",
      title: "After",
      tags: ["new1", "new2"],
      crawlable: true,
      forwardQuery: false,
      meta: { validSince: "2030-01-01T00:00:00+00:00", validUntil: "2030-12-31T23:59:59+00:00", maxVisits: 9 },
    });
    expect(shlinkFields(await sdk.getShortUrl({ shortCode }))).toEqual(shlinkFields(edited));
  });

  test("clears title and meta when given null, and leaves fields it is not given unchanged", async () => {
    const { shortCode } = await sdk.createShortUrl({
      longUrl: "https://example.com/clear",
      title: "Title",
      tags: ["keep"],
      crawlable: true,
      validSince: "2030-01-01T00:00:00+00:00",
      validUntil: "2031-01-01T00:00:00+00:00",
      maxVisits: 3,
    });
    const cleared = await sdk.updateShortUrl({ shortCode }, { title: null, validSince: null, validUntil: null, maxVisits: null });
    expect(shlinkFields(cleared)).toMatchObject({
      longUrl: "https://example.com/clear",
      title: null,
      tags: ["keep"],
      crawlable: true,
      meta: { validSince: null, validUntil: null, maxVisits: null },
    });
  });

  test("edits a link on a custom domain when given its domain", async () => {
    await sdk.createShortUrl({ longUrl: "https://example.com/dom-edit", customSlug: "dom-edit", domain: "e.example.com" });
    const edited = await sdk.updateShortUrl({ shortCode: "dom-edit", domain: "e.example.com" }, { title: "On domain" });
    expect(edited).toMatchObject({ domain: "e.example.com", title: "On domain" });
  });

  test("returns 404 short-url-not-found for an unknown code", async () => {
    await expect(sdk.updateShortUrl({ shortCode: "nope-edit" }, { title: "x" })).rejects.toMatchObject({
      type: problemType("short-url-not-found"),
      status: 404,
      shortCode: "nope-edit",
    });
  });

  test("returns 400 invalid-data naming a bad field and changes nothing", async () => {
    const { shortCode } = await sdk.createShortUrl({ longUrl: "https://example.com/bad-edit", title: "Kept" });
    await expect(sdk.updateShortUrl({ shortCode }, { title: "Changed", longUrl: "data:text/html,hi" })).rejects.toMatchObject({
      type: problemType("invalid-data"),
      status: 400,
      invalidElements: ["longUrl"],
    });
    expect((await sdk.getShortUrl({ shortCode })).title).toBe("Kept");
  });
});

describe("deleteShortUrl", () => {
  test("deletes the link: it is gone from the API and its short URL no longer redirects", async () => {
    const { shortCode } = await sdk.createShortUrl({ longUrl: "https://example.com/delete-me" });
    expect((await fetch(`${server.baseUrl}/${shortCode}`, { redirect: "manual" })).status).toBe(302);
    await sdk.deleteShortUrl({ shortCode });
    await expect(sdk.getShortUrl({ shortCode })).rejects.toMatchObject({ status: 404, type: problemType("short-url-not-found") });
    expect((await fetch(`${server.baseUrl}/${shortCode}`, { redirect: "manual" })).status).toBe(404);
  });

  test("answers 204 with no body, as Shlink", async () => {
    const { shortCode } = await sdk.createShortUrl({ longUrl: "https://example.com/delete-204" });
    const response = await server.api(`/rest/v3/short-urls/${shortCode}`, { method: "DELETE" });
    expect(response.status).toBe(204);
    expect(await response.text()).toBe("");
  });

  test("deletes only the link on the given domain", async () => {
    await sdk.createShortUrl({ longUrl: "https://example.com/keep-default", customSlug: "two-homes" });
    await sdk.createShortUrl({ longUrl: "https://example.com/drop-domain", customSlug: "two-homes", domain: "f.example.com" });
    await sdk.deleteShortUrl({ shortCode: "two-homes", domain: "f.example.com" });
    expect((await sdk.getShortUrl({ shortCode: "two-homes" })).longUrl).toBe("https://example.com/keep-default");
    await expect(sdk.getShortUrl({ shortCode: "two-homes", domain: "f.example.com" })).rejects.toMatchObject({ status: 404 });
  });

  test("returns 404 short-url-not-found for an unknown code", async () => {
    await expect(sdk.deleteShortUrl({ shortCode: "nope-delete" })).rejects.toMatchObject({
      type: problemType("short-url-not-found"),
      status: 404,
      shortCode: "nope-delete",
    });
  });
});

describe("health", () => {
  test("reports pass and the Shlink API version it implements", async () => {
    const health = await sdk.health();
    expect(health.status).toBe("pass");
    expect(health.version).toMatch(/^\d+\.\d+\.\d+$/);
  });
});
