import { afterAll, beforeAll, expect, test } from "bun:test";
import { startServer, type TestServer } from "./support/binary";

let server: TestServer;
beforeAll(async () => {
  server = await startServer();
});
afterAll(async () => {
  await server[Symbol.asyncDispose]();
});

test("a created link redirects with 302 and the configured Cache-Control", async () => {
  const created = await server.api("/rest/v3/short-urls", {
    method: "POST",
    body: JSON.stringify({ longUrl: "https://example.com/smoke" }),
  });
  expect(created.status).toBe(200);
  const { shortCode } = (await created.json()) as { shortCode: string };
  expect(shortCode).toMatch(/^[0-9A-Za-z]{7}$/);
  const redirect = await fetch(`${server.baseUrl}/${shortCode}`, { redirect: "manual" });
  expect(redirect.status).toBe(302);
  expect(redirect.headers.get("location")).toBe("https://example.com/smoke");
  expect(redirect.headers.get("cache-control")).toBe("private, max-age=30");
});
