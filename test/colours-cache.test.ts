/**
 * A blue/green overlap: two colours of the compiled binary serve one data dir, each with its own redirect cache. A
 * link written through one colour (edited, deleted, given redirect rules, its visits deleted, or a crawlable link
 * created) is served as written by the other too, though the other had it cached: the other colour reads the
 * journal of link changes every 100 ms and drops those codes (src/domain/link-change-watch.ts). Before that
 * journal, the other colour went on serving what it had cached until it stopped.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { rmSync } from "node:fs";
import { TestServer, tempDir, waitFor } from "./support/binary";
import { BROWSER_UA, type ShlinkApi, sdkClient } from "./support/sdk";

/** How long the other colour may take to follow a write; it looks every 100 ms, so this is a generous bound. */
const FOLLOW_MS = 5_000;

const dataDir = tempDir();
let blue: TestServer;
let green: TestServer;
let viaBlue: ShlinkApi;
let viaGreen: ShlinkApi;

beforeAll(async () => {
  blue = new TestServer({ dataDir, args: ["--visit-flush-interval", "100ms"] });
  green = new TestServer({ dataDir, args: ["--visit-flush-interval", "100ms"] });
  await blue.createKey();
  green.apiKey = blue.apiKey;
  await blue.start();
  await green.start();
  viaBlue = sdkClient(blue);
  viaGreen = sdkClient(green);
}, 60_000);

afterAll(async () => {
  await blue?.[Symbol.asyncDispose]();
  await green?.[Symbol.asyncDispose]();
  rmSync(dataDir, { recursive: true, force: true });
});

/** What a colour answers for a path: the status and Location. */
async function redirect(colour: TestServer, path: string): Promise<{ status: number; location: string | null }> {
  const response = await fetch(`${colour.baseUrl}/${path}`, { redirect: "manual", headers: { "User-Agent": BROWSER_UA } });
  await response.arrayBuffer();
  return { status: response.status, location: response.headers.get("location") };
}

/** Serves `path` from `colour` twice (so it is cached there) and checks where it went. */
async function cachedAt(colour: TestServer, path: string, location: string): Promise<void> {
  for (let i = 0; i < 2; i++) expect(await redirect(colour, path)).toEqual({ status: 302, location });
}

/** Waits until `colour` answers `path` as expected. */
async function follows(colour: TestServer, path: string, expected: { status: number; location: string | null }): Promise<void> {
  await waitFor(
    `${path} on the other colour to answer ${expected.status} ${expected.location}`,
    async () => {
      const got = await redirect(colour, path);
      return got.status === expected.status && got.location === expected.location;
    },
    FOLLOW_MS,
  );
}

test("an edit through one colour is followed by the other, which had the link cached; and the other way round", async () => {
  await viaBlue.createShortUrl({ longUrl: "https://example.com/first", customSlug: "cc-edit" });
  await cachedAt(green, "cc-edit", "https://example.com/first");
  await cachedAt(blue, "cc-edit", "https://example.com/first");
  await viaBlue.updateShortUrl({ shortCode: "cc-edit" }, { longUrl: "https://example.com/second" });
  // The writing colour answers the new target at once; the other within its next look.
  expect(await redirect(blue, "cc-edit")).toEqual({ status: 302, location: "https://example.com/second" });
  await follows(green, "cc-edit", { status: 302, location: "https://example.com/second" });

  await viaGreen.updateShortUrl({ shortCode: "cc-edit" }, { longUrl: "https://example.com/third" });
  await follows(blue, "cc-edit", { status: 302, location: "https://example.com/third" });
});

test("a link deleted through one colour stops redirecting on the other", async () => {
  await viaBlue.createShortUrl({ longUrl: "https://example.com/doomed", customSlug: "cc-delete" });
  await cachedAt(green, "cc-delete", "https://example.com/doomed");
  await viaBlue.deleteShortUrl({ shortCode: "cc-delete" });
  await follows(green, "cc-delete", { status: 404, location: null });
});

test("redirect rules set through one colour steer the other's redirects", async () => {
  await viaBlue.createShortUrl({ longUrl: "https://example.com/plain", customSlug: "cc-rules" });
  await cachedAt(green, "cc-rules?promo=summer", "https://example.com/plain?promo=summer");
  await viaBlue.setShortUrlRedirectRules(
    { shortCode: "cc-rules" },
    {
      redirectRules: [
        { longUrl: "https://example.com/summer", conditions: [{ type: "query-param", matchKey: "promo", matchValue: "summer" }] },
      ],
    },
  );
  await follows(green, "cc-rules?promo=summer", { status: 302, location: "https://example.com/summer?promo=summer" });
});

test("a link used up on one colour redirects there again once its visits are deleted through the other", async () => {
  await viaBlue.createShortUrl({ longUrl: "https://example.com/once", customSlug: "cc-once", maxVisits: 1 });
  expect(await redirect(green, "cc-once")).toEqual({ status: 302, location: "https://example.com/once" });
  expect((await redirect(green, "cc-once")).status).toBe(404);
  // Green's visit is written (every 100 ms here) before blue deletes the link's visits.
  await waitFor("green's visit written", async () => (await viaBlue.getShortUrl({ shortCode: "cc-once" })).visitsSummary?.total === 1);
  await viaBlue.deleteShortUrlVisits({ shortCode: "cc-once" });
  await follows(green, "cc-once", { status: 302, location: "https://example.com/once" });
});

test("a crawlable link created through one colour is in the other's robots.txt, which it had read before", async () => {
  const robots = async (colour: TestServer) => (await (await fetch(`${colour.baseUrl}/robots.txt`)).text()).includes("Allow: /cc-crawl\n");
  expect(await robots(green)).toBe(false);
  await viaBlue.createShortUrl({ longUrl: "https://example.com/crawl", customSlug: "cc-crawl", crawlable: true });
  expect(await robots(blue)).toBe(true);
  await waitFor("cc-crawl in green's robots.txt", () => robots(green), FOLLOW_MS);
});
