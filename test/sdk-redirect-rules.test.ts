/**
 * Shlink's dynamic redirect rules against the compiled binary, through the SDK's getShortUrlRedirectRules and
 * setShortUrlRedirectRules: the shapes, the redirects they steer (device, language, query parameter; first match
 * wins), a change followed at the next redirect though the link was cached, and every refusal naming its field
 * with nothing changed.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { startServer, type TestServer, waitFor } from "./support/binary";
import { problemType, type ShlinkApi, sdkClient } from "./support/sdk";

const UA = {
  android: "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36",
  iphone:
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
  desktop: "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
};

let server: TestServer;
let sdk: ShlinkApi;
beforeAll(async () => {
  server = await startServer({ args: ["--visit-flush-interval", "100ms"] });
  sdk = sdkClient(server);
});
afterAll(async () => {
  await server[Symbol.asyncDispose]();
});

/** Where a visitor with these headers is sent from `path` (a code, with its query if any). */
async function target(path: string, headers: Record<string, string> = {}): Promise<string | null> {
  const response = await fetch(`${server.baseUrl}/${path}`, { redirect: "manual", headers });
  expect(response.status).toBe(302);
  return response.headers.get("location");
}

const device = (matchValue: string) => ({ type: "device" as const, matchKey: null, matchValue });
const language = (matchValue: string) => ({ type: "language" as const, matchKey: null, matchValue });
const queryParam = (matchKey: string, matchValue: string) => ({ type: "query-param" as const, matchKey, matchValue });

test("a link without rules: its long URL and an empty list, hasRedirectRules false, redirects unchanged", async () => {
  await sdk.createShortUrl({ longUrl: "https://example.com/plain", customSlug: "rr-plain" });
  expect(await sdk.getShortUrlRedirectRules({ shortCode: "rr-plain" })).toEqual({
    defaultLongUrl: "https://example.com/plain",
    redirectRules: [],
  });
  expect((await sdk.getShortUrl({ shortCode: "rr-plain" })).hasRedirectRules).toBe(false);
  expect(await target("rr-plain", { "User-Agent": UA.android })).toBe("https://example.com/plain");
});

describe("a link with rules", () => {
  const rules = [
    { longUrl: "https://example.com/ios-spanish", conditions: [device("ios"), language("es-ES")] },
    { longUrl: "https://example.com/android", conditions: [device("android")] },
    { longUrl: "https://example.com/spanish", conditions: [language("es")] },
    { longUrl: "https://example.com/promo", conditions: [queryParam("promo", "summer")] },
  ];

  beforeAll(async () => {
    await sdk.createShortUrl({ longUrl: "https://example.com/default", customSlug: "rr-steer" });
    // Visited once first: the link is in the cache when its rules arrive.
    expect(await target("rr-steer", { "User-Agent": UA.android })).toBe("https://example.com/default");
    const saved = await sdk.setShortUrlRedirectRules({ shortCode: "rr-steer" }, { redirectRules: rules });
    expect(saved).toEqual({
      defaultLongUrl: "https://example.com/default",
      redirectRules: rules.map((rule, i) => ({ ...rule, priority: i + 1 })),
    });
  });

  test("reads back as saved, in priority order, and the link says hasRedirectRules", async () => {
    const read = await sdk.getShortUrlRedirectRules({ shortCode: "rr-steer" });
    expect(read.redirectRules.map((r) => [r.priority, r.longUrl])).toEqual(rules.map((r, i) => [i + 1, r.longUrl]));
    expect((await sdk.getShortUrl({ shortCode: "rr-steer" })).hasRedirectRules).toBe(true);
    const listed = await sdk.listShortUrls({ searchTerm: "rr-" });
    expect(Object.fromEntries(listed.data.map((s) => [s.shortCode, s.hasRedirectRules]))).toMatchObject({
      "rr-steer": true,
      "rr-plain": false,
    });
  });

  test.each([
    ["an Android phone, though the link was cached before the rules", { "User-Agent": UA.android }, "https://example.com/android"],
    [
      "an iPhone asking for Spanish (Spain): every condition of the first rule",
      { "User-Agent": UA.iphone, "Accept-Language": "es-ES,es;q=0.9" },
      "https://example.com/ios-spanish",
    ],
    [
      "an iPhone asking for Spanish (Mexico): not the Spain rule, the later Spanish one",
      { "User-Agent": UA.iphone, "Accept-Language": "es-MX" },
      "https://example.com/spanish",
    ],
    ["an iPhone asking for English: no rule", { "User-Agent": UA.iphone, "Accept-Language": "en-GB" }, "https://example.com/default"],
    [
      "a desktop accepting Spanish of any region, at any quality",
      { "User-Agent": UA.desktop, "Accept-Language": "fr-FR, es-MX;q=0.3" },
      "https://example.com/spanish",
    ],
    [
      "an Android phone asking for Spanish: the earlier rule wins",
      { "User-Agent": UA.android, "Accept-Language": "es" },
      "https://example.com/android",
    ],
    ["a desktop with Accept-Language *", { "User-Agent": UA.desktop, "Accept-Language": "*" }, "https://example.com/default"],
  ])("%s", async (_name, headers, expected) => {
    expect(await target("rr-steer", headers)).toBe(expected);
  });

  test("a query parameter rule matches its value only, and the query is forwarded to the rule's URL", async () => {
    expect(await target("rr-steer?promo=summer&ref=mail", { "User-Agent": UA.desktop })).toBe(
      "https://example.com/promo?promo=summer&ref=mail",
    );
    expect(await target("rr-steer?promo=winter", { "User-Agent": UA.desktop })).toBe("https://example.com/default?promo=winter");
  });

  test("each visit records the URL it was actually sent to", async () => {
    await sdk.createShortUrl({ longUrl: "https://example.com/visits-default", customSlug: "rr-visits" });
    await sdk.setShortUrlRedirectRules(
      { shortCode: "rr-visits" },
      { redirectRules: [{ longUrl: "https://example.com/visits-android", conditions: [device("android")] }] },
    );
    await target("rr-visits", { "User-Agent": UA.android });
    await target("rr-visits", { "User-Agent": UA.desktop });
    await waitFor("2 visits", async () => (await sdk.getShortUrlVisits({ shortCode: "rr-visits" })).pagination.totalItems === 2);
    const visits = (await sdk.getShortUrlVisits({ shortCode: "rr-visits" })).data;
    expect(visits.map((v) => v.redirectUrl).sort()).toEqual(["https://example.com/visits-android", "https://example.com/visits-default"]);
  });
});

test("new rules are followed at the next redirect; PATCH replaces them as POST does; [] removes them all", async () => {
  await sdk.createShortUrl({ longUrl: "https://example.com/base", customSlug: "rr-change" });
  const android = { "User-Agent": UA.android };
  await sdk.setShortUrlRedirectRules(
    { shortCode: "rr-change" },
    { redirectRules: [{ longUrl: "https://example.com/first", conditions: [device("android")] }] },
  );
  expect(await target("rr-change", android)).toBe("https://example.com/first");
  const patched = await server.api("/rest/v3/short-urls/rr-change/redirect-rules", {
    method: "PATCH",
    body: JSON.stringify({ redirectRules: [{ longUrl: "https://example.com/second", conditions: [device("android")] }] }),
  });
  expect(patched.status).toBe(200);
  expect(await target("rr-change", android)).toBe("https://example.com/second");
  expect(await sdk.setShortUrlRedirectRules({ shortCode: "rr-change" }, { redirectRules: [] })).toEqual({
    defaultLongUrl: "https://example.com/base",
    redirectRules: [],
  });
  expect(await target("rr-change", android)).toBe("https://example.com/base");
  expect((await sdk.getShortUrl({ shortCode: "rr-change" })).hasRedirectRules).toBe(false);
});

test("a link's rules go with it: a new link with the same slug has none", async () => {
  await sdk.createShortUrl({ longUrl: "https://example.com/old", customSlug: "rr-reborn" });
  await sdk.setShortUrlRedirectRules(
    { shortCode: "rr-reborn" },
    { redirectRules: [{ longUrl: "https://example.com/old-android", conditions: [device("android")] }] },
  );
  await sdk.deleteShortUrl({ shortCode: "rr-reborn" });
  await sdk.createShortUrl({ longUrl: "https://example.com/new", customSlug: "rr-reborn" });
  expect((await sdk.getShortUrlRedirectRules({ shortCode: "rr-reborn" })).redirectRules).toEqual([]);
  expect(await target("rr-reborn", { "User-Agent": UA.android })).toBe("https://example.com/new");
});

describe("refusals", () => {
  const kept = { longUrl: "https://example.com/kept", conditions: [device("android")] };
  beforeAll(async () => {
    await sdk.createShortUrl({ longUrl: "https://example.com/guarded", customSlug: "rr-guarded" });
    await sdk.setShortUrlRedirectRules({ shortCode: "rr-guarded" }, { redirectRules: [kept] });
  });

  const rule = (conditions: unknown[], longUrl = "https://example.com/x") => ({ redirectRules: [{ longUrl, conditions }] });
  test.each([
    [
      "an unknown condition type",
      rule([{ type: "weather", matchKey: null, matchValue: "rain" }]),
      "redirectRules[0].conditions[0].type",
      "must be one of device, language, query-param",
    ],
    [
      "a condition of a later Shlink version",
      rule([{ type: "ip-address", matchKey: null, matchValue: "10.0.0.0/8" }]),
      "redirectRules[0].conditions[0].type",
      "later Shlink version",
    ],
    [
      "a device Shlink 4.0 does not know",
      rule([device("blackberry")]),
      "redirectRules[0].conditions[0].matchValue",
      "must be one of android, ios, desktop",
    ],
    ["a language that is not one", rule([language("not a language!")]), "redirectRules[0].conditions[0].matchValue", "must be a language"],
    [
      "a query parameter rule without the parameter's name",
      rule([{ type: "query-param", matchKey: "", matchValue: "x" }]),
      "redirectRules[0].conditions[0].matchKey",
      "must name the query parameter",
    ],
    ["a javascript: target", rule([device("ios")], "JavaScript:alert(1)"), "redirectRules[0].longUrl", "must use http or https"],
    ["a rule without conditions", rule([]), "redirectRules[0].conditions", "must be a list of 1 to 20 conditions"],
    ["no redirectRules", {}, "redirectRules", "must be a list of at most 100 rules"],
    ["redirectRules that is not a list", { redirectRules: { longUrl: "https://example.com/" } }, "redirectRules", "must be a list"],
    ["101 rules", { redirectRules: Array.from({ length: 101 }, () => kept) }, "redirectRules", "at most 100 rules"],
  ])("%s: 400 invalid-data naming the field, and the rules stay", async (_name, body, field, reason) => {
    const response = await server.api("/rest/v3/short-urls/rr-guarded/redirect-rules", { method: "POST", body: JSON.stringify(body) });
    expect(response.status).toBe(400);
    expect(response.headers.get("content-type")).toContain("application/problem+json");
    const problem = (await response.json()) as { type: string; invalidElements: string[]; detail: string };
    expect(problem.type).toBe(problemType("invalid-data"));
    expect(problem.invalidElements).toContain(field);
    expect(problem.detail).toContain(reason);
    expect((await sdk.getShortUrlRedirectRules({ shortCode: "rr-guarded" })).redirectRules).toEqual([{ ...kept, priority: 1 }]);
  });

  test("every bad field of a body is named at once", async () => {
    const body = {
      redirectRules: [{ longUrl: "ftp://example.com/", conditions: [device("nokia"), { type: "query-param", matchValue: "x" }] }],
    };
    const response = await server.api("/rest/v3/short-urls/rr-guarded/redirect-rules", { method: "POST", body: JSON.stringify(body) });
    expect(response.status).toBe(400);
    expect(((await response.json()) as { invalidElements: string[] }).invalidElements).toEqual([
      "redirectRules[0].longUrl",
      "redirectRules[0].conditions[0].matchValue",
      "redirectRules[0].conditions[1].matchKey",
    ]);
  });

  test("an unknown short code: 404 short-url-not-found, for reading and for setting", async () => {
    await expect(sdk.getShortUrlRedirectRules({ shortCode: "rr-nowhere" })).rejects.toMatchObject({
      type: problemType("short-url-not-found"),
      status: 404,
    });
    await expect(sdk.setShortUrlRedirectRules({ shortCode: "rr-nowhere" }, { redirectRules: [kept] })).rejects.toMatchObject({
      type: problemType("short-url-not-found"),
      status: 404,
    });
  });

  test("a read-only key reads the rules but cannot set them (403); no key at all is 401", async () => {
    const readOnly = sdkClient(server, await server.createKey("rr-reader", "read-only"));
    expect((await readOnly.getShortUrlRedirectRules({ shortCode: "rr-guarded" })).redirectRules).toHaveLength(1);
    await expect(readOnly.setShortUrlRedirectRules({ shortCode: "rr-guarded" }, { redirectRules: [] })).rejects.toMatchObject({
      status: 403,
    });
    const anonymous = await fetch(`${server.baseUrl}/rest/v3/short-urls/rr-guarded/redirect-rules`);
    expect(anonymous.status).toBe(401);
    expect((await sdk.getShortUrlRedirectRules({ shortCode: "rr-guarded" })).redirectRules).toEqual([{ ...kept, priority: 1 }]);
  });
});
