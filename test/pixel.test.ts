/**
 * Shlink's tracking pixel, `/{shortCode}/track`, against the compiled binary: a transparent 1×1 GIF that counts a
 * visit to the link as a redirect does (e-mails and pages embed it as an image), never cached, with no redirect URL;
 * the link's limits and refusals as for its redirect; an unknown code is an orphan visit, as Shlink records it.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { startServer, type TestServer, waitFor } from "./support/binary";
import { type ShlinkApi, sdkClient } from "./support/sdk";

const BROWSER = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";
const ANDROID = "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36";

let server: TestServer;
let sdk: ShlinkApi;
beforeAll(async () => {
  server = await startServer({ args: ["--visit-flush-interval", "100ms"] });
  sdk = sdkClient(server);
});
afterAll(async () => {
  await server[Symbol.asyncDispose]();
});

const pixel = (path: string, init: RequestInit = {}) =>
  fetch(`${server.baseUrl}${path}`, { redirect: "manual", ...init, headers: { "User-Agent": BROWSER, ...init.headers } });

/** Width and height from a GIF's logical screen descriptor, after checking its signature. */
function gifSize(bytes: Uint8Array): { width: number; height: number } {
  expect(new TextDecoder().decode(bytes.subarray(0, 6))).toMatch(/^GIF8[79]a$/);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return { width: view.getUint16(6, true), height: view.getUint16(8, true) };
}

test("answers a 1×1 GIF, never cached, for GET and HEAD, and counts the visit with no redirect URL", async () => {
  await sdk.createShortUrl({ longUrl: "https://example.com/newsletter", customSlug: "px-mail" });
  const response = await pixel("/px-mail/track?campaign=dec");
  expect(response.status).toBe(200);
  expect(response.headers.get("content-type")).toBe("image/gif");
  expect(response.headers.get("cache-control")).toBe("no-store");
  expect(response.headers.get("location")).toBeNull();
  expect(response.headers.get("x-request-id")).not.toBeNull();
  expect(gifSize(new Uint8Array(await response.arrayBuffer()))).toEqual({ width: 1, height: 1 });
  const head = await pixel("/px-mail/track", { method: "HEAD" });
  expect(head.status).toBe(200);
  expect(head.headers.get("content-type")).toBe("image/gif");
  expect((await head.arrayBuffer()).byteLength).toBe(0);

  await waitFor("both pixel visits stored", async () => (await sdk.getShortUrlVisits({ shortCode: "px-mail" })).data.length === 2, 10_000);
  const summary = (await sdk.getShortUrl({ shortCode: "px-mail" })).visitsSummary;
  // A HEAD request is a bot's, as on the redirect.
  expect(summary).toMatchObject({ total: 2, nonBots: 1, bots: 1 });
  const visits = (await sdk.getShortUrlVisits({ shortCode: "px-mail" })).data;
  expect(visits.map((v) => [v.visitedUrl, v.redirectUrl, v.potentialBot]).sort()).toEqual([
    [`${server.baseUrl}/px-mail/track`, null, true],
    [`${server.baseUrl}/px-mail/track?campaign=dec`, null, false],
  ]);
});

test("a pixel visit counts toward maxVisits: the link's redirect and pixel refuse once it is reached", async () => {
  await sdk.createShortUrl({ longUrl: "https://example.com/once", customSlug: "px-once", maxVisits: 1 });
  expect((await pixel("/px-once/track")).status).toBe(200);
  expect((await pixel("/px-once/track")).status).toBe(404);
  expect((await pixel("/px-once")).status).toBe(404);
});

test("a link's redirect rules do not apply: the pixel answers its GIF whatever the device", async () => {
  await sdk.createShortUrl({ longUrl: "https://example.com/base", customSlug: "px-rules" });
  await sdk.setShortUrlRedirectRules(
    { shortCode: "px-rules" },
    {
      redirectRules: [{ longUrl: "https://example.com/android", conditions: [{ type: "device", matchKey: null, matchValue: "android" }] }],
    },
  );
  expect((await pixel("/px-rules", { headers: { "User-Agent": ANDROID } })).headers.get("location")).toBe("https://example.com/android");
  const response = await pixel("/px-rules/track", { headers: { "User-Agent": ANDROID } });
  expect(response.status).toBe(200);
  expect(response.headers.get("content-type")).toBe("image/gif");
  expect(response.headers.get("location")).toBeNull();
});

test("an unknown code answers 404 and is an invalid_short_url orphan visit; other methods get 405", async () => {
  const response = await pixel("/px-none/track?m=pixel-orphan", { headers: { Accept: "application/json" } });
  expect(response.status).toBe(404);
  expect(response.headers.get("content-type")).toBe("application/problem+json");
  expect(((await response.json()) as { type: string }).type).toBe("https://shlink.io/api/error/short-url-not-found");
  await waitFor(
    "the orphan visit stored",
    async () => (await sdk.getOrphanVisits()).data.some((v) => v.visitedUrl?.endsWith("m=pixel-orphan")),
    10_000,
  );
  const orphan = (await sdk.getOrphanVisits()).data.find((v) => v.visitedUrl?.endsWith("m=pixel-orphan"));
  expect(orphan).toMatchObject({ type: "invalid_short_url", redirectUrl: null });

  await sdk.createShortUrl({ longUrl: "https://example.com/post", customSlug: "px-post" });
  const post = await pixel("/px-post/track", { method: "POST" });
  expect(post.status).toBe(405);
  expect(post.headers.get("allow")).toBe("GET, HEAD");
});
