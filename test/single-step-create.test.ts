/**
 * Shlink's single-step create (GET /rest/v3/short-urls/shorten with the key and the long URL in the query), its
 * plain-text answer, and the older /rest/v1 and /rest/v2 paths, which Shlink serves as /rest/v3: what bookmarklets,
 * screenshot tools and scripts set up for Shlink call. Against the compiled binary.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { eventLines, startServer, type TestServer, waitFor } from "./support/binary";
import { problemType } from "./support/sdk";

let server: TestServer;
beforeAll(async () => {
  server = await startServer();
});
afterAll(async () => {
  // Disposing checks that no key, including the one sent in query strings here, reached the server's output.
  await server[Symbol.asyncDispose]();
});

const shorten = (query: Record<string, string>, init: RequestInit = {}, version = "v3") =>
  fetch(`${server.baseUrl}/rest/${version}/short-urls/shorten?${new URLSearchParams(query)}`, { redirect: "manual", ...init });

describe("GET /rest/v3/short-urls/shorten", () => {
  test("creates a short URL from the query's longUrl and apiKey, answered as POST /short-urls answers", async () => {
    const response = await shorten({ apiKey: server.apiKey, longUrl: "https://example.com/from/a/bookmarklet?x=1&y=é" });
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toStartWith("application/json");
    const created = (await response.json()) as { shortCode: string; shortUrl: string; longUrl: string; tags: string[] };
    expect(created).toMatchObject({ longUrl: "https://example.com/from/a/bookmarklet?x=1&y=%C3%A9", tags: [] });
    expect(created.shortCode).toMatch(/^[0-9A-Za-z]{7}$/);
    expect(created.shortUrl).toBe(`${server.baseUrl}/${created.shortCode}`);
    const redirect = await fetch(created.shortUrl, { redirect: "manual" });
    expect(redirect.status).toBe(302);
    expect(redirect.headers.get("location")).toBe(created.longUrl);
  });

  test("answers the bare short URL as text/plain for format=txt, or for Accept: text/plain without a format", async () => {
    for (const [query, accept] of [
      [{ format: "txt" }, "application/json"],
      [{ format: "TXT" }, null],
      [{}, "text/plain, application/json;q=0.5"],
    ] as const) {
      const response = await shorten(
        { apiKey: server.apiKey, longUrl: "https://example.com/plain", ...query },
        accept === null ? {} : { headers: { Accept: accept } },
      );
      expect(response.status).toBe(200);
      expect(response.headers.get("content-type")).toStartWith("text/plain");
      expect(await response.text()).toMatch(new RegExp(`^${server.baseUrl}/[0-9A-Za-z]{7}$`));
    }
    const json = await shorten(
      { apiKey: server.apiKey, longUrl: "https://example.com/json", format: "json" },
      { headers: { Accept: "text/plain" } },
    );
    expect(json.headers.get("content-type")).toStartWith("application/json");
    expect(((await json.json()) as { longUrl: string }).longUrl).toBe("https://example.com/json");
  });

  test("a POST create answers text/plain too when asked, as Shlink's content negotiation does", async () => {
    const response = await server.api("/rest/v3/short-urls", {
      method: "POST",
      headers: { Accept: "text/plain" },
      body: JSON.stringify({ longUrl: "https://example.com/posted", customSlug: "posted-plain" }),
    });
    expect(response.status).toBe(200);
    expect(await response.text()).toBe(`${server.baseUrl}/posted-plain`);
  });

  test("without a key: 401 missing-authentication naming the apiKey parameter; a wrong key: 401 invalid-api-key", async () => {
    const missing = await shorten({ longUrl: "https://example.com/anon" });
    expect(missing.status).toBe(401);
    expect(missing.headers.get("content-type")).toBe("application/problem+json");
    expect(await missing.json()).toMatchObject({ type: problemType("missing-authentication"), status: 401, param: "apiKey" });
    const wrong = await shorten({ apiKey: "shk_00000000000000000000000000000000", longUrl: "https://example.com/anon" });
    expect(wrong.status).toBe(401);
    expect(await wrong.json()).toMatchObject({ type: problemType("invalid-api-key") });
  });

  test("a missing or unsafe longUrl is 400 invalid-data naming longUrl, as problem+json even with format=txt", async () => {
    const queries: Record<string, string>[] = [{}, { longUrl: "" }, { longUrl: "JavaScript:alert(1)" }, { longUrl: "data:text/html,x" }];
    for (const query of queries) {
      const response = await shorten({ apiKey: server.apiKey, format: "txt", ...query });
      expect(response.status).toBe(400);
      expect(response.headers.get("content-type")).toBe("application/problem+json");
      const problem = (await response.json()) as { type: string; invalidElements: string[] };
      expect(problem.type).toBe(problemType("invalid-data"));
      expect(problem.invalidElements).toContain("longUrl");
    }
  });
});

describe("Shlink's older paths", () => {
  test("/rest/v1 and /rest/v2 are served as /rest/v3, and counted under its route templates", async () => {
    const viaV2 = await shorten({ apiKey: server.apiKey, longUrl: "https://example.com/v2", format: "txt" }, {}, "v2");
    expect(viaV2.status).toBe(200);
    const code = (await viaV2.text()).split("/").at(-1) as string;
    const viaV1 = await fetch(`${server.baseUrl}/rest/v1/short-urls/${code}`, { headers: { "X-Api-Key": server.apiKey } });
    expect(viaV1.status).toBe(200);
    expect(((await viaV1.json()) as { longUrl: string }).longUrl).toBe("https://example.com/v2");
    const posted = await fetch(`${server.baseUrl}/rest/v2/short-urls`, {
      method: "POST",
      headers: { "X-Api-Key": server.apiKey, "Content-Type": "application/json" },
      body: JSON.stringify({ longUrl: "https://example.com/posted-v2", customSlug: "posted-v2" }),
    });
    expect(posted.status).toBe(200);
    expect(((await posted.json()) as { shortCode: string }).shortCode).toBe("posted-v2");
    expect((await fetch(`${server.baseUrl}/rest/v4/short-urls`, { headers: { "X-Api-Key": server.apiKey } })).status).toBe(404);
    // Request lines are written within 100 ms: wait for the last one (v4's, an unknown path).
    const routes = () => eventLines(server.stdout, "request").map((line) => (JSON.parse(line) as { route: string }).route);
    await waitFor("the request log lines", () => routes().includes("/rest/other"), 5_000);
    expect(routes().filter((r) => r === "/rest/other")).toHaveLength(1);
    expect(routes()).toContain("/rest/v3/short-urls/shorten");
    expect(routes()).toContain("/rest/v3/short-urls/{shortCode}");
  });
});
