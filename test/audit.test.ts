/**
 * The audit history against the compiled binary: GET /rest/v3/audit-events names who (an API key, or the login at the
 * command line) changed what and when, for every kind of change the API and the CLI make; one link's history; admin
 * keys only; bad queries are 400s naming the field; and nothing a refused change attempted.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { userInfo } from "node:os";
import { runCli, startServer, type TestServer, waitFor } from "./support/binary";
import { problemType, type ShlinkApi, sdkClient } from "./support/sdk";

interface AuditEventJson {
  id: string;
  date: string;
  action: string;
  actor: { type: string; name: string };
  subject: string;
  shortCode: string | null;
  domain: string | null;
  details: Record<string, unknown>;
}

let server: TestServer;
let admin: ShlinkApi;
let editorKey: string;
let viewerKey: string;
beforeAll(async () => {
  server = await startServer({ args: ["--visit-flush-interval", "100ms"] });
  admin = sdkClient(server);
  editorKey = await server.createKey("editor");
  viewerKey = await server.createKey("viewer", "read-only");
});
afterAll(async () => {
  await server[Symbol.asyncDispose]();
});

async function auditEvents(query = "", apiKey = server.apiKey): Promise<{ data: AuditEventJson[]; pagination: Record<string, number> }> {
  const response = await fetch(`${server.baseUrl}/rest/v3/audit-events${query}`, { headers: { "X-Api-Key": apiKey } });
  expect(response.status).toBe(200);
  return ((await response.json()) as { auditEvents: { data: AuditEventJson[]; pagination: Record<string, number> } }).auditEvents;
}

/** The events newer than `afterId`, oldest first, as [action, actor name, subject]. */
async function since(afterId: number): Promise<AuditEventJson[]> {
  const { data } = await auditEvents("?itemsPerPage=500");
  return data.filter((e) => Number(e.id) > afterId).reverse();
}

async function lastId(): Promise<number> {
  const { data } = await auditEvents("?itemsPerPage=1");
  return Number(data[0]?.id ?? 0);
}

describe("the audit history", () => {
  test("names the key behind each link change, with what it was created as, what an edit changed and what was deleted", async () => {
    const before = await lastId();
    const editor = sdkClient(server, editorKey);
    await admin.createShortUrl({ longUrl: "https://example.com/spring", customSlug: "au-sale", tags: ["promo"] });
    await editor.updateShortUrl({ shortCode: "au-sale" }, { longUrl: "https://example.com/summer", maxVisits: 100 });
    await admin.deleteShortUrl({ shortCode: "au-sale" });
    const events = await since(before);
    expect(events.map((e) => [e.action, e.actor, e.subject, e.shortCode, e.domain])).toEqual([
      ["short-url.created", { type: "api-key", name: "admin" }, "au-sale", "au-sale", null],
      ["short-url.edited", { type: "api-key", name: "editor" }, "au-sale", "au-sale", null],
      ["short-url.deleted", { type: "api-key", name: "admin" }, "au-sale", "au-sale", null],
    ]);
    expect(events[0]?.details).toEqual({ longUrl: "https://example.com/spring", tags: ["promo"] });
    expect(events[1]?.details).toEqual({
      changes: { longUrl: { from: "https://example.com/spring", to: "https://example.com/summer" }, maxVisits: { from: null, to: 100 } },
    });
    expect(events[2]?.details).toMatchObject({ longUrl: "https://example.com/summer", maxVisits: 100 });
    for (const e of events) expect(e.date).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\+00:00$/);
    // What one key changed (a key suspected of leaking): the editor's edit alone.
    const byEditor = (await auditEvents("?actor=editor")).data;
    expect(byEditor.map((e) => [e.action, e.subject])).toEqual([["short-url.edited", "au-sale"]]);
  });

  test("records rules, tags, a domain's redirects and visit deletions; a refused change records nothing", async () => {
    await admin.createShortUrl({ longUrl: "https://example.com/app", customSlug: "au-app", tags: ["mobile", "old-name"] });
    expect((await fetch(`${server.baseUrl}/au-app`, { redirect: "manual" })).status).toBe(302);
    await waitFor("the visit stored", async () => (await admin.getShortUrlVisits({ shortCode: "au-app" })).data.length === 1, 10_000);
    expect((await fetch(`${server.baseUrl}/au-no-such-code`)).status).toBe(404);
    await waitFor("the orphan visit stored", async () => (await admin.getOrphanVisits()).data.length > 0, 10_000);
    const before = await lastId();

    const rule = {
      longUrl: "https://example.com/android",
      conditions: [{ type: "device" as const, matchKey: null, matchValue: "android" }],
    };
    await admin.setShortUrlRedirectRules({ shortCode: "au-app" }, { redirectRules: [rule] });
    await admin.editTag({ oldName: "old-name", newName: "new-name" });
    await admin.deleteTags(["mobile", "never-existed"]);
    await admin.editDomainRedirects({ domain: new URL(server.baseUrl).host, baseUrlRedirect: "https://example.com/home" });
    await admin.editDomainRedirects({ domain: new URL(server.baseUrl).host, baseUrlRedirect: "https://example.com/home" }); // no change: no event
    expect(await admin.deleteShortUrlVisits({ shortCode: "au-app" })).toEqual({ deletedVisits: 1 });
    expect((await admin.deleteOrphanVisits()).deletedVisits).toBeGreaterThan(0);
    // Refused: a taken slug, a read-only key's edit, a rename onto an existing tag, an unknown link's rules.
    await expect(admin.createShortUrl({ longUrl: "https://example.com/x", customSlug: "au-app" })).rejects.toMatchObject({ status: 400 });
    await expect(sdkClient(server, viewerKey).updateShortUrl({ shortCode: "au-app" }, { title: "x" })).rejects.toMatchObject({
      status: 403,
    });
    await admin.createShortUrl({ longUrl: "https://example.com/y", customSlug: "au-other", tags: ["taken"] });
    await expect(admin.editTag({ oldName: "new-name", newName: "taken" })).rejects.toMatchObject({ status: 409 });
    await expect(admin.setShortUrlRedirectRules({ shortCode: "au-none" }, { redirectRules: [] })).rejects.toMatchObject({ status: 404 });

    const events = await since(before);
    expect(events.map((e) => [e.action, e.subject])).toEqual([
      ["short-url.redirect-rules-set", "au-app"],
      ["tag.renamed", "tag new-name"],
      ["tags.deleted", "tags mobile"],
      ["domain.redirects-edited", `domain ${new URL(server.baseUrl).host}`],
      ["short-url.visits-deleted", "au-app"],
      ["orphan-visits.deleted", "orphan visits"],
      ["short-url.created", "au-other"],
    ]);
    expect(events[0]?.details).toEqual({ from: [], to: [{ ...rule, priority: 1 }] });
    expect(events[1]?.details).toEqual({ from: "old-name", to: "new-name" });
    expect(events[2]?.details).toEqual({ tags: ["mobile"] });
    expect(events[3]?.details).toMatchObject({ from: { baseUrlRedirect: null }, to: { baseUrlRedirect: "https://example.com/home" } });
    expect(events[4]?.details).toEqual({ deletedVisits: 1 });
  });

  test("names the login behind a change made at the command line: keys and webhooks, never a secret", async () => {
    const before = await lastId();
    const login = process.env.SUDO_USER || userInfo().username;
    expect((await runCli(["keys", "create", "--name", "au-temp", "--role", "read-only", "--data-dir", server.dataDir])).exitCode).toBe(0);
    expect((await runCli(["keys", "revoke", "au-temp", "--data-dir", server.dataDir])).exitCode).toBe(0);
    const created = await runCli([
      "webhooks",
      "create",
      "--url",
      "https://hooks.example.com/in",
      "--events",
      "link.created",
      "--name",
      "au-hook",
      "--data-dir",
      server.dataDir,
    ]);
    expect(created.exitCode).toBe(0);
    const webhook = (
      JSON.parse((await runCli(["webhooks", "list", "--json", "--data-dir", server.dataDir])).stdout) as { id: string; name: string }[]
    ).find((w) => w.name === "au-hook");
    expect(webhook).toBeDefined();
    const id = String(webhook?.id);
    expect((await runCli(["webhooks", "rotate-secret", id, "--data-dir", server.dataDir])).exitCode).toBe(0);
    expect((await runCli(["webhooks", "delete", id, "--data-dir", server.dataDir])).exitCode).toBe(0);

    const events = await since(before);
    expect(events.map((e) => [e.action, e.actor, e.subject])).toEqual([
      ["api-key.created", { type: "cli", name: login }, "key au-temp"],
      ["api-key.revoked", { type: "cli", name: login }, "key au-temp"],
      ["webhook.created", { type: "cli", name: login }, `webhook ${id}`],
      ["webhook.secret-rotated", { type: "cli", name: login }, `webhook ${id}`],
      ["webhook.deleted", { type: "cli", name: login }, `webhook ${id}`],
    ]);
    expect(events[0]?.details).toEqual({ role: "read-only", expiresAt: null });
    expect(events[2]?.details).toEqual({ name: "au-hook", url: "https://hooks.example.com/in", events: ["link.created"] });
    const all = JSON.stringify(events);
    expect(all).not.toContain("shk_");
    expect(all).not.toContain("whsec_");
  });

  test("lists one link's history, a page at a time, newest first", async () => {
    await admin.createShortUrl({ longUrl: "https://example.com/p0", customSlug: "au-paged" });
    for (let i = 1; i <= 4; i++) await admin.updateShortUrl({ shortCode: "au-paged" }, { longUrl: `https://example.com/p${i}` });
    const first = await auditEvents("?shortCode=au-paged&itemsPerPage=2");
    expect(first.pagination).toEqual({ currentPage: 1, pagesCount: 3, itemsPerPage: 2, itemsInCurrentPage: 2, totalItems: 5 });
    expect(first.data.map((e) => (e.details.changes as { longUrl: { to: string } }).longUrl.to)).toEqual([
      "https://example.com/p4",
      "https://example.com/p3",
    ]);
    const last = await auditEvents("?shortCode=au-paged&itemsPerPage=2&page=3");
    expect(last.data.map((e) => e.action)).toEqual(["short-url.created"]);
    expect((await auditEvents("?shortCode=au-paged&startDate=2999-01-01")).data).toEqual([]);
  });

  test("`shortener audit` reads it on the machine itself, no key needed: a table, or the API's JSON, filtered the same way", async () => {
    await admin.createShortUrl({ longUrl: "https://example.com/cli", customSlug: "au-cli" });
    await sdkClient(server, editorKey).updateShortUrl({ shortCode: "au-cli" }, { title: "Edited at night" });
    const dir = ["--data-dir", server.dataDir];
    const table = await runCli(["audit", "--short-code", "au-cli", ...dir]);
    expect(table.exitCode).toBe(0);
    const lines = table.stdout.trim().split("\n");
    expect(lines[0]).toBe("DATE\tACTION\tACTOR\tSUBJECT\tDETAILS");
    expect(lines.slice(1).map((line) => line.split("\t").slice(1, 4))).toEqual([
      ["short-url.edited", "api-key:editor", "au-cli"],
      ["short-url.created", "api-key:admin", "au-cli"],
    ]);
    expect(JSON.parse(lines[1]?.split("\t")[4] ?? "")).toEqual({ changes: { title: { from: null, to: "Edited at night" } } });
    const json = await runCli(["audit", "--actor", "editor", "--limit", "1", "--json", ...dir]);
    expect(json.exitCode).toBe(0);
    const api = (await auditEvents("?actor=editor&itemsPerPage=1")).data;
    expect(JSON.parse(json.stdout)).toEqual(api);
    expect(JSON.parse((await runCli(["audit", "--since", "2999-01-01", "--json", ...dir])).stdout)).toEqual([]);
    for (const [flags, says] of [
      [["--limit", "0"], "--limit"],
      [["--since", "soon"], "--since"],
      [["--domain", "go.test"], "--domain needs --short-code"],
      [["--since", "1d", "--until", "2d"], "--since is after --until"],
    ] as const) {
      const refused = await runCli(["audit", ...flags, ...dir]);
      expect(refused.exitCode).toBe(2);
      expect(refused.stderr).toContain(says);
    }
  });

  test("is for admin keys: read-only 403, no key 401, bad queries 400 naming the field", async () => {
    const get = (query: string, headers: Record<string, string>) => fetch(`${server.baseUrl}/rest/v3/audit-events${query}`, { headers });
    const viewer = await get("", { "X-Api-Key": viewerKey });
    expect(viewer.status).toBe(403);
    expect(viewer.headers.get("content-type")).toBe("application/problem+json");
    expect(((await viewer.json()) as { type: string }).type).toBe(problemType("forbidden-operation"));
    expect((await get("", {})).status).toBe(401);
    const bad = await get("?itemsPerPage=1000&endDate=soon", { "X-Api-Key": server.apiKey });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { invalidElements: string[] }).invalidElements.sort()).toEqual(["endDate", "itemsPerPage"]);
  });
});
