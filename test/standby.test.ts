import { expect, test } from "bun:test";
import { rmSync } from "node:fs";
import { startServer, TestServer } from "./support/binary";

test("a standby serves redirects from its database and refuses writes with 503 and Retry-After", async () => {
  const primary = await startServer();
  const created = await primary.api("/rest/v3/short-urls", {
    method: "POST",
    body: JSON.stringify({ longUrl: "https://example.com/replicated", tags: ["t"] }),
  });
  const { shortCode } = (await created.json()) as { shortCode: string };
  expect(await primary.stop()).toBe(0);

  const standby = new TestServer({ dataDir: primary.dataDir, args: ["--role", "standby"] });
  standby.apiKey = primary.apiKey;
  await standby.start();
  try {
    const redirect = await fetch(`${standby.baseUrl}/${shortCode}`, { redirect: "manual" });
    expect(redirect.status).toBe(302);
    expect(redirect.headers.get("location")).toBe("https://example.com/replicated");
    expect((await standby.api(`/rest/v3/short-urls/${shortCode}`)).status).toBe(200);
    const writes = [
      standby.api("/rest/v3/short-urls", { method: "POST", body: JSON.stringify({ longUrl: "https://example.com/refused" }) }),
      standby.api(`/rest/v3/short-urls/${shortCode}`, { method: "PATCH", body: JSON.stringify({ title: "x" }) }),
      standby.api(`/rest/v3/short-urls/${shortCode}`, { method: "DELETE" }),
      standby.api("/rest/v3/tags", { method: "PUT", body: JSON.stringify({ oldName: "t", newName: "u" }) }),
      standby.api(`/rest/v3/short-urls/${shortCode}/redirect-rules`, { method: "POST", body: JSON.stringify({ redirectRules: [] }) }),
      standby.api("/rest/v3/domains/redirects", {
        method: "PATCH",
        body: JSON.stringify({ domain: "go.example.test", baseUrlRedirect: "https://example.com/" }),
      }),
    ];
    for (const response of await Promise.all(writes)) {
      expect(response.status).toBe(503);
      expect(response.headers.get("retry-after")).toBe("5");
      expect(response.headers.get("content-type")).toBe("application/problem+json");
    }
    const ready = (await (await fetch(`${standby.baseUrl}/readyz`)).json()) as { role: string };
    expect(ready.role).toBe("standby");
  } finally {
    await standby.stop();
    rmSync(primary.dataDir, { recursive: true, force: true });
  }
});
