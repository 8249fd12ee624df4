/**
 * Bad input against the compiled binary: every scenario in the table is refused with a 4xx problem+json that
 * says what was wrong (Shlink's `type`, a `detail`, `invalidElements` naming the fields), no input reaches a
 * 5xx, and nothing a refused request carried is left behind in the database.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { LONG_URL_2048, MAX_BODY_BYTES, SCENARIOS, type Scenario } from "./support/bad-input-scenarios";
import { startServer, type TestServer, waitFor } from "./support/binary";
import { sendChunked } from "./support/raw-http";
import { problemType } from "./support/sdk";

let server: TestServer;
/** Links created on purpose; after all the bad input, exactly these must exist. */
const legitimate = new Set<string>();

async function createLink(body: Record<string, unknown>): Promise<string> {
  const response = await server.api("/rest/v3/short-urls", { method: "POST", body: JSON.stringify(body) });
  expect(response.status).toBe(200);
  const { shortCode } = (await response.json()) as { shortCode: string };
  legitimate.add(shortCode);
  return shortCode;
}

const send = (s: Scenario) => server.api(s.path, { method: s.method, headers: s.headers, body: s.body });

beforeAll(async () => {
  server = await startServer();
  await createLink({ longUrl: "https://example.com/seeded", customSlug: "seeded", title: "Seeded", tags: ["seed-tag"], maxVisits: 7 });
  await createLink({ longUrl: "https://example.com/taken", customSlug: "taken" });
});
afterAll(async () => {
  await server[Symbol.asyncDispose]();
});

describe("bad input is refused with a 4xx problem", () => {
  test.each(SCENARIOS.map((s) => [s.name, s] as const))("%s", async (_name, scenario) => {
    const response = await send(scenario);
    const text = await response.text();
    expect({ status: response.status, body: text.slice(0, 300) }).toMatchObject({ status: scenario.status });
    expect(response.headers.get("content-type")).toBe("application/problem+json");
    const problem = JSON.parse(text) as Record<string, unknown>;
    expect(problem.type).toBe(problemType(scenario.type));
    expect(problem.status).toBe(scenario.status);
    expect(problem.title).toBeString();
    expect(problem.detail).toBeString();
    expect((problem.detail as string).length).toBeGreaterThan(0);
    if (scenario.invalidElements !== undefined) {
      expect([...(problem.invalidElements as string[])].sort()).toEqual([...scenario.invalidElements].sort());
    }
    expect(problem).toMatchObject(scenario.extras ?? {});
  });

  test(`refuses a chunked body over ${MAX_BODY_BYTES} bytes sent without Content-Length with 413 payload-too-large`, async () => {
    const chunk = new TextEncoder().encode("x".repeat(8192));
    const opening = new TextEncoder().encode('{"longUrl":"https://example.com/chunked","title":"');
    const response = await sendChunked(
      server.port,
      `POST /rest/v3/short-urls HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Api-Key: ${server.apiKey}\r\nContent-Type: application/json`,
      [opening, ...Array.from({ length: 9 }, () => chunk), new TextEncoder().encode('"}')],
    );
    expect(response.status).toBe(413);
    expect(response.headers.get("content-type")).toBe("application/problem+json");
    expect(response.headers.get("content-length")).not.toBeNull();
    expect(JSON.parse(response.body)).toMatchObject({ type: problemType("payload-too-large"), status: 413 });
  });

  test("accepts a chunked body under the limit sent without Content-Length", async () => {
    const body = new TextEncoder().encode(JSON.stringify({ longUrl: "https://example.com/chunked-ok" }));
    const response = await sendChunked(
      server.port,
      `POST /rest/v3/short-urls HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Api-Key: ${server.apiKey}\r\nContent-Type: application/json`,
      [body.subarray(0, 10), body.subarray(10)],
    );
    expect(response.status).toBe(200);
    legitimate.add((JSON.parse(response.body) as { shortCode: string }).shortCode);
  });
});

describe("input at the limits is accepted", () => {
  test("accepts a long URL of exactly 2048 bytes and stores it unchanged", async () => {
    expect(Buffer.byteLength(LONG_URL_2048)).toBe(2048);
    const code = await createLink({ longUrl: LONG_URL_2048 });
    const stored = (await (await server.api(`/rest/v3/short-urls/${code}`)).json()) as { longUrl: string };
    expect(stored.longUrl).toBe(LONG_URL_2048);
  });

  test("accepts a 64-character customSlug and a 64-character generated code", async () => {
    await createLink({ longUrl: "https://example.com/long-slug", customSlug: "s".repeat(64) });
    const generated = await createLink({ longUrl: "https://example.com/long-code", shortCodeLength: 64 });
    expect(generated).toHaveLength(64);
  });

  test("accepts a leap day that exists", async () => {
    await createLink({ longUrl: "https://example.com/leap", validUntil: "2028-02-29T12:00:00+00:00" });
  });
});

describe("headers past Bun's 16 KiB", () => {
  test("are refused by Bun with a bare 431 before the app sees them: no access line, the server goes on", async () => {
    const total = async () =>
      [...(await server.metrics())].filter(([name]) => name.startsWith("http_requests_total")).reduce((n, [, v]) => n + v, 0);
    const before = await total();
    const huge = await fetch(`${server.baseUrl}/seeded`, { redirect: "manual", headers: { "X-Padding": "p".repeat(17_000) } });
    expect(huge.status).toBe(431);
    await huge.arrayBuffer();
    // Just under the limit the redirect answers as usual (what a visit keeps of such headers: visits-capture.test.ts).
    const under = await fetch(`${server.baseUrl}/seeded`, { redirect: "manual", headers: { "X-Padding": "p".repeat(15_000) } });
    expect(under.status).toBe(302);
    // Only the redirect was counted, and only it has a line (its request id is the one it answered with).
    expect((await total()) - before).toBe(1);
    const requestId = under.headers.get("x-request-id") ?? "";
    await waitFor("the redirect's access line", () => server.stdout.includes(requestId));
    expect(server.stdout.split("\n").filter((line) => line.includes('"status":431'))).toEqual([]);
  });
});

describe("after all the bad input", () => {
  test("no scenario reaches a 5xx", async () => {
    const failures: string[] = [];
    for (const scenario of SCENARIOS) {
      const response = await send(scenario);
      await response.arrayBuffer();
      if (response.status >= 500) failures.push(`${scenario.name}: ${response.status}`);
    }
    expect(failures).toEqual([]);
  });

  test("nothing was half-written: only the legitimate links and their tags exist, unchanged", async () => {
    const list = (await (await server.api("/rest/v3/short-urls?itemsPerPage=-1")).json()) as {
      shortUrls: { data: { shortCode: string }[]; pagination: { totalItems: number } };
    };
    expect(list.shortUrls.pagination.totalItems).toBe(legitimate.size);
    expect(new Set(list.shortUrls.data.map((s) => s.shortCode))).toEqual(legitimate);
    const seeded = (await (await server.api("/rest/v3/short-urls/seeded")).json()) as Record<string, unknown>;
    expect(seeded).toMatchObject({
      longUrl: "https://example.com/seeded",
      title: "Seeded",
      tags: ["seed-tag"],
      crawlable: false,
      meta: { validSince: null, validUntil: null, maxVisits: 7 },
    });
    const taken = (await (await server.api("/rest/v3/short-urls/taken")).json()) as { longUrl: string };
    expect(taken.longUrl).toBe("https://example.com/taken");
    const tags = (await (await server.api("/rest/v3/tags")).json()) as { tags: { data: string[] } };
    expect(tags.tags.data).toEqual(["seed-tag"]);
  });
});
