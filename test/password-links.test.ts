/**
 * Password-protected links (our extension, DESIGN.md's "password links"), against the compiled binary: a link given a
 * `password` answers its redirect with a form, redirects (303) only once the password is posted, counts the visit
 * then (with the Referer the visitor came with), limits wrong guesses, and never shows or logs the password or its
 * hash. Then in headless Chromium, as a visitor would.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { Server } from "bun";
import { type Browser, chromium } from "playwright-core";
import { startServer, type TestServer, waitFor } from "./support/binary";
import { problemType, type ShlinkApi, sdkClient } from "./support/sdk";
import { toolPath } from "./support/tools";

const BROWSER = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";
const SECRET = "open sesame 42";

let server: TestServer;
let sdk: ShlinkApi;
beforeAll(async () => {
  // Visitors are told apart by X-Forwarded-For from the (trusted) loopback proxy, as behind Caddy.
  server = await startServer({ args: ["--visit-flush-interval", "100ms", "--trusted-proxies", "127.0.0.1/32"] });
  sdk = sdkClient(server);
});
afterAll(async () => {
  await server[Symbol.asyncDispose]();
  // Neither the password nor its hash reaches the logs.
  expect(server.stdout + server.stderr).not.toContain(SECRET);
  expect(server.stdout + server.stderr).not.toContain("$argon2id$");
});

interface LinkJson {
  shortCode: string;
  longUrl: string;
  passwordProtected: boolean;
}

async function create(body: Record<string, unknown>): Promise<Response> {
  return server.api("/rest/v3/short-urls", { method: "POST", body: JSON.stringify(body) });
}

async function link(slug: string): Promise<LinkJson> {
  return (await (await server.api(`/rest/v3/short-urls/${slug}`)).json()) as LinkJson;
}

/** A visitor's request, from address `from`. */
const visit = (path: string, from: string, init: RequestInit = {}) =>
  fetch(`${server.baseUrl}${path}`, {
    redirect: "manual",
    ...init,
    headers: { "User-Agent": BROWSER, "X-Forwarded-For": from, ...init.headers },
  });

const post = (path: string, from: string, form: Record<string, string>, headers: Record<string, string> = {}) =>
  visit(path, from, { method: "POST", body: new URLSearchParams(form), headers });

test("asks for the password, redirects only once it is given, and counts that visit alone, with the Referer it came with", async () => {
  const created = await create({ longUrl: "https://example.com/plans", customSlug: "pw-plans", password: SECRET });
  expect(created.status).toBe(200);
  const body = await created.text();
  expect(JSON.parse(body)).toMatchObject({ shortCode: "pw-plans", passwordProtected: true });
  expect(body).not.toContain(SECRET);
  expect(body).not.toContain("argon2");

  const asked = await visit("/pw-plans?utm=mail", "198.51.100.1", { headers: { Referer: "https://news.example/post" } });
  expect(asked.status).toBe(200);
  expect(asked.headers.get("location")).toBeNull();
  expect(asked.headers.get("cache-control")).toBe("no-store");
  expect(asked.headers.get("content-security-policy")).toContain("frame-ancestors 'none'");
  expect(asked.headers.get("referrer-policy")).toBe("no-referrer");
  const form = await asked.text();
  expect(form).toContain('<form method="post">');
  expect(form).toContain('type="password"');
  expect(form).toContain('name="referer" value="https://news.example/post"');
  expect(form).not.toContain("example.com/plans");
  expect((await visit("/pw-plans", "198.51.100.1", { method: "HEAD" })).status).toBe(200);

  const wrong = await post("/pw-plans?utm=mail", "198.51.100.1", { password: "not it at all", referer: "https://news.example/post" });
  expect(wrong.status).toBe(401);
  expect(wrong.headers.get("location")).toBeNull();
  expect(await wrong.text()).toContain("That is not the password");

  const right = await post("/pw-plans?utm=mail", "198.51.100.1", { password: SECRET, referer: "https://news.example/post" });
  // 303 whatever the link's status: a 307 would post the password on to the target.
  expect(right.status).toBe(303);
  expect(right.headers.get("location")).toBe("https://example.com/plans?utm=mail");
  expect(right.headers.get("cache-control")).toBe("no-store");

  await waitFor("the unlocked visit stored", async () => (await sdk.getShortUrlVisits({ shortCode: "pw-plans" })).data.length > 0, 10_000);
  const visits = (await sdk.getShortUrlVisits({ shortCode: "pw-plans" })).data;
  expect(visits.map((v) => [v.referer, v.visitedUrl, v.redirectUrl])).toEqual([
    ["https://news.example/post", `${server.baseUrl}/pw-plans?utm=mail`, "https://example.com/plans?utm=mail"],
  ]);
  expect((await sdk.getShortUrl({ shortCode: "pw-plans" })).visitsSummary.total).toBe(1);
  expect(await server.metric('shortener_link_password_attempts_total{outcome="unlocked"}')).toBe(1);
  expect(await server.metric('shortener_redirects_total{outcome="locked"}')).toBe(2);
});

test("API clients get problem+json: the password is asked for, can come as JSON, and a wrong one is named", async () => {
  await create({ longUrl: "https://example.com/api-doc", customSlug: "pw-api", password: SECRET, redirectStatus: 301 });
  const json = { Accept: "application/json" };
  const asked = await visit("/pw-api", "198.51.100.2", { headers: json });
  expect(asked.status).toBe(401);
  expect(asked.headers.get("content-type")).toBe("application/problem+json");
  const problem = (await asked.json()) as { type: string; shortCode: string; requestId: string };
  expect(problem).toMatchObject({ type: problemType("link-password-required"), shortCode: "pw-api" });
  expect(problem.requestId).toBe(asked.headers.get("x-request-id") as string);

  const send = (password: unknown) =>
    visit("/pw-api", "198.51.100.2", {
      method: "POST",
      body: JSON.stringify({ password }),
      headers: { ...json, "Content-Type": "application/json" },
    });
  const wrong = await send("wrong one!");
  expect(wrong.status).toBe(401);
  expect(((await wrong.json()) as { type: string }).type).toBe(problemType("wrong-link-password"));
  expect((await send(42)).status).toBe(401);
  const right = await send(SECRET);
  expect(right.status).toBe(303);
  expect(right.headers.get("location")).toBe("https://example.com/api-doc");

  const huge = await visit("/pw-api", "198.51.100.2", { method: "POST", body: new URLSearchParams({ password: "x".repeat(10_000) }) });
  expect(huge.status).toBe(413);
  const broken = await visit("/pw-api", "198.51.100.2", { method: "POST", body: "{", headers: { "Content-Type": "application/json" } });
  expect(broken.status).toBe(400);
});

test("after five wrong passwords a visitor is refused unchecked (429, Retry-After), even with the right one; others still get in", async () => {
  await create({ longUrl: "https://example.com/vault", customSlug: "pw-vault", password: SECRET });
  for (let i = 0; i < 5; i++) expect((await post("/pw-vault", "203.0.113.50", { password: `guess number ${i}` })).status).toBe(401);
  const limited = await post("/pw-vault", "203.0.113.50", { password: SECRET });
  expect(limited.status).toBe(429);
  expect(Number(limited.headers.get("retry-after"))).toBeGreaterThan(800);
  const page = await limited.text();
  expect(page).toContain("Too many wrong passwords");
  expect(page).not.toContain("<form");
  expect((await post("/pw-vault", "203.0.113.51", { password: SECRET })).status).toBe(303);
  expect(await server.metric('shortener_link_password_attempts_total{outcome="limited"}')).toBe(1);
});

test("a flood of passwords at once: beyond the checks waiting, 429 (not a 5xx) with Retry-After", async () => {
  await create({ longUrl: "https://example.com/flood", customSlug: "pw-flood", password: SECRET });
  const json = { Accept: "application/json" };
  const answers = await Promise.all(
    Array.from({ length: 100 }, (_, i) => post("/pw-flood", `192.0.2.${i + 1}`, { password: `guess number ${i}` }, json)),
  );
  const types = await Promise.all(answers.map(async (a) => [a.status, ((await a.json()) as { type: string }).type] as const));
  expect(types.every(([status]) => status === 401 || status === 429)).toBe(true);
  const busy = answers.filter((_, i) => types[i]?.[1] === problemType("too-many-password-checks"));
  expect(busy.length).toBeGreaterThan(0);
  for (const answer of busy) expect(answer.headers.get("retry-after")).toBe("1");
  expect(await server.metric('shortener_link_password_attempts_total{outcome="busy"}')).toBe(busy.length);
});

test("edits set, replace and remove the password; the audit says so and never holds it", async () => {
  await create({ longUrl: "https://example.com/open", customSlug: "pw-edit" });
  expect((await visit("/pw-edit", "198.51.100.3")).status).toBe(302);
  const edit = (body: unknown) => server.api("/rest/v3/short-urls/pw-edit", { method: "PATCH", body: JSON.stringify(body) });

  expect((await edit({ password: SECRET })).status).toBe(200);
  expect((await link("pw-edit")).passwordProtected).toBe(true);
  expect((await visit("/pw-edit", "198.51.100.3")).status).toBe(200);
  expect((await edit({ password: "a new secret" })).status).toBe(200);
  expect((await post("/pw-edit", "198.51.100.3", { password: SECRET })).status).toBe(401);
  expect((await post("/pw-edit", "198.51.100.3", { password: "a new secret" })).status).toBe(303);
  // An edit of other fields keeps the password.
  expect((await edit({ title: "Still locked" })).status).toBe(200);
  expect((await visit("/pw-edit", "198.51.100.3")).status).toBe(200);
  expect((await edit({ password: null })).status).toBe(200);
  expect((await link("pw-edit")).passwordProtected).toBe(false);
  expect((await visit("/pw-edit", "198.51.100.3")).status).toBe(302);

  const audit = await server.api("/rest/v3/audit-events?shortCode=pw-edit");
  const text = await audit.text();
  expect(text).not.toContain(SECRET);
  expect(text).not.toContain("a new secret");
  expect(text).not.toContain("argon2");
  const events = (JSON.parse(text) as { auditEvents: { data: { action: string; details: { changes?: unknown } }[] } }).auditEvents.data;
  expect(events.map((e) => e.details.changes).reverse()).toEqual([
    undefined,
    { passwordProtected: { from: false, to: true } },
    { password: { from: "(hidden)", to: "(hidden, changed)" } },
    { title: { from: null, to: "Still locked" } },
    { passwordProtected: { from: true, to: false } },
  ]);
});

test("a bad password is a 400 naming it, on create, edit and bulk, and nothing is created or changed", async () => {
  for (const password of ["short", 12345678, "x".repeat(129)]) {
    const refused = await create({ longUrl: "https://example.com/bad", customSlug: "pw-bad", password });
    expect(refused.status).toBe(400);
    expect(((await refused.json()) as { invalidElements: string[] }).invalidElements).toEqual(["password"]);
  }
  expect((await server.api("/rest/v3/short-urls/pw-bad")).status).toBe(404);
  await create({ longUrl: "https://example.com/keep", customSlug: "pw-keep", password: SECRET });
  const edit = await server.api("/rest/v3/short-urls/pw-keep", { method: "PATCH", body: JSON.stringify({ password: "", title: "x" }) });
  expect(edit.status).toBe(400);
  expect(((await edit.json()) as { detail: string }).detail).toContain("password: must be 8 to 128 characters long, or null to remove it");
  expect(await link("pw-keep")).toMatchObject({ passwordProtected: true });
  const bulk = await server.api("/rest/v3/short-urls/bulk", {
    method: "POST",
    body: JSON.stringify({
      shortUrls: [
        { longUrl: "https://example.com/b1", password: SECRET },
        { longUrl: "https://example.com/b2", password: "tiny" },
      ],
    }),
  });
  expect(bulk.status).toBe(400);
  expect(((await bulk.json()) as { invalidElements: string[] }).invalidElements).toEqual(["shortUrls[1].password"]);
});

test("bulk creates protected links; findIfExists answers with a protected link only for its password", async () => {
  const bulk = await server.api("/rest/v3/short-urls/bulk", {
    method: "POST",
    body: JSON.stringify({
      shortUrls: [
        { longUrl: "https://example.com/same", customSlug: "pw-same-locked", password: SECRET },
        { longUrl: "https://example.com/same", customSlug: "pw-same-open" },
      ],
    }),
  });
  expect(bulk.status).toBe(200);
  expect((await link("pw-same-locked")).passwordProtected).toBe(true);
  const find = async (extra: Record<string, unknown>) =>
    ((await (await create({ longUrl: "https://example.com/same", findIfExists: true, ...extra })).json()) as LinkJson).shortCode;
  expect(await find({ password: SECRET })).toBe("pw-same-locked");
  expect(await find({})).toBe("pw-same-open");
  const other = await find({ password: "another password" });
  expect(other).not.toBe("pw-same-locked");
  expect((await link(other)).passwordProtected).toBe(true);
});

test("a bulk create of 100 protected links (a hash each, one at a time) is answered whole, and each unlocks with its password", async () => {
  const shortUrls = Array.from({ length: 100 }, (_, i) => ({
    longUrl: `https://example.com/many/${i}`,
    customSlug: `pw-many-${i}`,
    password: `${SECRET} ${i}`,
  }));
  const bulk = await server.api("/rest/v3/short-urls/bulk", { method: "POST", body: JSON.stringify({ shortUrls }) });
  expect(bulk.status).toBe(200);
  const { data } = ((await bulk.json()) as { shortUrls: { data: LinkJson[] } }).shortUrls;
  expect(data.map((l) => [l.shortCode, l.passwordProtected])).toEqual(shortUrls.map((l) => [l.customSlug, true]));
  expect((await post("/pw-many-99", "198.51.100.9", { password: `${SECRET} 98` })).status).toBe(401);
  const right = await post("/pw-many-99", "198.51.100.9", { password: `${SECRET} 99` });
  expect(right.headers.get("location")).toBe("https://example.com/many/99");
});

test("the tracking pixel counts a protected link's visit without its password (it reveals nothing); a deleted link's password goes with it", async () => {
  await create({ longUrl: "https://example.com/mail", customSlug: "pw-pixel", password: SECRET });
  const pixel = await visit("/pw-pixel/track", "198.51.100.4");
  expect(pixel.status).toBe(200);
  expect(pixel.headers.get("content-type")).toBe("image/gif");
  const put = await visit("/pw-pixel", "198.51.100.4", { method: "PUT" });
  expect([put.status, put.headers.get("allow")]).toEqual([405, "GET, HEAD, POST"]);
  const pixelPut = await visit("/pw-pixel/track", "198.51.100.4", { method: "PUT" });
  expect([pixelPut.status, pixelPut.headers.get("allow")]).toEqual([405, "GET, HEAD"]);
  await waitFor(
    "the pixel visit counted",
    async () => (await sdk.getShortUrl({ shortCode: "pw-pixel" })).visitsSummary.total === 1,
    10_000,
  );

  expect((await server.api("/rest/v3/short-urls/pw-pixel", { method: "DELETE" })).status).toBe(204);
  await create({ longUrl: "https://example.com/mail-again", customSlug: "pw-pixel" });
  expect((await link("pw-pixel")).passwordProtected).toBe(false);
  const again = await visit("/pw-pixel", "198.51.100.4");
  expect(again.status).toBe(302);
  expect(again.headers.get("location")).toBe("https://example.com/mail-again");
});

describe("in headless Chromium", () => {
  let browser: Browser;
  let target: Server<undefined>;
  beforeAll(async () => {
    target = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: (request) => new Response(`arrived at ${new URL(request.url).search}`) });
    browser = await chromium.launch({
      executablePath: toolPath("chromium"),
      args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--no-first-run"],
    });
  }, 60_000);
  afterAll(async () => {
    await browser?.close();
    target?.stop(true);
  });

  test("a visitor types a wrong password, is told so, types the right one and lands on the target with the query", async () => {
    await create({ longUrl: `http://127.0.0.1:${target.port}/landing`, customSlug: "pw-browser", password: SECRET });
    const page = await browser.newPage({ userAgent: BROWSER });
    await page.goto(`${server.baseUrl}/pw-browser?ref=chat`, { referer: "https://chat.example/room" });
    await page.fill("#password", "not the one");
    await page.click("button[type=submit]");
    await page.waitForSelector("text=That is not the password");
    expect(page.url()).toBe(`${server.baseUrl}/pw-browser?ref=chat`);
    await page.fill("#password", SECRET);
    await page.click("button[type=submit]");
    await page.waitForURL(`http://127.0.0.1:${target.port}/landing?ref=chat`);
    expect(await page.textContent("body")).toBe("arrived at ?ref=chat");
    await page.close();
    await waitFor(
      "the browser's visit stored",
      async () => (await sdk.getShortUrlVisits({ shortCode: "pw-browser" })).data.length > 0,
      10_000,
    );
    const visits = (await sdk.getShortUrlVisits({ shortCode: "pw-browser" })).data;
    expect(visits.map((v) => v.referer)).toEqual(["https://chat.example/room"]);
  });
});
