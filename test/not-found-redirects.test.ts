/**
 * Shlink's "not found redirects" against the compiled binary: where a visitor of the base URL, of an unknown or
 * unusable code, or of any other unknown path is sent instead of the 404 page; first the settings for every domain,
 * then a domain's own through PATCH /domains/redirects (the SDK's editDomainRedirects), field by field. Orphan visits
 * are recorded as before; the API and the ops paths are never redirected.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { startServer, type TestServer, waitFor } from "./support/binary";
import { problemType, type ShlinkApi, sdkClient } from "./support/sdk";

const SETTINGS = {
  base: "https://example.com/home",
  regular404: "https://example.com/missing{ORIGINAL_PATH}?from={DOMAIN}",
  invalidShortUrl: "https://example.com/no-such-link",
};

let server: TestServer;
let sdk: ShlinkApi;
beforeAll(async () => {
  server = await startServer({
    args: [
      "--visit-flush-interval",
      "100ms",
      "--base-url-redirect",
      SETTINGS.base,
      "--regular-404-redirect",
      SETTINGS.regular404,
      "--invalid-short-url-redirect",
      SETTINGS.invalidShortUrl,
    ],
  });
  sdk = sdkClient(server);
});
afterAll(async () => {
  await server[Symbol.asyncDispose]();
});

/** The status and Location of a visit to `path`, with a Host when given. */
async function visit(path: string, init: { host?: string; method?: string } = {}) {
  const response = await fetch(`${server.baseUrl}${path}`, {
    method: init.method ?? "GET",
    redirect: "manual",
    headers: init.host === undefined ? {} : { Host: init.host },
  });
  await response.arrayBuffer();
  return { status: response.status, location: response.headers.get("location"), cacheControl: response.headers.get("cache-control") };
}

const host = () => new URL(server.baseUrl).host;

describe("the settings' redirects, for every domain", () => {
  test("the base URL goes to --base-url-redirect, for GET and HEAD, and is never cached", async () => {
    for (const method of ["GET", "HEAD"]) {
      expect(await visit("/", { method })).toEqual({ status: 302, location: SETTINGS.base, cacheControl: "no-store" });
    }
  });

  test("another unknown path goes to --regular-404-redirect, with {ORIGINAL_PATH} and {DOMAIN} filled in", async () => {
    expect((await visit("/some/deep/path?x=1")).location).toBe(
      `https://example.com/missing/some/deep/path?from=${encodeURIComponent(host())}`,
    );
  });

  test("an unknown code, an expired link and a used-up link go to --invalid-short-url-redirect", async () => {
    await sdk.createShortUrl({ longUrl: "https://example.com/old", customSlug: "nf-expired", validUntil: "2020-01-01T00:00:00+00:00" });
    await sdk.createShortUrl({ longUrl: "https://example.com/once", customSlug: "nf-once", maxVisits: 1 });
    expect((await visit("/nf-once")).location).toBe("https://example.com/once");
    for (const path of ["/nf-unknown", "/nf-expired", "/nf-once", "/nf-unknown/"]) {
      expect(await visit(path)).toEqual({ status: 302, location: SETTINGS.invalidShortUrl, cacheControl: "no-store" });
    }
  });

  test("the visits are still recorded as orphan visits of their kind", async () => {
    const marker = `m${Date.now()}`;
    const sent = { [`/?${marker}`]: "base_url", [`/a/b?${marker}`]: "regular_404", [`/nf-nothing?${marker}`]: "invalid_short_url" };
    for (const path of Object.keys(sent)) expect((await visit(path)).status).toBe(302);
    const recorded = async () => {
      const visits = (await sdk.getOrphanVisits({ itemsPerPage: 100 })).data as { visitedUrl: string; type: string }[];
      return Object.fromEntries(
        visits
          .filter((v) => v.visitedUrl.includes(marker))
          .map((v) => [new URL(v.visitedUrl).pathname + new URL(v.visitedUrl).search, v.type]),
      );
    };
    await waitFor("the 3 orphan visits", async () => Object.keys(await recorded()).length === 3);
    expect(await recorded()).toEqual(sent);
  });

  test("other methods, the REST API and /healthz are never redirected", async () => {
    expect((await visit("/", { method: "POST" })).status).toBe(404);
    expect((await visit("/rest/v3/nothing-here")).status).toBe(404);
    expect((await visit("/healthz")).status).toBe(200);
  });
});

describe("a domain's own redirects (PATCH /rest/v3/domains/redirects)", () => {
  const domain = "go.example.test";

  test("apply to that domain's visitors, field by field, over the settings; other domains keep the settings", async () => {
    expect(await sdk.editDomainRedirects({ domain, baseUrlRedirect: "https://go.example/welcome" })).toEqual({
      baseUrlRedirect: "https://go.example/welcome",
      regular404Redirect: null,
      invalidShortUrlRedirect: null,
    });
    expect((await visit("/", { host: domain })).location).toBe("https://go.example/welcome");
    expect((await visit("/x/y", { host: domain })).location).toBe("https://example.com/missing/x/y?from=go.example.test");
    expect((await visit("/", { host: host() })).location).toBe(SETTINGS.base);
  });

  test("a later edit keeps the fields it leaves out, and null clears one back to the setting", async () => {
    await sdk.editDomainRedirects({ domain, invalidShortUrlRedirect: "https://go.example/gone" });
    expect((await visit("/", { host: domain })).location).toBe("https://go.example/welcome");
    expect((await visit("/nf-whatever", { host: domain })).location).toBe("https://go.example/gone");
    expect(await sdk.editDomainRedirects({ domain, baseUrlRedirect: null })).toEqual({
      baseUrlRedirect: null,
      regular404Redirect: null,
      invalidShortUrlRedirect: "https://go.example/gone",
    });
    expect((await visit("/", { host: domain })).location).toBe(SETTINGS.base);
  });

  test("GET /domains lists the domain (it holds no links) with its own redirects, and the settings as defaultRedirects", async () => {
    const domains = await sdk.listDomains();
    expect(domains.defaultRedirects).toEqual({
      baseUrlRedirect: SETTINGS.base,
      regular404Redirect: SETTINGS.regular404,
      invalidShortUrlRedirect: SETTINGS.invalidShortUrl,
    });
    expect(domains.data.find((d) => d.domain === domain)).toEqual({
      domain,
      isDefault: false,
      redirects: { baseUrlRedirect: null, regular404Redirect: null, invalidShortUrlRedirect: "https://go.example/gone" },
    });
    expect(domains.data.find((d) => d.isDefault)?.redirects).toEqual(domains.defaultRedirects);
  });

  test.each([
    ["no domain", { baseUrlRedirect: "https://example.com/" }, "domain", "is required"],
    ["a domain that is not a host name", { domain: "not a host/", baseUrlRedirect: "https://example.com/" }, "domain", "is required"],
    ["a javascript: redirect", { domain, regular404Redirect: "javascript:alert(1)" }, "regular404Redirect", "must use http or https"],
    [
      "a redirect that is not a URL",
      { domain, invalidShortUrlRedirect: "/relative" },
      "invalidShortUrlRedirect",
      "must be an absolute URL",
    ],
    ["a body that is not an object", [domain], "body", "must be a JSON object"],
  ])("%s: 400 invalid-data naming the field, and nothing changes", async (_name, body, field, reason) => {
    const response = await server.api("/rest/v3/domains/redirects", { method: "PATCH", body: JSON.stringify(body) });
    expect(response.status).toBe(400);
    const problem = (await response.json()) as { type: string; invalidElements: string[]; detail: string };
    expect(problem.type).toBe(problemType("invalid-data"));
    expect(problem.invalidElements).toContain(field);
    expect(problem.detail).toContain(reason);
    expect((await visit("/nf-whatever", { host: domain })).location).toBe("https://go.example/gone");
  });

  test("a read-only key gets 403 and no key 401; nothing changes", async () => {
    const readOnly = sdkClient(server, await server.createKey("nf-reader", "read-only"));
    await expect(readOnly.editDomainRedirects({ domain, baseUrlRedirect: "https://evil.example/" })).rejects.toMatchObject({ status: 403 });
    const anonymous = await fetch(`${server.baseUrl}/rest/v3/domains/redirects`, {
      method: "PATCH",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ domain, baseUrlRedirect: "https://evil.example/" }),
    });
    expect(anonymous.status).toBe(401);
    expect((await visit("/", { host: domain })).location).toBe(SETTINGS.base);
  });
});

test("without settings or a domain's own, every miss gets the 404 page", async () => {
  await using plain = await startServer();
  for (const path of ["/", "/a/b", "/unknown-code"]) {
    const response = await fetch(`${plain.baseUrl}${path}`, { redirect: "manual" });
    expect(response.status).toBe(404);
    expect(response.headers.get("location")).toBeNull();
  }
});
