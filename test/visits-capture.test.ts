/**
 * What a visit records, read straight from the raw rows the flush writes: the redirect actually sent, the URL
 * visited, referer and user agent, bots (crawlers, link-preview fetchers, HEAD requests), and orphan visits of each
 * Shlink type. The REST visits API is tested through the SDK elsewhere; this pins the capture itself.
 */
import { Database } from "bun:sqlite";
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { startServer, type TestServer, waitFor } from "./support/binary";
import { BOT_UA, BROWSER_UA } from "./support/sdk";

let server: TestServer;

beforeAll(async () => {
  server = await startServer();
  const created = await fetch(`${server.baseUrl}/rest/v3/short-urls`, {
    method: "POST",
    headers: { "X-Api-Key": server.apiKey, "Content-Type": "application/json" },
    body: JSON.stringify({ longUrl: "https://example.com/landing?a=1", customSlug: "cap" }),
  });
  expect(created.status).toBe(200);
});

afterAll(async () => {
  await server?.[Symbol.asyncDispose]();
});

interface Row {
  short_url_id: number | null;
  orphan_type: string | null;
  potential_bot: number;
  referer: string | null;
  user_agent: string | null;
  remote_addr: string | null;
  visited_url: string;
  redirect_url: string | null;
}

/** Rows whose visited URL contains `marker`, once `count` of them were flushed. */
async function rowsWith(marker: string, count: number): Promise<Row[]> {
  let rows: Row[] = [];
  await waitFor(`${count} visit rows for ${marker}`, () => {
    const db = new Database(join(server.dataDir, "shortener.db"), { readonly: true });
    try {
      rows = db.query("SELECT * FROM visits WHERE visited_url LIKE ? ORDER BY id").all(`%${marker}%`) as Row[];
    } finally {
      db.close();
    }
    return rows.length >= count;
  });
  return rows;
}

const get = (path: string, headers: Record<string, string> = {}, method = "GET") =>
  fetch(`${server.baseUrl}${path}`, { method, redirect: "manual", headers: { "User-Agent": BROWSER_UA, ...headers } });

describe("a redirect's visit", () => {
  test("records the Location sent (query forwarded), the URL visited, referer, user agent and an anonymised address", async () => {
    const response = await get("/cap?m=one&b=2", { Referer: "https://news.example/post" });
    expect(response.status).toBe(302);
    expect(response.headers.get("location")).toBe("https://example.com/landing?a=1&m=one&b=2");
    const [row] = await rowsWith("m=one", 1);
    expect(row).toMatchObject({
      orphan_type: null,
      potential_bot: 0,
      referer: "https://news.example/post",
      user_agent: BROWSER_UA,
      remote_addr: "127.0.0.0",
      visited_url: `${server.baseUrl}/cap?m=one&b=2`,
      redirect_url: "https://example.com/landing?a=1&m=one&b=2",
    });
    expect(row?.short_url_id).toBeGreaterThan(0);
  });

  test("flags crawlers, link-preview fetchers and HEAD requests as potential bots", async () => {
    const agents = {
      crawler: BOT_UA,
      slack: "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
      facebook: "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
      twitter: "Twitterbot/1.0",
      discord: "Mozilla/5.0 (compatible; Discordbot/2.0; +https://discordapp.com)",
    };
    for (const [name, agent] of Object.entries(agents)) expect((await get(`/cap?m=bot-${name}`, { "User-Agent": agent })).status).toBe(302);
    expect((await get("/cap?m=bot-head", {}, "HEAD")).status).toBe(302);
    expect((await get("/cap?m=bot-human")).status).toBe(302);
    const rows = await rowsWith("m=bot-", 7);
    const flagged = Object.fromEntries(rows.map((r) => [new URL(r.visited_url).searchParams.get("m"), r.potential_bot]));
    expect(flagged).toEqual({
      "bot-crawler": 1,
      "bot-slack": 1,
      "bot-facebook": 1,
      "bot-twitter": 1,
      "bot-discord": 1,
      "bot-head": 1,
      "bot-human": 0,
    });
  });
});

describe("long fields", () => {
  // Shlink's Visitor keeps 512 characters of the agent, 1 024 of the referer and 2 048 of the URLs.
  const agent = `Mozilla/5.0 (X11; Linux x86_64) ${"A".repeat(6_000)}`;
  const referer = `https://news.example/${"r".repeat(5_000)}`;
  const query = `m=long&pad=${"q".repeat(5_000)}`;

  test("the redirect forwards the whole query; the visit keeps each field up to Shlink's length", async () => {
    const response = await get(`/cap?${query}`, { "User-Agent": agent, Referer: referer });
    expect(response.status).toBe(302);
    expect(response.headers.get("location")).toBe(`https://example.com/landing?a=1&${query}`);
    const [row] = await rowsWith("m=long&", 1);
    expect(row).toMatchObject({
      orphan_type: null,
      potential_bot: 0,
      user_agent: agent.slice(0, 512),
      referer: referer.slice(0, 1024),
      visited_url: `${server.baseUrl}/cap?${query}`.slice(0, 2048),
      redirect_url: `https://example.com/landing?a=1&${query}`.slice(0, 2048),
    });
  });

  test("an orphan visit's are cut the same way", async () => {
    expect((await get(`/no-such-code?m=long-orphan&${query}`, { "User-Agent": agent, Referer: referer })).status).toBe(404);
    const [row] = await rowsWith("m=long-orphan", 1);
    expect(row?.orphan_type).toBe("invalid_short_url");
    expect([row?.user_agent?.length, row?.referer?.length, row?.visited_url.length]).toEqual([512, 1024, 2048]);
  });

  test("a bot is told by the agent the visit keeps: a crawler's name past its 512th character does not count", async () => {
    const early = `${BOT_UA} ${"x".repeat(6_000)}`;
    const late = `${BROWSER_UA} ${"x".repeat(600)} ${BOT_UA}`;
    // Twice each: the second answer must not depend on a memo of the first.
    for (const round of [1, 2]) {
      expect((await get(`/cap?m=long-bot-early-${round}`, { "User-Agent": early })).status).toBe(302);
      expect((await get(`/cap?m=long-bot-late-${round}`, { "User-Agent": late })).status).toBe(302);
    }
    const rows = await rowsWith("m=long-bot-", 4);
    const flagged = Object.fromEntries(rows.map((r) => [new URL(r.visited_url).searchParams.get("m"), r.potential_bot]));
    expect(flagged).toEqual({ "long-bot-early-1": 1, "long-bot-early-2": 1, "long-bot-late-1": 0, "long-bot-late-2": 0 });
  });
});

describe("orphan visits", () => {
  test("are recorded as base_url, invalid_short_url and regular_404, and answered 404", async () => {
    expect((await get("/?m=orphan-base")).status).toBe(404);
    expect((await get("/no-such-code?m=orphan-invalid")).status).toBe(404);
    expect((await get("/a/b/c?m=orphan-regular")).status).toBe(404);
    const rows = await rowsWith("m=orphan-", 3);
    expect(rows.map((r) => [new URL(r.visited_url).searchParams.get("m"), r.orphan_type, r.short_url_id, r.redirect_url])).toEqual([
      ["orphan-base", "base_url", null, null],
      ["orphan-invalid", "invalid_short_url", null, null],
      ["orphan-regular", "regular_404", null, null],
    ]);
  });

  test("API calls, health checks and non-GET requests are not orphan visits", async () => {
    expect((await get("/rest/v3/short-urls?m=orphan-api")).status).toBe(401);
    expect((await get("/healthz?m=orphan-health")).status).toBe(200);
    expect((await get("/x/y?m=orphan-post", {}, "POST")).status).toBe(404);
    // A visit after them, flushed together: once it is there, the others would be too.
    expect((await get("/a/b?m=orphan-after")).status).toBe(404);
    const rows = await rowsWith("m=orphan-after", 1);
    expect(rows).toHaveLength(1);
    const db = new Database(join(server.dataDir, "shortener.db"), { readonly: true });
    try {
      const others = db
        .query(
          "SELECT count(*) AS n FROM visits WHERE visited_url LIKE '%orphan-api%' OR visited_url LIKE '%orphan-health%' OR visited_url LIKE '%orphan-post%'",
        )
        .get();
      expect(others).toEqual({ n: 0 });
    } finally {
      db.close();
    }
  });
});
