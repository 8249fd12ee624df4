/**
 * Cross-origin calls to the REST API against the compiled binary, as a browser makes them for Shlink's web client
 * served from another origin: the preflight, then the request with its Origin, for each form of --cors-allow-origin.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { startServer, type TestServer } from "./support/binary";

const WEB_CLIENT = "https://app.shlink.example";

/** A browser's preflight before a POST with the API key and a JSON body. */
function preflightFor(server: TestServer, path: string, origin: string): Promise<Response> {
  return fetch(`${server.baseUrl}${path}`, {
    method: "OPTIONS",
    headers: { Origin: origin, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "x-api-key,content-type" },
  });
}

describe("with the default (*)", () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startServer();
  });
  afterAll(async () => {
    await server[Symbol.asyncDispose]();
  });

  test("a preflight is answered 204 without an API key, allowing the methods and the headers asked for", async () => {
    for (const path of ["/rest/v3/short-urls", "/rest/v3/short-urls/abc", "/rest/v3/tags/stats", "/rest/v3/visits"]) {
      const response = await preflightFor(server, path, WEB_CLIENT);
      expect(response.status).toBe(204);
      expect(response.headers.get("access-control-allow-origin")).toBe("*");
      expect(response.headers.get("access-control-allow-headers")).toBe("x-api-key,content-type");
      expect(response.headers.get("access-control-allow-methods")?.split(", ")).toEqual([
        "GET",
        "POST",
        "PUT",
        "PATCH",
        "DELETE",
        "OPTIONS",
      ]);
      expect(response.headers.get("access-control-max-age")).toBe("3600");
      expect(await response.text()).toBe("");
    }
  });

  test("answers, refusals included, carry Access-Control-Allow-Origin, so the page can read them", async () => {
    const created = await server.api("/rest/v3/short-urls", {
      method: "POST",
      headers: { Origin: WEB_CLIENT },
      body: JSON.stringify({ longUrl: "https://example.com/cors" }),
    });
    expect(created.status).toBe(200);
    expect(created.headers.get("access-control-allow-origin")).toBe("*");
    expect(created.headers.get("access-control-expose-headers")).toBe("X-Request-Id");
    const listed = await server.api("/rest/v3/short-urls?itemsPerPage=-1", { headers: { Origin: WEB_CLIENT } });
    expect(listed.headers.get("access-control-allow-origin")).toBe("*");
    expect(((await listed.json()) as { shortUrls: { data: unknown[] } }).shortUrls.data).toHaveLength(1);
    const refused = await fetch(`${server.baseUrl}/rest/v3/short-urls`, { headers: { Origin: WEB_CLIENT } });
    expect(refused.status).toBe(401);
    expect(refused.headers.get("access-control-allow-origin")).toBe("*");
    const health = await fetch(`${server.baseUrl}/rest/health`, { headers: { Origin: WEB_CLIENT } });
    expect(health.headers.get("access-control-allow-origin")).toBe("*");
  });

  test("a request without an Origin gets no CORS headers, and redirects never do", async () => {
    const listed = await server.api("/rest/v3/short-urls");
    expect(listed.headers.get("access-control-allow-origin")).toBeNull();
    const { shortCode } = (await (
      await server.api("/rest/v3/short-urls", { method: "POST", body: JSON.stringify({ longUrl: "https://example.com/plain" }) })
    ).json()) as { shortCode: string };
    const redirect = await fetch(`${server.baseUrl}/${shortCode}`, { redirect: "manual", headers: { Origin: WEB_CLIENT } });
    expect(redirect.status).toBe(302);
    expect(redirect.headers.get("access-control-allow-origin")).toBeNull();
  });
});

describe("with a list of origins", () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startServer({ args: ["--cors-allow-origin", `${WEB_CLIENT}, https://Other.Example`] });
  });
  afterAll(async () => {
    await server[Symbol.asyncDispose]();
  });

  test("a listed origin (in any case) is echoed, with Vary: Origin", async () => {
    for (const origin of [WEB_CLIENT, "https://other.example", "https://OTHER.example"]) {
      const preflight = await preflightFor(server, "/rest/v3/short-urls", origin);
      expect(preflight.status).toBe(204);
      expect(preflight.headers.get("access-control-allow-origin")).toBe(origin);
      expect(preflight.headers.get("vary")).toBe("Origin");
      const listed = await server.api("/rest/v3/short-urls", { headers: { Origin: origin } });
      expect(listed.headers.get("access-control-allow-origin")).toBe(origin);
      expect(listed.headers.get("vary")).toBe("Origin");
    }
  });

  test("any other origin is not allowed: the browser keeps the answer from the page", async () => {
    const preflight = await preflightFor(server, "/rest/v3/short-urls", "https://evil.example");
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get("access-control-allow-origin")).toBeNull();
    expect(preflight.headers.get("access-control-allow-methods")).toBeNull();
    const listed = await server.api("/rest/v3/short-urls", { headers: { Origin: "https://evil.example" } });
    expect(listed.status).toBe(200);
    expect(listed.headers.get("access-control-allow-origin")).toBeNull();
    expect(listed.headers.get("vary")).toBe("Origin");
  });

  test("the real-time feed follows the same list: its preflight and its stream", async () => {
    const { token } = (await (await server.api("/rest/v3/mercure-info")).json()) as { token: string };
    const hub = `${server.baseUrl}/.well-known/mercure?topic=${encodeURIComponent("https://shlink.io/new-visit")}`;
    for (const [origin, allowed] of [
      [WEB_CLIENT, true],
      ["https://evil.example", false],
    ] as const) {
      const preflight = await fetch(hub, {
        method: "OPTIONS",
        headers: { Origin: origin, "Access-Control-Request-Method": "GET", "Access-Control-Request-Headers": "authorization" },
      });
      expect(preflight.status).toBe(204);
      expect(preflight.headers.get("access-control-allow-origin")).toBe(allowed ? origin : null);
      expect(preflight.headers.get("access-control-allow-headers")?.toLowerCase().includes("authorization") ?? false).toBe(allowed);
      const stream = await fetch(hub, { headers: { Origin: origin, Authorization: `Bearer ${token}` } });
      expect(stream.status).toBe(200);
      expect(stream.headers.get("content-type")).toBe("text/event-stream");
      expect(stream.headers.get("access-control-allow-origin")).toBe(allowed ? origin : null);
      await stream.body?.cancel();
    }
  });
});

test("with <origin>, any origin is echoed", async () => {
  await using server = await startServer({ args: ["--cors-allow-origin", "<origin>"] });
  const listed = await server.api("/rest/v3/short-urls", { headers: { Origin: "https://anywhere.example" } });
  expect(listed.headers.get("access-control-allow-origin")).toBe("https://anywhere.example");
  expect(listed.headers.get("vary")).toBe("Origin");
});
