/**
 * Bulk create (our extension, DESIGN.md's "bulk"), against the compiled binary: POST /rest/v3/short-urls/bulk creates
 * every link of `{"shortUrls":[…]}` in one transaction, or none; each item is a create's body; a refusal names the
 * item's index; read-only keys and oversized bodies are refused with nothing created.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { startServer, type TestServer } from "./support/binary";
import { problemType, type ShlinkApi, sdkClient } from "./support/sdk";

let server: TestServer;
let sdk: ShlinkApi;
let viewerKey: string;
beforeAll(async () => {
  server = await startServer();
  sdk = sdkClient(server);
  viewerKey = await server.createKey("bulk-viewer", "read-only");
});
afterAll(async () => {
  await server[Symbol.asyncDispose]();
});

interface Problem {
  type: string;
  status: number;
  detail: string;
  index?: number;
  invalidElements?: string[];
}

const bulk = (body: unknown, apiKey = server.apiKey) =>
  fetch(`${server.baseUrl}/rest/v3/short-urls/bulk`, {
    method: "POST",
    headers: { "X-Api-Key": apiKey, "Content-Type": "application/json" },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });

/** Whether a link with this custom slug exists (on the default domain). */
async function exists(slug: string): Promise<boolean> {
  return (await server.api(`/rest/v3/short-urls/${slug}`)).status === 200;
}

test("creates every link in order, each as a single create would, and each redirects", async () => {
  const response = await bulk({
    shortUrls: [
      { longUrl: "https://example.com/one", customSlug: "bk-one", tags: ["Launch Day"] },
      { longUrl: "https://example.com/two", title: "Two", maxVisits: 5 },
      { longUrl: "https://example.com/three", customSlug: "bk-three", forwardQuery: false },
    ],
  });
  expect(response.status).toBe(200);
  const { data } = (
    (await response.json()) as { shortUrls: { data: { shortCode: string; longUrl: string; tags: string[]; title: string | null }[] } }
  ).shortUrls;
  expect(data.map((s) => s.longUrl)).toEqual(["https://example.com/one", "https://example.com/two", "https://example.com/three"]);
  expect(data[0]).toMatchObject({ shortCode: "bk-one", tags: ["launch-day"] });
  expect(data[1]?.title).toBe("Two");
  expect(data[2]?.shortCode).toBe("bk-three");
  for (const link of data) {
    const visit = await fetch(`${server.baseUrl}/${link.shortCode}`, { redirect: "manual" });
    expect(visit.headers.get("location")).toBe(link.longUrl);
  }
  expect((await sdk.getShortUrl({ shortCode: data[1]?.shortCode as string })).meta.maxVisits).toBe(5);
});

test("creates none when one is refused: the taken slug's index is named, and the others do not exist", async () => {
  await sdk.createShortUrl({ longUrl: "https://example.com/taken", customSlug: "bk-taken" });
  const response = await bulk({
    shortUrls: [
      { longUrl: "https://example.com/a", customSlug: "bk-first" },
      { longUrl: "https://example.com/b" },
      { longUrl: "https://example.com/c", customSlug: "bk-taken" },
    ],
  });
  expect(response.status).toBe(400);
  expect(response.headers.get("content-type")).toBe("application/problem+json");
  const problem = (await response.json()) as Problem;
  expect(problem).toMatchObject({ type: problemType("non-unique-slug"), index: 2 });
  expect(problem.detail).toStartWith("shortUrls[2]: ");
  expect(await exists("bk-first")).toBe(false);
  // The same slug twice in one request: the second is the refused one.
  const twice = await bulk({
    shortUrls: [
      { longUrl: "https://example.com/x", customSlug: "bk-twice" },
      { longUrl: "https://example.com/y", customSlug: "bk-twice" },
    ],
  });
  expect(((await twice.json()) as Problem).index).toBe(1);
  expect(await exists("bk-twice")).toBe(false);
});

test("names every bad field of every item in one 400, and creates nothing", async () => {
  const before = (await sdk.listShortUrls()).pagination.totalItems;
  const response = await bulk({
    shortUrls: [{ customSlug: "bk-no-url" }, "not a link", { longUrl: "https://example.com/ok", customSlug: "bad slug!", maxVisits: -1 }],
  });
  expect(response.status).toBe(400);
  const problem = (await response.json()) as Problem;
  expect(problem.type).toBe(problemType("invalid-data"));
  expect(problem.invalidElements?.sort()).toEqual([
    "shortUrls[0].longUrl",
    "shortUrls[1]",
    "shortUrls[2].customSlug",
    "shortUrls[2].maxVisits",
  ]);
  for (const body of [
    { shortUrls: [] },
    { shortUrls: "x" },
    {},
    { shortUrls: Array.from({ length: 1001 }, (_, i) => ({ longUrl: `https://e.x/${i}` })) },
  ]) {
    const refused = await bulk(body);
    expect(refused.status).toBe(400);
    expect(((await refused.json()) as Problem).invalidElements).toEqual(["shortUrls"]);
  }
  expect((await sdk.listShortUrls()).pagination.totalItems).toBe(before);
});

test("findIfExists works per item: an existing match is answered, not created again", async () => {
  const existing = await sdk.createShortUrl({ longUrl: "https://example.com/again", tags: ["dup"] });
  const response = await bulk({
    shortUrls: [
      { longUrl: "https://example.com/again", tags: ["dup"], findIfExists: true },
      { longUrl: "https://example.com/new-one", findIfExists: true },
    ],
  });
  expect(response.status).toBe(200);
  const { data } = ((await response.json()) as { shortUrls: { data: { shortCode: string }[] } }).shortUrls;
  expect(data[0]?.shortCode).toBe(existing.shortCode);
  expect(data[1]?.shortCode).not.toBe(existing.shortCode);
});

test("a read-only key gets 403, no key 401, an oversized body 413, and nothing is created", async () => {
  const before = (await sdk.listShortUrls()).pagination.totalItems;
  const readOnly = await bulk({ shortUrls: [{ longUrl: "https://example.com/ro", customSlug: "bk-ro" }] }, viewerKey);
  expect(readOnly.status).toBe(403);
  const anonymous = await fetch(`${server.baseUrl}/rest/v3/short-urls/bulk`, { method: "POST", body: "{}" });
  expect(anonymous.status).toBe(401);
  const huge = { shortUrls: [{ longUrl: `https://example.com/${"x".repeat(70_000)}` }] };
  const tooLarge = await bulk(huge);
  expect(tooLarge.status).toBe(413);
  expect(((await tooLarge.json()) as Problem).type).toBe(problemType("payload-too-large"));
  expect((await sdk.listShortUrls()).pagination.totalItems).toBe(before);
});
