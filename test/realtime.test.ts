/**
 * The built-in real-time feed against the compiled binary, as Shlink's web UI uses it: mercure-info through the
 * SDK, then Server-Sent Events from /.well-known/mercure on Shlink's topics with Shlink's payloads; tokens
 * checked; a subscriber that stops reading dropped without hurting the others; drain not held by open streams.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import net from "node:net";
import { runCli, startServer, type TestServer, waitFor } from "./support/binary";
import { BROWSER_UA, problemType, SHLINK_DATE, type ShlinkApi, sdkClient, shlinkFields } from "./support/sdk";

const TOPIC = {
  newVisit: "https://shlink.io/new-visit",
  newOrphanVisit: "https://shlink.io/new-orphan-visit",
  newShortUrl: "https://shlink.io/new-short-url",
  visitsOf: (code: string) => `https://shlink.io/new-visit/${code}`,
};

interface SseEvent {
  id: string;
  data: string;
}

/** A subscription read with fetch and a stream reader; every wait has a deadline. */
class Subscription {
  readonly events: SseEvent[] = [];
  /** Comment lines seen (the first one on connecting, then keep-alives). */
  comments = 0;
  #buffer = "";
  #ended = false;
  readonly #reader: ReadableStreamDefaultReader<Uint8Array>;
  readonly #decoder = new TextDecoder();

  constructor(readonly response: Response) {
    this.#reader = (response.body as ReadableStream<Uint8Array>).getReader();
  }

  /** Reads until `count` events have arrived in all; returns them. */
  async take(count: number, timeoutMs = 10_000): Promise<SseEvent[]> {
    const deadline = Date.now() + timeoutMs;
    while (this.events.length < count) {
      if (this.#ended) throw new Error(`stream ended after ${this.events.length} of ${count} events`);
      await this.#readOnce(deadline, `${count} events (have ${this.events.length})`);
    }
    return this.events.slice(0, count);
  }

  /** Reads until `count` comments have arrived in all. */
  async comment(count: number, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.comments < count) {
      if (this.#ended) throw new Error(`stream ended after ${this.comments} of ${count} comments`);
      await this.#readOnce(deadline, `${count} comments (have ${this.comments})`);
    }
  }

  /** Resolves once the server ends the stream (cleanly or by closing the connection). */
  async ended(timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (let i = 0; i < 100_000 && !this.#ended; i++) await this.#readOnce(deadline, "the stream to end");
  }

  async close(): Promise<void> {
    await this.#reader.cancel().catch(() => {});
  }

  async #readOnce(deadline: number, what: string): Promise<void> {
    const left = deadline - Date.now();
    if (left <= 0) throw new Error(`timed out waiting for ${what}`);
    let timer: Timer | undefined;
    const timeout = new Promise<"timeout">((resolve) => {
      timer = setTimeout(() => resolve("timeout"), left);
    });
    try {
      const next = await Promise.race([this.#reader.read(), timeout]);
      if (next === "timeout") throw new Error(`timed out waiting for ${what}`);
      if (next.done) this.#ended = true;
      else this.#parse(this.#decoder.decode(next.value, { stream: true }));
    } catch (error) {
      if ((error as Error).message.startsWith("timed out")) throw error;
      this.#ended = true; // the connection was closed mid-stream
    } finally {
      clearTimeout(timer);
    }
  }

  #parse(text: string): void {
    this.#buffer += text;
    for (let end = this.#buffer.indexOf("\n\n"); end !== -1; end = this.#buffer.indexOf("\n\n")) {
      const block = this.#buffer.slice(0, end);
      this.#buffer = this.#buffer.slice(end + 2);
      this.comments += block.split("\n").filter((line) => line.startsWith(":")).length;
      const lines = block.split("\n").filter((line) => !line.startsWith(":"));
      if (lines.length === 0) continue; // a keep-alive comment
      const field = (name: string) => lines.filter((l) => l.startsWith(`${name}: `)).map((l) => l.slice(name.length + 2));
      this.events.push({ id: field("id").join(""), data: field("data").join("\n") });
    }
  }
}

function hubUrl(server: TestServer, topics: string[], token: string | null): string {
  const url = new URL(`${server.baseUrl}/.well-known/mercure`);
  for (const topic of topics) url.searchParams.append("topic", topic);
  if (token !== null) url.searchParams.append("authorization", token);
  return url.href;
}

async function subscribe(server: TestServer, topics: string[], token: string): Promise<Subscription> {
  const response = await fetch(hubUrl(server, topics, token));
  if (response.status !== 200) throw new Error(`subscribe answered ${response.status}: ${await response.text()}`);
  return new Subscription(response);
}

const waitForSubscribers = (server: TestServer, n: number) =>
  waitFor(`${n} subscribers`, async () => (await server.metric("shortener_realtime_subscribers")) === n);

let server: TestServer;
let sdk: ShlinkApi;
let token: string;
beforeAll(async () => {
  server = await startServer({ args: ["--realtime-max-subscribers", "4", "--visit-flush-interval", "100ms"] });
  sdk = sdkClient(server);
  token = (await sdk.mercureInfo()).token;
});
afterAll(async () => {
  await server[Symbol.asyncDispose]();
});

describe("GET /rest/v3/mercure-info", () => {
  test("gives this server's hub URL and a token that expires in a day, through the SDK", async () => {
    const info = await sdk.mercureInfo();
    expect(info.mercureHubUrl).toBe(`${server.baseUrl}/.well-known/mercure`);
    expect(info.token).toMatch(/^[\w-]+\.[\w-]+\.[\w-]+$/);
    const raw = (await (await server.api("/rest/v3/mercure-info")).json()) as { jwtExpiration: string };
    expect(raw.jwtExpiration).toMatch(SHLINK_DATE);
    expect(Math.abs(Date.parse(raw.jwtExpiration) - (Date.now() + 86_400_000))).toBeLessThan(10_000);
  });

  test("needs an API key", async () => {
    await expect(sdkClient(server, "shk_not-a-key").mercureInfo()).rejects.toMatchObject({
      status: 401,
      type: problemType("invalid-api-key"),
    });
  });
});

describe("GET /.well-known/mercure", () => {
  test("a subscriber gets new-short-url with the created short URL's JSON", async () => {
    const feed = await subscribe(server, [TOPIC.newShortUrl], token);
    const created = await sdk.createShortUrl({ longUrl: "https://example.com/live", customSlug: "live-1", tags: ["rt"] });
    const [event] = await feed.take(1);
    expect(event?.id).toMatch(/^urn:uuid:[0-9a-f-]{36}$/);
    const payload = JSON.parse(event?.data ?? "") as { shortUrl: object };
    expect(Object.keys(payload)).toEqual(["shortUrl"]);
    expect(shlinkFields(payload.shortUrl)).toEqual(shlinkFields(created));
    await feed.close();
  });

  test("a redirect is published on new-visit/{shortCode} and new-visit, with the short URL and the visit", async () => {
    const feed = await subscribe(server, [TOPIC.visitsOf("live-1"), TOPIC.newVisit], token);
    const redirect = await fetch(`${server.baseUrl}/live-1?x=1`, {
      redirect: "manual",
      headers: { "User-Agent": BROWSER_UA, Referer: "https://ref.example/page" },
    });
    expect(redirect.status).toBe(302);
    const events = await feed.take(2);
    expect(events[0]?.data).toBe(events[1]?.data as string);
    expect(events[0]?.id).not.toBe(events[1]?.id as string);
    const payload = JSON.parse(events[0]?.data ?? "") as { shortUrl: Record<string, unknown>; visit: Record<string, unknown> };
    expect(payload.shortUrl).toMatchObject({ shortCode: "live-1", visitsSummary: { total: 1, nonBots: 1, bots: 0 } });
    expect(payload.visit).toEqual({
      referer: "https://ref.example/page",
      date: expect.stringMatching(SHLINK_DATE),
      userAgent: BROWSER_UA,
      visitLocation: null,
      potentialBot: false,
      visitedUrl: `${server.baseUrl}/live-1?x=1`,
      redirectUrl: "https://example.com/live?x=1",
    });
    await feed.close();
  });

  test("a visit to an unknown path or code is published on new-orphan-visit with its type", async () => {
    const feed = await subscribe(server, [TOPIC.newOrphanVisit], token);
    expect((await fetch(`${server.baseUrl}/no/such/page`)).status).toBe(404);
    const [first] = await feed.take(1);
    expect((await fetch(`${server.baseUrl}/nosuchcode`)).status).toBe(404);
    const [, second] = await feed.take(2);
    const visits = [first, second].map((e) => (JSON.parse(e?.data ?? "") as { visit: Record<string, unknown> }).visit);
    expect(visits.map((v) => [v.type, v.visitedUrl])).toEqual([
      ["regular_404", `${server.baseUrl}/no/such/page`],
      ["invalid_short_url", `${server.baseUrl}/nosuchcode`],
    ]);
    expect(Object.keys(JSON.parse(first?.data ?? "{}"))).toEqual(["visit"]);
    await feed.close();
  });

  test("a subscriber gets nothing from topics it did not ask for", async () => {
    await sdk.createShortUrl({ longUrl: "https://example.com/sentinel", customSlug: "sentinel" });
    const everything = await subscribe(server, [TOPIC.newShortUrl, TOPIC.newVisit, TOPIC.newOrphanVisit], token);
    const filtered = await subscribe(server, [TOPIC.visitsOf("sentinel")], token);
    await sdk.createShortUrl({ longUrl: "https://example.com/unrelated", customSlug: "unrelated" });
    await fetch(`${server.baseUrl}/live-1`, { redirect: "manual" });
    await fetch(`${server.baseUrl}/no/such/page`);
    // All three are published before the sentinel visit is made: one that reached `filtered` would come first.
    await everything.take(3);
    await fetch(`${server.baseUrl}/sentinel`, { redirect: "manual" });
    const [event] = await filtered.take(1);
    expect(JSON.parse(event?.data ?? "").shortUrl.shortCode).toBe("sentinel");
    await Promise.all([everything.close(), filtered.close()]);
  });

  test("an idle stream gets keep-alive comments and outlives the server's 10 s idle timeout; a revoked key's stream ends", async () => {
    await server.createKey("doomed", "read-only");
    const doomedToken = (await sdkClient(server, server.keys.at(-1)).mercureInfo()).token;
    const feed = await subscribe(server, [TOPIC.newShortUrl], token);
    const doomed = await subscribe(server, [TOPIC.newShortUrl], doomedToken);
    const revoked = await runCli(["keys", "revoke", "doomed", "--data-dir", server.dataDir]);
    expect(revoked.exitCode).toBe(0);
    // New subscriptions with the revoked key's token are refused at once.
    expect((await fetch(hubUrl(server, [TOPIC.newShortUrl], doomedToken))).status).toBe(401);
    await feed.comment(2, 25_000); // the one on connecting, then the first keep-alive 15 s later
    // The open one ends at that keep-alive.
    await doomed.ended(5_000);
    await sdk.createShortUrl({ longUrl: "https://example.com/after-idle", customSlug: "after-idle" });
    const [event] = await feed.take(1);
    expect(JSON.parse(event?.data ?? "").shortUrl.shortCode).toBe("after-idle");
    expect(doomed.events).toEqual([]);
    await feed.close();
  }, 40_000);

  const validToken = () => token;
  test.each([
    ["no token", () => hubUrl(server, [TOPIC.newVisit], null), {}, 401, "missing-authentication"],
    ["a malformed token", () => hubUrl(server, [TOPIC.newVisit], "nope"), {}, 401, "invalid-token"],
    [
      "a token with a forged signature",
      () => hubUrl(server, [TOPIC.newVisit], `${validToken().slice(0, -4)}AAAA`),
      {},
      401,
      "invalid-token",
    ],
    [
      "a bad Authorization header, even with a good query token",
      () => hubUrl(server, [TOPIC.newVisit], validToken()),
      { Authorization: "Bearer nope" },
      401,
      "invalid-token",
    ],
    [
      "a cookie token with broken percent-encoding",
      () => hubUrl(server, [TOPIC.newVisit], null),
      { Cookie: "mercureAuthorization=%E0%A4%A" },
      401,
      "invalid-token",
    ],
    ["no topic", () => hubUrl(server, [], validToken()), {}, 400, "invalid-data"],
    [
      "an unsupported matcher type",
      () => `${hubUrl(server, [], validToken())}&matchURLPattern=https://shlink.io/:x`,
      {},
      400,
      "invalid-data",
    ],
  ])("refuses %s with a problem", async (_name, url, headers, status, type) => {
    const response = await fetch(url(), { headers });
    expect(response.status).toBe(status);
    expect(response.headers.get("content-type")).toBe("application/problem+json");
    expect(await response.json()).toMatchObject({ status, type: problemType(type) });
  });

  test.each([
    ["an Authorization: Bearer header", { Authorization: `Bearer ${"TOKEN"}` }],
    ["the mercureAuthorization cookie", { Cookie: "other=1; mercureAuthorization=TOKEN" }],
  ])("accepts the token in %s", async (_name, headers) => {
    const withToken = Object.fromEntries(Object.entries(headers).map(([k, v]) => [k, v.replace("TOKEN", token)]));
    const response = await fetch(hubUrl(server, [TOPIC.newVisit], null), { headers: withToken });
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toBe("text/event-stream");
    await response.body?.cancel();
  });

  test("answers a CORS preflight for the Authorization header, as an EventSource polyfill on another origin needs", async () => {
    const response = await fetch(`${server.baseUrl}/.well-known/mercure`, {
      method: "OPTIONS",
      headers: {
        Origin: "https://app.shlink.io",
        "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "authorization",
      },
    });
    expect(response.status).toBe(204);
    expect(response.headers.get("access-control-allow-origin")).toBe("*");
    expect(response.headers.get("access-control-allow-headers")?.toLowerCase()).toContain("authorization");
    const post = await fetch(`${server.baseUrl}/.well-known/mercure`, { method: "POST", body: "topic=x&data=y" });
    expect(post.status).toBe(405);
    expect(post.headers.get("allow")).toBe("GET, OPTIONS");
  });

  test("refuses subscribers past --realtime-max-subscribers with 503 and Retry-After", async () => {
    await waitForSubscribers(server, 0);
    const open = await Promise.all([1, 2, 3, 4].map(() => subscribe(server, [TOPIC.newVisit], token)));
    const refused = await fetch(hubUrl(server, [TOPIC.newVisit], token));
    expect(refused.status).toBe(503);
    expect(refused.headers.get("retry-after")).not.toBeNull();
    expect(await refused.json()).toMatchObject({ status: 503, type: problemType("service-unavailable") });
    await Promise.all(open.map((s) => s.close()));
    await waitForSubscribers(server, 0);
  });
});

/** A subscriber on a raw socket that sends its request and then never reads. */
function stuckSubscriber(server: TestServer, topic: string): Promise<net.Socket> {
  const path = new URL(hubUrl(server, [topic], token)).search;
  return new Promise((resolve, reject) => {
    const socket = net.connect(server.port, "127.0.0.1", () => {
      socket.write(`GET /.well-known/mercure${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`);
      socket.pause();
      resolve(socket);
    });
    socket.once("error", reject);
  });
}

test("a subscriber that stops reading is dropped and counted, while another keeps receiving and the server keeps answering", async () => {
  await waitForSubscribers(server, 0);
  await sdk.createShortUrl({ longUrl: "https://example.com/slow", customSlug: "slow" });
  const stuck = await stuckSubscriber(server, TOPIC.visitsOf("slow"));
  const reading = await subscribe(server, [TOPIC.visitsOf("slow")], token);
  await waitForSubscribers(server, 2);
  let closed = false;
  stuck.on("close", () => {
    closed = true;
  });
  // ~6 KB per event (visited and redirect URLs and the user agent as long as a visit keeps them), so the socket
  // buffers fill quickly.
  const pad = "p".repeat(7000);
  const headers = { "User-Agent": `Mozilla/5.0 ${"u".repeat(6000)}` };
  let visits = 0;
  const deadline = Date.now() + 60_000;
  for (let round = 0; round < 200 && Date.now() < deadline; round++) {
    const batch = await Promise.all(
      Array.from({ length: 20 }, () => fetch(`${server.baseUrl}/slow?pad=${pad}`, { redirect: "manual", headers })),
    );
    expect(batch.every((r) => r.status === 302)).toBe(true);
    visits += batch.length;
    await reading.take(visits, 30_000); // the reading subscriber keeps up with every visit
    if ((await server.metric("shortener_realtime_dropped_total")) >= 1) break;
  }
  expect(await server.metric("shortener_realtime_dropped_total")).toBe(1);
  expect(await server.metric("shortener_realtime_subscribers")).toBe(1);
  // Dropping is quiet: the server's output stays JSON log lines.
  const stray = `${server.stdout}${server.stderr}`.split("\n").filter((line) => line !== "" && !line.startsWith("{"));
  expect(stray).toEqual([]);
  // Still served after the drop: redirects, health, and events for the subscriber that reads.
  expect((await fetch(`${server.baseUrl}/healthz`)).status).toBe(200);
  await fetch(`${server.baseUrl}/slow?after=drop`, { redirect: "manual" });
  const events = await reading.take(visits + 1);
  expect(JSON.parse(events[visits]?.data ?? "").visit.visitedUrl).toBe(`${server.baseUrl}/slow?after=drop`);
  // The dropped subscriber's connection is closed once the kernel's buffers drain.
  stuck.resume();
  await waitFor("the dropped subscriber's connection to close", () => closed, 20_000);
  await reading.close();
}, 120_000);

test("with --realtime-max-subscribers 0 the feed is off: mercure-info answers Shlink's 501 mercure-not-configured", async () => {
  const node = await startServer({ args: ["--realtime-max-subscribers", "0"] });
  try {
    await expect(sdkClient(node).mercureInfo()).rejects.toMatchObject({ status: 501, type: problemType("mercure-not-configured") });
    const hub = await fetch(hubUrl(node, [TOPIC.newVisit], "any"));
    expect(hub.status).toBe(501);
    expect(await hub.json()).toMatchObject({ type: problemType("mercure-not-configured") });
  } finally {
    await node[Symbol.asyncDispose]();
  }
});

test("drain ends open streams and completes without waiting for the shutdown timeout", async () => {
  const node = await startServer();
  try {
    const info = await sdkClient(node).mercureInfo();
    const feed = await subscribe(node, [TOPIC.newVisit], info.token);
    const started = performance.now();
    const result = await runCli(["drain", "--timeout", "20s", ...node.settings]);
    const drainedMs = performance.now() - started;
    expect(result.exitCode).toBe(0);
    // A stream held open would keep the drain waiting for --shutdown-timeout (30 s).
    expect(drainedMs).toBeLessThan(10_000);
    await feed.ended(5_000);
    expect(await node.waitForExit()).toBe(0);
  } finally {
    await node[Symbol.asyncDispose]();
  }
}, 60_000);
