/**
 * Shlink's own web UI against the compiled binary, in headless Chromium: @shlinkio/shlink-web-component (what
 * shlink-web-client mounts for a server) served from another origin than the API, as an operator's web client
 * is, so the browser enforces CORS on every call and on the real-time feed. Each test drives the UI as a user
 * would and checks the result through the SDK or a redirect, and that no request the page made failed.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { rmSync } from "node:fs";
import { join } from "node:path";
import type { Server } from "bun";
import tailwind from "bun-plugin-tailwind";
import { type Browser, type BrowserContext, chromium, type Locator, type Page } from "playwright-core";
import { freePort, startServer, type TestServer, tempDir, waitFor } from "./support/binary";
import { type ShlinkApi, sdkClient } from "./support/sdk";
import { toolPath } from "./support/tools";

const UI_TIMEOUT_MS = 15_000;
const BROWSER_UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";

let server: TestServer;
let sdk: ShlinkApi;
let bundleDir: string;
let pageServer: Server<undefined>;
let browser: Browser;

beforeAll(async () => {
  server = await startServer({ args: ["--visit-flush-interval", "100ms"] });
  sdk = sdkClient(server);
  bundleDir = tempDir("shortener-web-ui-");
  const built = await Bun.build({
    entrypoints: [join(import.meta.dir, "web-ui/index.html")],
    outdir: bundleDir,
    publicPath: "/",
    plugins: [tailwind],
  });
  if (!built.success) throw new Error(`bundling the web UI failed:\n${built.logs.join("\n")}`);
  // The UI's own origin: its bundle, its config, and index.html for every client-side route.
  pageServer = Bun.serve({
    hostname: "127.0.0.1",
    port: freePort(),
    async fetch(request) {
      const path = new URL(request.url).pathname;
      if (path === "/config.json") return Response.json({ server: server.baseUrl, apiKey: server.apiKey });
      const asset = Bun.file(join(bundleDir, path));
      if (path !== "/" && !path.includes("..") && (await asset.exists())) return new Response(asset);
      return new Response(Bun.file(join(bundleDir, "index.html")));
    },
  });
  // The flags that keep Chromium off the network, which this machine closes.
  browser = await chromium.launch({
    executablePath: toolPath("chromium"),
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--no-first-run",
    ],
  });
}, 60_000);

afterAll(async () => {
  await browser?.close();
  pageServer?.stop(true);
  await server?.[Symbol.asyncDispose]();
  if (bundleDir !== undefined) rmSync(bundleDir, { recursive: true, force: true });
});

/** A fresh browser context on one of the UI's routes, recording every request to the API and every failure. */
class UiSession implements AsyncDisposable {
  readonly failures: string[] = [];
  /** The API's calls and answers in the order the page saw them: whether its feed subscription is the settled one. */
  readonly apiTimeline: { kind: "request" | "response"; method: string; path: string }[] = [];
  private constructor(
    readonly context: BrowserContext,
    readonly page: Page,
  ) {}

  /** The API calls the page made, in order ("GET /rest/v3/short-urls"). */
  get apiRequests(): string[] {
    return this.apiTimeline.filter((e) => e.kind === "request").map((e) => `${e.method} ${e.path}`);
  }

  static async open(path: string): Promise<UiSession> {
    const context = await browser.newContext();
    const page = await context.newPage();
    const session = new UiSession(context, page);
    page.on("pageerror", (error) => session.failures.push(`page error: ${error.message}`));
    page.on("request", (request) => {
      if (!request.url().startsWith(server.baseUrl)) return;
      const path = new URL(request.url()).pathname;
      session.apiTimeline.push({ kind: "request", method: request.method(), path });
    });
    page.on("response", (response) => {
      if (response.url().startsWith(server.baseUrl))
        session.apiTimeline.push({ kind: "response", method: response.request().method(), path: new URL(response.url()).pathname });
    });
    // Requests to the server and the UI's own origin; the domains page also asks each custom domain's own
    // /rest/health, which does not resolve here, and shows that domain as unreachable, as it should.
    const ours = (url: string) => url.startsWith(server.baseUrl) || url.startsWith(`http://127.0.0.1:${pageServer.port}/`);
    page.on("response", (response) => {
      if (response.status() >= 400 && ours(response.url()))
        session.failures.push(`${response.status()} ${response.request().method()} ${response.url()}`);
    });
    // A stream the page closes on leaving is aborted by the browser; every other failure (CORS included) counts.
    page.on("requestfailed", (request) => {
      const reason = request.failure()?.errorText ?? "";
      if (reason !== "net::ERR_ABORTED" && ours(request.url())) session.failures.push(`${reason} ${request.method()} ${request.url()}`);
    });
    await page.goto(`http://127.0.0.1:${pageServer.port}${path}`);
    return session;
  }

  /**
   * Waits until the page's real-time subscription is the one it keeps. The UI reopens its EventSource when a render
   * follows an answer (the list, tags, domains...), and a visit published between a close and the reopen is not seen:
   * the subscription is settled once every call has its answer, the last subscription came after the last answer and
   * has its own answer (the hub registers a subscriber before it sends the stream's headers), and the hub counts one
   * subscriber: that one. Counting alone is not enough: a stream the page has just closed may still be counted while
   * the new one is on its way, and a visit published then reaches neither.
   */
  async settledSubscription(): Promise<void> {
    const HUB = "/.well-known/mercure";
    await waitFor(
      "the page's settled subscription",
      async () => {
        const calls = this.apiTimeline.filter((e) => e.path !== HUB);
        const answered = calls.filter((e) => e.kind === "response").length * 2 === calls.length;
        const lastAnswer = this.apiTimeline.findLastIndex((e) => e.kind === "response" && e.path !== HUB);
        const lastSubscription = this.apiTimeline.findLastIndex((e) => e.kind === "request" && e.path === HUB);
        const subscribed = this.apiTimeline.some((e, i) => i > lastSubscription && e.kind === "response" && e.path === HUB);
        return answered && lastSubscription > lastAnswer && subscribed && (await server.metric("shortener_realtime_subscribers")) === 1;
      },
      UI_TIMEOUT_MS,
    );
  }

  /** Closes the context (its streams with it), then checks that nothing failed. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.context.close();
    expect(this.failures).toEqual([]);
  }
}

/** A browser's redirect through the public listener; returns where it was sent. */
async function visit(code: string, referer?: string): Promise<string | null> {
  const headers: Record<string, string> = { "User-Agent": BROWSER_UA };
  if (referer !== undefined) headers.Referer = referer;
  const response = await fetch(`${server.baseUrl}/${code}`, { redirect: "manual", headers });
  expect(response.status).toBe(302);
  return response.headers.get("location");
}

async function waitForVisits(code: string, total: number): Promise<void> {
  await waitFor(`${total} visits on ${code}`, async () => (await sdk.getShortUrl({ shortCode: code })).visitsSummary?.total === total);
}

/** A locator's rendered text content. */
const text = async (locator: Locator) => (await locator.textContent()) ?? "";

/** The row of the short URL list, or the overview's recent links, that shows `code`. */
const row = (page: Page, code: string) => page.locator("tr", { has: page.locator(`a[href="${server.baseUrl}/${code}"]`) });

test("the short URL list shows the links created through the API, with their titles, tags and visit counts", async () => {
  await sdk.createShortUrl({ longUrl: "https://example.com/docs/guide", customSlug: "ui-guide", title: "The guide", tags: ["docs"] });
  await sdk.createShortUrl({ longUrl: "https://example.com/pricing", customSlug: "ui-pricing" });
  for (let i = 0; i < 3; i++) await visit("ui-guide");
  await waitForVisits("ui-guide", 3);

  await using ui = await UiSession.open("/list-short-urls/1");
  const guide = row(ui.page, "ui-guide");
  await guide.waitFor({ timeout: UI_TIMEOUT_MS });
  expect(await text(guide.locator('td[data-column="Title:"]'))).toContain("The guide");
  expect(await text(guide.locator('td[data-column="Tags:"]'))).toContain("docs");
  expect((await text(guide.locator('td[data-column="Visits:"]'))).trim()).toBe("3");
  const pricing = row(ui.page, "ui-pricing");
  expect(await text(pricing.locator('td[data-column="Long URL:"]'))).toContain("https://example.com/pricing");
  expect((await text(pricing.locator('td[data-column="Visits:"]'))).trim()).toBe("0");
});

test("a redirect shows up in the open list at once, through the real-time feed from another origin, without reloading", async () => {
  await sdk.createShortUrl({ longUrl: "https://example.com/live", customSlug: "ui-live" });
  await waitFor("no subscribers left from other tests", async () => (await server.metric("shortener_realtime_subscribers")) === 0);
  await using ui = await UiSession.open("/list-short-urls/1");
  const visits = row(ui.page, "ui-live").locator('td[data-column="Visits:"]');
  await visits.waitFor({ timeout: UI_TIMEOUT_MS });
  expect((await text(visits)).trim()).toBe("0");
  // The list subscribes to new-visit with the token from mercure-info: the hub now has that subscriber.
  await ui.settledSubscription();
  const requestsBefore = ui.apiRequests.length;

  // One visit: the UI may open a new EventSource after it renders an event (a new one, not a reconnect: no
  // Last-Event-ID), and a visit published in that gap would not reach it, with any Mercure hub.
  await visit("ui-live");
  await waitFor("the list to show the visit", async () => (await text(visits)).trim() === "1", UI_TIMEOUT_MS);
  // Nothing was fetched again: the count came over the feed (a new subscription to the hub is no fetch).
  expect(ui.apiRequests.slice(requestsBefore).filter((r) => r !== "GET /.well-known/mercure")).toEqual([]);
});

test("a link created in the UI's form is stored with what was typed, and redirects", async () => {
  await using ui = await UiSession.open("/create-short-url");
  await ui.page.getByPlaceholder("URL to be shortened").fill("https://example.com/made-in-the-ui?x=1");
  await ui.page.getByPlaceholder("Custom slug").fill("ui-made");
  await ui.page.getByPlaceholder("Title").fill("Made in the UI");
  await ui.page.getByRole("button", { name: "Save" }).click();
  await ui.page.getByText(`${server.baseUrl}/ui-made`).first().waitFor({ timeout: UI_TIMEOUT_MS });
  expect(await ui.page.getByText("Great!").count()).toBe(1);

  const stored = await sdk.getShortUrl({ shortCode: "ui-made" });
  expect(stored).toMatchObject({
    longUrl: "https://example.com/made-in-the-ui?x=1",
    title: "Made in the UI",
    shortUrl: `${server.baseUrl}/ui-made`,
  });
  expect(await visit("ui-made")).toBe("https://example.com/made-in-the-ui?x=1");
});

test("a duplicate slug typed in the form is refused, and the UI shows Shlink's message for it", async () => {
  await sdk.createShortUrl({ longUrl: "https://example.com/taken", customSlug: "ui-taken" });
  await using ui = await UiSession.open("/create-short-url");
  await ui.page.getByPlaceholder("URL to be shortened").fill("https://example.com/other");
  await ui.page.getByPlaceholder("Custom slug").fill("ui-taken");
  await ui.page.getByRole("button", { name: "Save" }).click();
  // The web UI shows the problem's detail: the server's own words reach the user.
  await ui.page.getByText('Provided slug "ui-taken" is already in use').waitFor({ timeout: UI_TIMEOUT_MS });
  expect(await visit("ui-taken")).toBe("https://example.com/taken");
  // The refusal is the one failure this test expects: Shlink's 400 non-unique-slug.
  expect(ui.failures).toEqual([`400 POST ${server.baseUrl}/rest/v3/short-urls`]);
  ui.failures.length = 0;
});

test("editing a link's long URL in the UI changes where the next redirect goes", async () => {
  await sdk.createShortUrl({ longUrl: "https://example.com/before", customSlug: "ui-edit" });
  expect(await visit("ui-edit")).toBe("https://example.com/before");
  await using ui = await UiSession.open("/short-code/ui-edit/edit");
  const longUrl = ui.page.getByPlaceholder("URL to be shortened");
  await waitFor("the form filled with the link", async () => (await longUrl.inputValue()) === "https://example.com/before", UI_TIMEOUT_MS);
  await longUrl.fill("https://example.com/after");
  await ui.page.getByRole("button", { name: "Save" }).click();
  await ui.page.getByText("Short URL properly edited.").waitFor({ timeout: UI_TIMEOUT_MS });
  expect(await visit("ui-edit")).toBe("https://example.com/after");
});

test("a link's visits page counts its visits and lists each one's referrer", async () => {
  await sdk.createShortUrl({ longUrl: "https://example.com/stats", customSlug: "ui-stats" });
  await visit("ui-stats", "https://news.example.org/post/1");
  await visit("ui-stats", "https://news.example.org/post/2");
  await visit("ui-stats", "https://blog.example.net/");
  await waitForVisits("ui-stats", 3);
  // The visits section's "List" tab.
  await using ui = await UiSession.open("/short-code/ui-stats/visits/list");
  await ui.page.getByText("Visits: 3").waitFor({ timeout: UI_TIMEOUT_MS });
  const table = ui.page.locator("table");
  await table.getByText("news.example.org").first().waitFor({ timeout: UI_TIMEOUT_MS });
  expect(await table.getByText("news.example.org").count()).toBe(2);
  expect(await table.getByText("blog.example.net").count()).toBe(1);
});

test("the overview's totals are the server's: visits, orphan visits, short URLs and tags", async () => {
  await fetch(`${server.baseUrl}/no-such-code-here`, { redirect: "manual" });
  const [links, tags] = await Promise.all([sdk.listShortUrls({ itemsPerPage: 1 }), sdk.listTags()]);
  await waitFor("the orphan visit counted", async () => (await sdk.getVisitsOverview()).orphanVisits.total >= 1);
  const overview = await sdk.getVisitsOverview();
  await using ui = await UiSession.open("/overview");
  const card = (title: string) => ui.page.locator("a, div", { hasText: new RegExp(`^${title}\\s*\\d`) }).last();
  const number = async (title: string) => {
    await card(title).waitFor({ timeout: UI_TIMEOUT_MS });
    return Number((await text(card(title))).replace(title, "").replace(/\D/g, ""));
  };
  await waitFor("the overview's numbers", async () => (await number("Short URLs")) === links.pagination.totalItems, UI_TIMEOUT_MS);
  expect(await number("Visits")).toBe(overview.nonOrphanVisits.total);
  expect(await number("Orphan visits")).toBe(overview.orphanVisits.total);
  expect(await number("Tags")).toBe(tags.data.length);
});

test("deleting a link from the list's menu removes it: it no longer redirects", async () => {
  await sdk.createShortUrl({ longUrl: "https://example.com/doomed", customSlug: "ui-doomed" });
  await using ui = await UiSession.open("/list-short-urls/1");
  const doomed = row(ui.page, "ui-doomed");
  await doomed.waitFor({ timeout: UI_TIMEOUT_MS });
  await doomed.locator("button").last().click();
  await ui.page.getByText("Delete short URL").click();
  await ui.page.getByPlaceholder("delete").fill("delete");
  await ui.page.getByRole("button", { name: "Delete", exact: true }).click();
  await doomed.waitFor({ state: "detached", timeout: UI_TIMEOUT_MS });
  const response = await fetch(`${server.baseUrl}/ui-doomed`, { redirect: "manual" });
  expect(response.status).toBe(404);
});

test("a redirect rule added in the UI's rules page is saved after the link's existing one, and steers an Android visitor", async () => {
  await sdk.createShortUrl({ longUrl: "https://example.com/everyone", customSlug: "ui-rules" });
  const french = { longUrl: "https://example.com/french", conditions: [{ type: "language" as const, matchKey: null, matchValue: "fr" }] };
  await sdk.setShortUrlRedirectRules({ shortCode: "ui-rules" }, { redirectRules: [french] });
  await using ui = await UiSession.open("/short-code/ui-rules/redirect-rules");
  await ui.page.getByText("https://example.com/french").waitFor({ timeout: UI_TIMEOUT_MS });

  await ui.page.getByRole("button", { name: "Add rule" }).click();
  await ui.page.getByPlaceholder("https://www.example.com").fill("https://example.com/android-app");
  await ui.page.getByRole("button", { name: "Add condition" }).click();
  await ui.page.getByLabel("Type:", { exact: true }).selectOption("device");
  await ui.page.getByLabel("Device type:").selectOption("android");
  await ui.page.getByRole("button", { name: "Confirm" }).click();
  await ui.page.getByRole("button", { name: "Save rules" }).click();
  await ui.page.getByText("Redirect rules properly saved.").waitFor({ timeout: UI_TIMEOUT_MS });

  expect((await sdk.getShortUrlRedirectRules({ shortCode: "ui-rules" })).redirectRules).toEqual([
    { ...french, priority: 1 },
    { longUrl: "https://example.com/android-app", priority: 2, conditions: [{ type: "device", matchKey: null, matchValue: "android" }] },
  ]);
  const android = "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36";
  const sentTo = async (headers: Record<string, string>) =>
    (await fetch(`${server.baseUrl}/ui-rules`, { redirect: "manual", headers })).headers.get("location");
  expect(await sentTo({ "User-Agent": android })).toBe("https://example.com/android-app");
  expect(await sentTo({ "User-Agent": android, "Accept-Language": "fr-FR" })).toBe("https://example.com/french");
  expect(await sentTo({ "User-Agent": BROWSER_UA })).toBe("https://example.com/everyone");
});

test("a domain's redirects edited in the UI's domains page are saved, and a visitor of that domain is sent there", async () => {
  const domain = "ui-go.example.test";
  await sdk.createShortUrl({ longUrl: "https://example.com/on-go", customSlug: "ui-go", domain });
  await using ui = await UiSession.open("/manage-domains");
  const domainRow = ui.page.locator("tr", { hasText: domain });
  await domainRow.waitFor({ timeout: UI_TIMEOUT_MS });
  await domainRow.locator("button").last().click();
  await ui.page.getByText("Edit redirects").click();
  await ui.page.getByLabel("Base URL").fill("https://go.example/welcome");
  await ui.page.getByLabel("Invalid short URL").fill("https://go.example/gone");
  await ui.page.getByRole("button", { name: "Save", exact: true }).click();
  await domainRow.getByText("https://go.example/welcome").waitFor({ timeout: UI_TIMEOUT_MS });

  const listed = (await sdk.listDomains()).data.find((d) => d.domain === domain);
  expect(listed?.redirects).toEqual({
    baseUrlRedirect: "https://go.example/welcome",
    regular404Redirect: null,
    invalidShortUrlRedirect: "https://go.example/gone",
  });
  const sentTo = async (path: string, host: string) =>
    (await fetch(`${server.baseUrl}${path}`, { redirect: "manual", headers: { Host: host } })).headers.get("location");
  expect(await sentTo("/", domain)).toBe("https://go.example/welcome");
  expect(await sentTo("/no-such-code", domain)).toBe("https://go.example/gone");
  expect(await sentTo("/", new URL(server.baseUrl).host)).toBeNull();
});

test("a tag renamed in the UI's tags page is renamed on its links; a tag deleted there leaves them", async () => {
  await sdk.createShortUrl({ longUrl: "https://example.com/tagged", customSlug: "ui-tagged", tags: ["ui-old", "ui-doomed-tag"] });
  await using ui = await UiSession.open("/manage-tags");
  const menuOf = (tag: string) => ui.page.locator("tr", { hasText: tag }).locator("button").last();
  await menuOf("ui-old").waitFor({ timeout: UI_TIMEOUT_MS });
  await menuOf("ui-old").click();
  await ui.page.getByText("Edit", { exact: true }).click();
  await ui.page.getByPlaceholder("Tag").fill("ui-new");
  await ui.page.getByRole("button", { name: "Save", exact: true }).click();
  await ui.page.locator("tr", { hasText: "ui-new" }).waitFor({ timeout: UI_TIMEOUT_MS });

  await menuOf("ui-doomed-tag").click();
  await ui.page.getByText("Delete tag", { exact: true }).click();
  await ui.page.getByRole("dialog").getByRole("button", { name: "Delete tag", exact: true }).click();
  await ui.page.locator("tr", { hasText: "ui-doomed-tag" }).waitFor({ state: "detached", timeout: UI_TIMEOUT_MS });

  expect((await sdk.getShortUrl({ shortCode: "ui-tagged" })).tags).toEqual(["ui-new"]);
  expect((await sdk.listTags()).data).not.toContain("ui-old");
});

describe("every other page of the UI", () => {
  beforeAll(async () => {
    await sdk.createShortUrl({ longUrl: "https://example.com/crawl", customSlug: "ui-crawl", title: "Crawled", tags: ["crawl"] });
    await sdk.createShortUrl({ longUrl: "https://example.com/crawl-domain", customSlug: "ui-crawl", domain: "ui-crawl.example.test" });
    await visit("ui-crawl", "https://referrer.example.org/page");
    await waitForVisits("ui-crawl", 1);
  });

  test.each([
    ["/overview", "Orphan visits"],
    ["/list-short-urls/1?tags=crawl", "Crawled"],
    ["/tag/crawl/visits", "Visits: 1"],
    ["/orphan-visits", "Orphan visits"],
    ["/non-orphan-visits", "Non-orphan visits"],
    ["/manage-domains", "ui-crawl.example.test"],
    ["/short-code/ui-crawl/visits/by-context", "referrer.example.org"],
    ["/short-code/ui-crawl/visits/by-location", "Countries"],
  ])("%s renders (%p), and every request it makes succeeds", async (path, expected) => {
    await using ui = await UiSession.open(path);
    await ui.page.getByText(expected).first().waitFor({ timeout: UI_TIMEOUT_MS });
  });
});

test("the create form's limit and crawlable reach the link: maxVisits caps its redirects, robots.txt allows it", async () => {
  await using ui = await UiSession.open("/create-short-url");
  await ui.page.getByPlaceholder("URL to be shortened").fill("https://example.com/limited");
  await ui.page.getByPlaceholder("Custom slug").fill("ui-limited");
  await ui.page.getByLabel("Maximum visits allowed:").fill("2");
  await ui.page.getByLabel("Make it crawlable").check();
  await ui.page.getByRole("button", { name: "Save" }).click();
  await ui.page.getByText("Great!").waitFor({ timeout: UI_TIMEOUT_MS });

  // (Unticking "Forward query params" here changes nothing: the SDK's createShortUrl leaves false fields out.)
  expect(await sdk.getShortUrl({ shortCode: "ui-limited" })).toMatchObject({
    crawlable: true,
    meta: { maxVisits: 2, validSince: null, validUntil: null },
  });
  expect(await (await fetch(`${server.baseUrl}/robots.txt`)).text()).toContain("Allow: /ui-limited\n");
  const statusAndTarget = async () => {
    const response = await fetch(`${server.baseUrl}/ui-limited`, { redirect: "manual" });
    return [response.status, response.headers.get("location")];
  };
  expect(await statusAndTarget()).toEqual([302, "https://example.com/limited"]);
  expect(await statusAndTarget()).toEqual([302, "https://example.com/limited"]);
  expect((await statusAndTarget())[0]).toBe(404);
});

test("unticking forwardQuery in the edit form stops the visit's query reaching the long URL", async () => {
  await sdk.createShortUrl({ longUrl: "https://example.com/no-query", customSlug: "ui-noquery" });
  const sentTo = async () => (await fetch(`${server.baseUrl}/ui-noquery?utm=x`, { redirect: "manual" })).headers.get("location");
  expect(await sentTo()).toBe("https://example.com/no-query?utm=x");
  await using ui = await UiSession.open("/short-code/ui-noquery/edit");
  const longUrl = ui.page.getByPlaceholder("URL to be shortened");
  await waitFor(
    "the form filled with the link",
    async () => (await longUrl.inputValue()) === "https://example.com/no-query",
    UI_TIMEOUT_MS,
  );
  const forward = ui.page.getByLabel("Forward query params on redirect");
  expect(await forward.isChecked()).toBe(true);
  await forward.uncheck();
  await ui.page.getByRole("button", { name: "Save" }).click();
  await ui.page.getByText("Short URL properly edited.").waitFor({ timeout: UI_TIMEOUT_MS });
  expect((await sdk.getShortUrl({ shortCode: "ui-noquery" })).forwardQuery).toBe(false);
  expect(await sentTo()).toBe("https://example.com/no-query");
});

test("deleting a link's visits from its visits page's options clears them, and its count starts again", async () => {
  await sdk.createShortUrl({ longUrl: "https://example.com/erase", customSlug: "ui-erase" });
  for (let i = 0; i < 3; i++) await visit("ui-erase");
  await waitForVisits("ui-erase", 3);
  await using ui = await UiSession.open("/short-code/ui-erase/visits/options");
  await ui.page.getByText("Visits: 3").waitFor({ timeout: UI_TIMEOUT_MS });
  await ui.page.getByRole("button", { name: "Delete visits" }).click();
  await ui.page.getByRole("button", { name: "Click again to confirm" }).click();
  await waitFor(
    "the visits deleted",
    async () => (await sdk.getShortUrl({ shortCode: "ui-erase" })).visitsSummary?.total === 0,
    UI_TIMEOUT_MS,
  );
  expect((await sdk.getShortUrlVisits({ shortCode: "ui-erase" })).pagination.totalItems).toBe(0);
  await visit("ui-erase");
  await waitForVisits("ui-erase", 1);
});

test("the list's search box and its visits column ordering ask the server and show what it answers", async () => {
  await sdk.createShortUrl({ longUrl: "https://example.com/zebra-1", customSlug: "ui-zebra-few", title: "Zebra few" });
  await sdk.createShortUrl({ longUrl: "https://example.com/zebra-2", customSlug: "ui-zebra-many", title: "Zebra many" });
  for (let i = 0; i < 4; i++) await visit("ui-zebra-many");
  await visit("ui-zebra-few");
  await waitForVisits("ui-zebra-many", 4);
  await waitForVisits("ui-zebra-few", 1);
  await using ui = await UiSession.open("/list-short-urls/1");
  const listing = (wanted: (query: URLSearchParams) => boolean) =>
    ui.page.waitForRequest((r) => r.url().startsWith(`${server.baseUrl}/rest/v3/short-urls?`) && wanted(new URL(r.url()).searchParams));
  const rows = ui.page.locator("tbody tr");
  await rows.first().waitFor({ timeout: UI_TIMEOUT_MS });
  // The search box asks the server (after its debounce), and the list shows what it answers.
  await Promise.all([listing((q) => q.get("searchTerm") === "zebra"), ui.page.getByPlaceholder("Search...").fill("zebra")]);
  await waitFor("only the two zebra links listed", async () => (await rows.count()) === 2, UI_TIMEOUT_MS);
  // The visits column's header orders by visits: the click asks the server with orderBy, and the rows come in the
  // server's order. One click: the UI asks twice per change, and a second click could race the first's repeat.
  // (Listed by default newest first, "Zebra many" is on top; by visits ascending, "Zebra few" is.)
  const [request] = await Promise.all([
    listing((q) => q.get("searchTerm") === "zebra" && (q.get("orderBy") ?? "").startsWith("visits-")),
    ui.page.getByText("Visits", { exact: true }).first().click(),
  ]);
  const direction = new URL(request.url()).searchParams.get("orderBy");
  expect(direction).toBe("visits-ASC");
  const firstTitle = async () => text(rows.first().locator('td[data-column="Title:"]'));
  await waitFor(
    "the rows by visits, fewest first",
    async () => (await rows.count()) === 2 && (await firstTitle()) === "Zebra few",
    UI_TIMEOUT_MS,
  );
});
