import { afterEach, describe, expect, test } from "bun:test";
import { ShlinkSource, SourceFailed } from "./shlink-source";

/** A stand-in source on loopback: each request is answered by `answer`, and remembered. */
function source(answer: (url: URL, request: Request, n: number) => Response) {
  const seen: { url: URL; key: string | null }[] = [];
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    fetch(request) {
      const url = new URL(request.url);
      seen.push({ url, key: request.headers.get("x-api-key") });
      return answer(url, request, seen.length);
    },
  });
  servers.push(server);
  const pauses: number[] = [];
  const client = new ShlinkSource(`http://127.0.0.1:${server.port}/`, "the-key", async (ms) => {
    pauses.push(ms);
  });
  return { client, seen, pauses };
}

const servers: ReturnType<typeof Bun.serve>[] = [];
afterEach(() => {
  for (const s of servers.splice(0)) s.stop(true);
});

const list = (key: string, data: unknown[], page: number, pagesCount: number) =>
  Response.json({
    [key]: { data, pagination: { currentPage: page, pagesCount, itemsPerPage: 100, itemsInCurrentPage: data.length, totalItems: 0 } },
  });

async function all<T>(items: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of items) out.push(item);
  return out;
}

describe("ShlinkSource", () => {
  test("reads every page of links, oldest first, with the key in X-Api-Key only", async () => {
    const { client, seen } = source((url) => {
      const page = Number(url.searchParams.get("page"));
      return list("shortUrls", [{ shortCode: `p${page}` }], page, 3);
    });
    expect((await all(client.links())).map((l) => l.shortCode)).toEqual(["p1", "p2", "p3"]);
    expect(seen.map((s) => s.url.pathname)).toEqual(["/rest/v3/short-urls", "/rest/v3/short-urls", "/rest/v3/short-urls"]);
    expect(seen.every((s) => s.key === "the-key" && !s.url.search.includes("the-key"))).toBe(true);
    expect(seen[0]?.url.searchParams.get("orderBy")).toBe("dateCreated-ASC");
  });

  test("asks for a link's visits up to a fixed moment, on its domain, page by page", async () => {
    const until = Date.parse("2026-12-06T01:00:00Z");
    const { client, seen } = source((url) =>
      list("visits", [{ date: url.searchParams.get("page") }], Number(url.searchParams.get("page")), 2),
    );
    const pages = await all(client.visits("abc", "go.example.net", until));
    expect(pages).toEqual([[{ date: "1" }], [{ date: "2" }]]);
    expect(seen[1]?.url.pathname).toBe("/rest/v3/short-urls/abc/visits");
    expect(Object.fromEntries(seen[1]?.url.searchParams ?? [])).toEqual({
      page: "2",
      itemsPerPage: "5000",
      endDate: "2026-12-06T01:00:00+00:00",
      domain: "go.example.net",
    });
  });

  test("retries 503 and 429 after a pause, then goes on", async () => {
    const { client, pauses } = source((url, _request, n) => {
      if (n === 1) return new Response("busy", { status: 503 });
      if (n === 2) return new Response("slow down", { status: 429 });
      return list("shortUrls", [{ shortCode: "ok" }], 1, 1);
    });
    expect((await all(client.links())).map((l) => l.shortCode)).toEqual(["ok"]);
    expect(pauses).toEqual([500, 2000]);
  });

  test("gives up after its retries, naming the request and the last failure", async () => {
    const { client, seen } = source(() => Response.json({ detail: "database is down" }, { status: 500 }));
    const failure = await all(client.links()).catch((error) => error);
    expect(failure).toBeInstanceOf(SourceFailed);
    expect(failure.message).toMatch(/\/rest\/v3\/short-urls\?.* failed 4 times, the last: 500 \(database is down\)$/);
    expect(seen).toHaveLength(4);
  });

  test.each([
    [
      new Response(JSON.stringify({ detail: "Invalid API key" }), { status: 401 }),
      "answered 401 (Invalid API key): give an API key of the source in SHLINK_API_KEY",
    ],
    [new Response("", { status: 404 }), "answered 404"],
    [
      new Response("", { status: 301, headers: { Location: "https://elsewhere.example/rest" } }),
      "redirects to https://elsewhere.example/rest",
    ],
    [new Response("<html>", { status: 200 }), "is not JSON (is this a Shlink server's base URL?)"],
    [Response.json({ items: [] }), 'is not a Shlink list ({"shortUrls": {"data": [...], "pagination": {...}}})'],
  ])("stops at once on an answer no retry changes: %#", async (answer, message) => {
    const { client, seen } = source(() => answer.clone());
    const failure = await all(client.links()).catch((error) => error);
    expect(failure).toBeInstanceOf(SourceFailed);
    expect(failure.message).toContain(message);
    expect(seen).toHaveLength(1);
  });

  test("a source without redirect rules (before Shlink 4) has none for each link", async () => {
    const { client } = source((url) =>
      url.pathname.endsWith("/x/redirect-rules")
        ? new Response("", { status: 404 })
        : Response.json({ defaultLongUrl: "https://e.x/", redirectRules: [{ longUrl: "https://e.x/a" }] }),
    );
    expect(await client.redirectRules("x", null)).toEqual([]);
    expect(await client.redirectRules("y", null)).toEqual([{ longUrl: "https://e.x/a" }]);
  });
});
