/**
 * GET /rest/v3/domains through @shlinkio/shlink-js-sdk against the compiled binary, as Shlink lists domains: the
 * domains with links or with a redirect set, by authority.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { startServer, type TestServer } from "./support/binary";
import { type ShlinkApi, sdkClient } from "./support/sdk";

let server: TestServer;
let sdk: ShlinkApi;

/** Created out of authority order, so the list's order comes from sorting. */
const WITH_LINKS = ["z.example.test", "m.example.test"];

const defaultHost = () => new URL(server.baseUrl).host;
const listedDomains = async () => (await sdk.listDomains()).data.map((d) => d.domain);

beforeAll(async () => {
  server = await startServer();
  sdk = sdkClient(server);
  for (const domain of WITH_LINKS) await sdk.createShortUrl({ longUrl: `https://example.com/${domain}`, customSlug: "dom", domain });
  await sdk.editDomainRedirects({ domain: "q.example.test", regular404Redirect: "https://example.com/q-missing" });
  await sdk.editDomainRedirects({ domain: "a.example.test", baseUrlRedirect: "https://example.com/a-home" });
  await sdk.editDomainRedirects({ domain: "z.example.test", invalidShortUrlRedirect: "https://example.com/z-gone" });
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
