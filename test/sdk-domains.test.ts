/**
 * GET /rest/v3/domains and GET /rest/v3/domains/{domain}/visits through @shlinkio/shlink-js-sdk against the compiled
 * binary: they agree with each other and with Shlink. Shlink's web client offers "Visit stats" on every row of its
 * domains table, so every domain listed answers its visits route; the list holds the domains with links or with a
 * redirect set, by authority; a domain known from redirects since cleared is not listed but still exists.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { startServer, type TestServer, waitFor } from "./support/binary";
import { BROWSER_UA, paginationOf, problemType, type ShlinkApi, sdkClient } from "./support/sdk";

let server: TestServer;
let sdk: ShlinkApi;

/** Created out of authority order, so the list's order comes from sorting. */
const WITH_LINKS = ["z.example.test", "m.example.test"];
const WITH_REDIRECTS = ["q.example.test", "a.example.test"];

const defaultHost = () => new URL(server.baseUrl).host;
const listedDomains = async () => (await sdk.listDomains()).data.map((d) => d.domain);

beforeAll(async () => {
  server = await startServer({ args: ["--visit-flush-interval", "100ms"] });
  sdk = sdkClient(server);
  for (const domain of WITH_LINKS) await sdk.createShortUrl({ longUrl: `https://example.com/${domain}`, customSlug: "dom", domain });
  await sdk.editDomainRedirects({ domain: "q.example.test", regular404Redirect: "https://example.com/q-missing" });
  await sdk.editDomainRedirects({ domain: "a.example.test", baseUrlRedirect: "https://example.com/a-home" });
  await sdk.editDomainRedirects({ domain: "z.example.test", invalidShortUrlRedirect: "https://example.com/z-gone" });
  const visit = await fetch(`${server.baseUrl}/dom`, { redirect: "manual", headers: { Host: "m.example.test", "User-Agent": BROWSER_UA } });
  expect(visit.status).toBe(302);
  await waitFor("the visit to m.example.test/dom", async () => paginationOf(await sdk.getDomainVisits("m.example.test")).totalItems === 1);
});
afterAll(async () => {
  await server[Symbol.asyncDispose]();
});

describe("listDomains", () => {
  test("lists the default domain first, then domains with links and domains with a redirect together, by authority", async () => {
    const none = { baseUrlRedirect: null, regular404Redirect: null, invalidShortUrlRedirect: null };
    expect((await sdk.listDomains()).data).toEqual([
      { domain: defaultHost(), isDefault: true, redirects: none },
      { domain: "a.example.test", isDefault: false, redirects: { ...none, baseUrlRedirect: "https://example.com/a-home" } },
      { domain: "m.example.test", isDefault: false, redirects: none },
      { domain: "q.example.test", isDefault: false, redirects: { ...none, regular404Redirect: "https://example.com/q-missing" } },
      // Holds links and sets a redirect: listed once, with it.
      { domain: "z.example.test", isDefault: false, redirects: { ...none, invalidShortUrlRedirect: "https://example.com/z-gone" } },
    ]);
  });

  test("leaves out a domain without links once its redirects are all cleared, as Shlink", async () => {
    const domain = "cleared.example.test";
    await sdk.editDomainRedirects({ domain, baseUrlRedirect: "https://example.com/c", invalidShortUrlRedirect: "https://example.com/i" });
    expect(await listedDomains()).toContain(domain);
    await sdk.editDomainRedirects({ domain, baseUrlRedirect: null });
    expect(await listedDomains()).toContain(domain);
    await sdk.editDomainRedirects({ domain, invalidShortUrlRedirect: null });
    expect(await listedDomains()).not.toContain(domain);
  });
});

describe("getDomainVisits", () => {
  test("every listed domain answers with its visits: the one with a visit lists it, the others none", async () => {
    const { data } = await sdk.listDomains();
    const totals: Record<string, number> = {};
    for (const { domain, isDefault } of data) {
      // Shlink's web client asks for the default domain's visits as DEFAULT.
      totals[domain] = paginationOf(await sdk.getDomainVisits(isDefault ? "DEFAULT" : domain)).totalItems;
    }
    expect(totals).toEqual({
      [defaultHost()]: 0,
      "a.example.test": 0,
      "m.example.test": 1,
      "q.example.test": 0,
      "z.example.test": 0,
    });
  });

  test("a domain that only sets redirects answers an empty list", async () => {
    for (const domain of WITH_REDIRECTS)
      expect(await sdk.getDomainVisits(domain)).toMatchObject({ data: [], pagination: { totalItems: 0 } });
  });

  test("a domain whose redirects were all cleared still exists, as in Shlink: an empty list, not 404", async () => {
    const domain = "was-set.example.test";
    await sdk.editDomainRedirects({ domain, regular404Redirect: "https://example.com/r" });
    await sdk.editDomainRedirects({ domain, regular404Redirect: null });
    expect(await listedDomains()).not.toContain(domain);
    expect(await sdk.getDomainVisits(domain)).toMatchObject({ data: [], pagination: { totalItems: 0 } });
  });

  test.each(["nowhere.example.test", "default"])("%p, used nowhere, is 404 domain-not-found naming it", async (authority) => {
    await expect(sdk.getDomainVisits(authority)).rejects.toMatchObject({ type: problemType("domain-not-found"), status: 404, authority });
  });
});
