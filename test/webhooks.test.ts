/**
 * Webhooks against the compiled binary: a receiver on loopback (test/support/webhook-receiver.ts) verifies every
 * signature with the official standardwebhooks library and deduplicates on webhook-id. Each link's events must
 * arrive exactly once by id and in order, through failing first attempts, a SIGTERM with events still failing,
 * and a SIGKILL between the receiver's acceptance and the server's record of it.
 */

import { Database } from "bun:sqlite";
import { describe, expect, test } from "bun:test";
import { rmSync } from "node:fs";
import { join } from "node:path";
import { BINARY, runCli, startServer, TestServer, tempDir, waitFor } from "./support/binary";
import { parseRunbook, runShell } from "./support/runbook-steps";
import { WebhookReceiver } from "./support/webhook-receiver";

const BROWSER = "Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0";
const ALL_EVENTS = ["link.created", "link.updated", "link.deleted", "link.visited"];
/** Fast retries, so that a test's failing attempts take milliseconds. */
const FAST_RETRIES = {
  SHORTENER_WEBHOOK_RETRY_BASE: "20ms",
  SHORTENER_WEBHOOK_RETRY_MAX: "100ms",
  SHORTENER_VISIT_FLUSH_INTERVAL: "50ms",
};
/** Retries spaced so that a down receiver takes a minute to exhaust the attempts (none may die mid-test). */
const SLOW_RETRIES = {
  SHORTENER_WEBHOOK_RETRY_BASE: "200ms",
  SHORTENER_WEBHOOK_RETRY_MAX: "1s",
  SHORTENER_WEBHOOK_MAX_ATTEMPTS: "100",
  SHORTENER_VISIT_FLUSH_INTERVAL: "50ms",
};

async function scrape(server: TestServer): Promise<Map<string, number>> {
  const text = await (await fetch(`http://127.0.0.1:${server.opsPort}/metrics`)).text();
  const samples = new Map<string, number>();
  for (const line of text.split("\n")) {
    if (line.startsWith("#") || line.trim() === "") continue;
    const space = line.lastIndexOf(" ");
    samples.set(line.slice(0, space), Number(line.slice(space + 1)));
  }
  return samples;
}

async function createWebhook(server: TestServer, receiver: WebhookReceiver, events = ALL_EVENTS): Promise<string> {
  const response = await server.api("/rest/v3/webhooks", { method: "POST", body: JSON.stringify({ url: receiver.url, events }) });
  expect(response.status).toBe(201);
  const created = (await response.json()) as { id: string; secret: string };
  receiver.secret = created.secret;
  return created.id;
}

async function deliveries(server: TestServer, webhookId: string, query = ""): Promise<Record<string, unknown>[]> {
  const response = await server.api(`/rest/v3/webhooks/${webhookId}/deliveries?itemsPerPage=500${query}`);
  expect(response.status).toBe(200);
  return ((await response.json()) as { deliveries: { data: Record<string, unknown>[] } }).deliveries.data;
}

/**
 * Per link: created, updated, two visits (enqueued before the deletion: the test waits for them), and for the
 * links listed in `deleted`, deleted. Returns the event types each link should receive, in order.
 */
async function driveLinks(server: TestServer, webhookId: string, codes: string[], deleted: string[]): Promise<Map<string, string[]>> {
  const expected = new Map<string, string[]>();
  for (const code of codes) {
    const created = await server.api("/rest/v3/short-urls", {
      method: "POST",
      body: JSON.stringify({ longUrl: `https://example.com/${code}`, customSlug: code }),
    });
    expect(created.status).toBe(200);
    const edited = await server.api(`/rest/v3/short-urls/${code}`, { method: "PATCH", body: JSON.stringify({ title: `title ${code}` }) });
    expect(edited.status).toBe(200);
    for (let i = 0; i < 2; i++) {
      const visit = await fetch(`${server.baseUrl}/${code}`, {
        redirect: "manual",
        headers: { "User-Agent": BROWSER, Referer: "https://ref.example/" },
      });
      expect(visit.status).toBe(302);
    }
    expected.set(`/${code}`, ["link.created", "link.updated", "link.visited", "link.visited"]);
  }
  const visitsExpected = codes.length * 2;
  await waitFor("the visits' events in the outbox", async () => {
    const rows = await deliveries(server, webhookId);
    return rows.filter((row) => row.eventType === "link.visited").length === visitsExpected;
  });
  for (const code of deleted) {
    expect((await server.api(`/rest/v3/short-urls/${code}`, { method: "DELETE" })).status).toBe(204);
    expected.get(`/${code}`)?.push("link.deleted");
  }
  return expected;
}

/** No link's next event was tried before its previous one was accepted: the first try of each came after. */
function sentInOrderPerLink(receiver: WebhookReceiver): string[] {
  const problems: string[] = [];
  const byLink = new Map<string, string[]>();
  for (const r of receiver.accepted) byLink.set(r.link, [...(byLink.get(r.link) ?? []), r.id]);
  for (const [link, ids] of byLink) {
    for (let i = 1; i < ids.length; i++) {
      const acceptedPrevious = receiver.attempts.find((a) => a.id === ids[i - 1] && a.status === 200)?.seq ?? Number.POSITIVE_INFINITY;
      const firstTry = receiver.attempts.find((a) => a.id === ids[i])?.seq ?? 0;
      if (firstTry < acceptedPrevious) problems.push(`${link}: event ${i} was tried before event ${i - 1} was accepted`);
    }
  }
  return problems;
}

describe("webhook delivery", () => {
  test("every event of every link arrives exactly once, in order per link, signed, through two failed attempts each", async () => {
    using receiver = new WebhookReceiver();
    receiver.mode = { kind: "fail-first", attempts: 2 };
    await using server = await startServer({ env: FAST_RETRIES });
    const webhookId = await createWebhook(server, receiver);
    const expected = await driveLinks(server, webhookId, ["wh-a", "wh-b", "wh-c"], ["wh-a", "wh-c"]);
    const total = [...expected.values()].flat().length;
    await waitFor("every event accepted", () => receiver.accepted.length >= total, 30_000);

    expect(receiver.attempts.filter((a) => !a.verified)).toEqual([]);
    expect(receiver.typesByLink()).toEqual(expected);
    expect(receiver.duplicates).toEqual([]);
    expect(new Set(receiver.accepted.map((r) => r.id)).size).toBe(total);
    // Every message was tried three times under the same id: two 503s, then accepted.
    expect(receiver.accepted.map((r) => receiver.triesOf(r.id))).toEqual(Array(total).fill(3));
    expect(sentInOrderPerLink(receiver)).toEqual([]);

    const created = receiver.accepted.find((r) => r.link === "/wh-b" && r.type === "link.created");
    expect(created?.id).toMatch(/^msg_[0-9A-Za-z_-]{27}$/);
    expect(created?.data.shortUrl).toMatchObject({ shortCode: "wh-b", longUrl: "https://example.com/wh-b", domain: null });
    const visited = receiver.accepted.find((r) => r.link === "/wh-b" && r.type === "link.visited");
    expect(visited?.data).toMatchObject({
      shortUrl: { shortCode: "wh-b", domain: null, shortUrl: `${server.baseUrl}/wh-b` },
      visit: {
        potentialBot: false,
        referer: "https://ref.example/",
        userAgent: BROWSER,
        visitedUrl: `${server.baseUrl}/wh-b`,
        redirectUrl: "https://example.com/wh-b",
        visitLocation: null,
      },
    });
    // Shlink's visit shape, and never the client's address.
    expect(Object.keys(visited?.data.visit as object).sort()).toEqual([
      "date",
      "potentialBot",
      "redirectUrl",
      "referer",
      "userAgent",
      "visitLocation",
      "visitedUrl",
    ]);

    await waitFor("the outbox drained", async () => (await scrape(server)).get("shortener_webhook_outbox_backlog") === 0);
    const metrics = await scrape(server);
    expect(metrics.get('shortener_webhook_deliveries_total{outcome="delivered"}')).toBe(total);
    expect(metrics.get('shortener_webhook_deliveries_total{outcome="failed"}')).toBe(2 * total);
    expect(metrics.get('shortener_webhook_deliveries_total{outcome="dead"}')).toBe(0);
    expect(metrics.get("shortener_webhook_dead_letters")).toBe(0);
    expect(metrics.get("shortener_webhook_delivery_duration_seconds_count")).toBe(3 * total);

    const rows = await deliveries(server, webhookId, "&state=delivered");
    expect(rows).toHaveLength(total);
    expect(rows.every((row) => row.attempts === 3 && row.lastStatus === 204)).toBe(true);
  }, 60_000);

  test("events still failing at a SIGTERM, and one accepted just before a SIGKILL, each arrive once after restarts", async () => {
    using receiver = new WebhookReceiver();
    receiver.mode = { kind: "down" };
    const dataDir = tempDir();
    try {
      // 1. Events pile up while the receiver is down; the server stops (SIGTERM) with all of them failing.
      const first = await startServer({ dataDir, env: SLOW_RETRIES });
      const webhookId = await createWebhook(first, receiver);
      const expected = await driveLinks(first, webhookId, ["rs-a", "rs-b", "rs-c"], ["rs-b"]);
      const total = [...expected.values()].flat().length;
      await waitFor("failed attempts", () => receiver.attempts.length >= 6);
      expect(await first.stop("SIGTERM")).toBe(0);
      await first[Symbol.asyncDispose]();
      expect(receiver.accepted).toEqual([]);

      // 2. The receiver accepts the next request and holds its answer; the server is killed before it can record it.
      receiver.mode = { kind: "hold-next" };
      const second = new TestServer({ dataDir, env: SLOW_RETRIES });
      second.apiKey = first.apiKey;
      await second.start();
      await waitFor("a held delivery", () => receiver.held !== null);
      const heldId = receiver.held?.id as string;
      await second.stop("SIGKILL");
      receiver.held?.release();

      // 3. The last start sends everything still pending: the held message again under its id, then the rest.
      receiver.mode = { kind: "up" };
      await using third = new TestServer({ dataDir, env: SLOW_RETRIES });
      third.apiKey = first.apiKey;
      await third.start();
      await waitFor("every event accepted", () => receiver.accepted.length >= total, 30_000);
      await waitFor("the resent held message", () => receiver.triesOf(heldId) >= 2 && receiver.duplicates.length > 0);

      expect(receiver.duplicates).toEqual([heldId]);
      expect(receiver.attempts.filter((a) => !a.verified)).toEqual([]);
      expect(receiver.typesByLink()).toEqual(expected);
      expect(new Set(receiver.accepted.map((r) => r.id)).size).toBe(total);
      expect(sentInOrderPerLink(receiver)).toEqual([]);
      await waitFor("the outbox drained", async () => (await scrape(third)).get("shortener_webhook_outbox_backlog") === 0);
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  }, 90_000);

  test("a delivery that keeps failing is dead after the last attempt, does not hold up the link's next event, and can be retried", async () => {
    using receiver = new WebhookReceiver();
    receiver.mode = { kind: "down" };
    await using server = await startServer({ env: { ...FAST_RETRIES, SHORTENER_WEBHOOK_MAX_ATTEMPTS: "3" } });
    const webhookId = await createWebhook(server, receiver, ["link.created", "link.updated"]);
    await server.api("/rest/v3/short-urls", {
      method: "POST",
      body: JSON.stringify({ longUrl: "https://example.com/dead", customSlug: "dl" }),
    });
    await waitFor("a dead letter", async () => (await deliveries(server, webhookId, "&state=dead")).length === 1);
    const [dead] = await deliveries(server, webhookId, "&state=dead");
    expect(dead).toMatchObject({ eventType: "link.created", state: "dead", attempts: 3, lastStatus: 503, nextAttemptAt: null });
    expect(dead?.lastError).toContain("HTTP 503");
    expect(receiver.triesOf(dead?.messageId as string)).toBe(3);
    const metrics = await scrape(server);
    expect(metrics.get("shortener_webhook_dead_letters")).toBe(1);
    expect(metrics.get('shortener_webhook_deliveries_total{outcome="dead"}')).toBe(1);
    expect(metrics.get('shortener_webhook_deliveries_total{outcome="failed"}')).toBe(2);

    // The link's next event is sent: the dead one no longer holds its queue.
    receiver.mode = { kind: "up" };
    await server.api("/rest/v3/short-urls/dl", { method: "PATCH", body: JSON.stringify({ title: "after" }) });
    await waitFor("the update accepted", () => receiver.accepted.length === 1);
    expect(receiver.accepted[0]?.type).toBe("link.updated");

    const retried = await server.api(`/rest/v3/webhooks/${webhookId}/deliveries/${dead?.id}/retry`, { method: "POST" });
    expect(retried.status).toBe(200);
    expect(await retried.json()).toMatchObject({ id: dead?.id, messageId: dead?.messageId, state: "pending", attempts: 0 });
    await waitFor("the retried delivery accepted", () => receiver.accepted.length === 2);
    expect(receiver.accepted[1]).toMatchObject({ id: dead?.messageId, type: "link.created" });
    await waitFor("no dead letter left", async () => (await scrape(server)).get("shortener_webhook_dead_letters") === 0);

    const again = await server.api(`/rest/v3/webhooks/${webhookId}/deliveries/${dead?.id}/retry`, { method: "POST" });
    expect(again.status).toBe(409);
    expect(await again.json()).toMatchObject({ type: "https://shlink.io/api/error/webhook-delivery-not-dead", state: "delivered" });
    const unknown = await server.api(`/rest/v3/webhooks/${webhookId}/deliveries/999999/retry`, { method: "POST" });
    expect(unknown.status).toBe(404);
  }, 60_000);
});

describe("410 Gone", () => {
  test("turns the webhook off: its events wait and no new ones are queued, until it is turned on again", async () => {
    using receiver = new WebhookReceiver();
    receiver.mode = { kind: "gone" };
    await using server = await startServer({ env: FAST_RETRIES });
    const webhookId = await createWebhook(server, receiver, ["link.created", "link.updated"]);
    await server.api("/rest/v3/short-urls", {
      method: "POST",
      body: JSON.stringify({ longUrl: "https://example.com/g", customSlug: "gone-1" }),
    });
    await waitFor(
      "the webhook turned off",
      async () => ((await (await server.api(`/rest/v3/webhooks/${webhookId}`)).json()) as { disabled: boolean }).disabled,
    );
    await waitFor("the webhook_disabled log line", () => server.stderr.includes('"event":"webhook_disabled"'));
    // Off: the link's next event is not queued, and the waiting one is not sent.
    await server.api("/rest/v3/short-urls/gone-1", { method: "PATCH", body: JSON.stringify({ title: "while off" }) });
    const waiting = await deliveries(server, webhookId);
    expect(waiting.map((d) => [d.eventType, d.state, d.lastStatus])).toEqual([["link.created", "pending", 410]]);
    expect(receiver.attempts).toHaveLength(1);

    receiver.mode = { kind: "up" };
    const bad = await server.api(`/rest/v3/webhooks/${webhookId}`, { method: "PATCH", body: JSON.stringify({ disabled: "no" }) });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { invalidElements: string[] }).invalidElements).toEqual(["disabled"]);
    const enabled = await server.api(`/rest/v3/webhooks/${webhookId}`, { method: "PATCH", body: JSON.stringify({ disabled: false }) });
    expect(enabled.status).toBe(200);
    expect(await enabled.json()).toMatchObject({ id: webhookId, disabled: false });
    await waitFor("the waiting event accepted", () => receiver.accepted.length === 1);
    expect(receiver.accepted[0]).toMatchObject({ id: waiting[0]?.messageId, type: "link.created" });

    // The CLI turns it off and on too.
    const off = await runCli(["webhooks", "disable", webhookId, "--data-dir", server.dataDir]);
    expect(off).toMatchObject({ exitCode: 0, stderr: expect.stringContaining(`disabled webhook ${webhookId}`) });
    await server.api("/rest/v3/short-urls/gone-1", { method: "PATCH", body: JSON.stringify({ title: "off again" }) });
    expect(await deliveries(server, webhookId)).toHaveLength(1);
    expect((await runCli(["webhooks", "enable", webhookId, "--data-dir", server.dataDir])).exitCode).toBe(0);
    await server.api("/rest/v3/short-urls/gone-1", { method: "PATCH", body: JSON.stringify({ title: "on again" }) });
    await waitFor("the next event accepted", () => receiver.accepted.length === 2);
    expect(receiver.accepted[1]).toMatchObject({ type: "link.updated", data: { shortUrl: { title: "on again" } } });
  });
});

describe("webhook management API", () => {
  test("creation answers the secret once; lists and reads never show it, nor does the server's output", async () => {
    await using server = await startServer();
    const response = await server.api("/rest/v3/webhooks", {
      method: "POST",
      body: JSON.stringify({ url: "https://hooks.example.com/in", events: ["link.visited", "link.created"], name: "crm" }),
    });
    expect(response.status).toBe(201);
    const created = (await response.json()) as Record<string, unknown>;
    expect(created).toEqual({
      id: expect.stringMatching(/^\d+$/),
      name: "crm",
      url: "https://hooks.example.com/in",
      events: ["link.created", "link.visited"],
      dateCreated: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00$/),
      disabled: false,
      secret: expect.stringMatching(/^whsec_[A-Za-z0-9+/]{43}=$/),
    });
    const secret = created.secret as string;
    const list = await (await server.api("/rest/v3/webhooks")).text();
    const one = await (await server.api(`/rest/v3/webhooks/${created.id}`)).text();
    const { secret: _, ...shown } = created;
    expect(JSON.parse(list)).toEqual({ webhooks: { data: [shown] } });
    expect(JSON.parse(one)).toEqual(shown);
    expect(list + one).not.toContain(secret);

    expect((await server.api(`/rest/v3/webhooks/${created.id}`, { method: "DELETE" })).status).toBe(204);
    expect((await server.api(`/rest/v3/webhooks/${created.id}`)).status).toBe(404);
    expect(server.stdout + server.stderr).not.toContain(secret);
  });

  test.each([
    ["a non-http URL", { url: "ftp://example.com/x", events: ["link.created"] }, "url"],
    ["a missing URL", { events: ["link.created"] }, "url"],
    ["a URL that does not parse", { url: "http://exa mple.com", events: ["link.created"] }, "url"],
    ["a URL with credentials", { url: "https://user:pw@example.com/", events: ["link.created"] }, "url"],
    ["an unknown event", { url: "https://example.com/", events: ["link.exploded"] }, "events"],
    ["no events", { url: "https://example.com/", events: [] }, "events"],
    ["events not a list", { url: "https://example.com/", events: 3 }, "events"],
    ["a name that is not a string", { url: "https://example.com/", events: ["link.created"], name: 5 }, "name"],
  ])("creating with %s answers 400 invalid-data naming the field", async (_, body, field) => {
    await using server = await startServer();
    const response = await server.api("/rest/v3/webhooks", { method: "POST", body: JSON.stringify(body) });
    expect(response.status).toBe(400);
    expect(response.headers.get("content-type")).toBe("application/problem+json");
    const problem = (await response.json()) as { type: string; invalidElements: string[] };
    expect(problem.type).toBe("https://shlink.io/api/error/invalid-data");
    expect(problem.invalidElements).toEqual([field]);
  });

  test("refuses other bad requests with 4xx problems: body, ids, query, key and role", async () => {
    await using server = await startServer();
    const readOnly = await server.createKey("reader", "read-only");
    const cases: [string, string, RequestInit, number, string][] = [
      ["POST", "/rest/v3/webhooks", { body: "{nope" }, 400, "malformed-request-body"],
      ["GET", "/rest/v3/webhooks/42", {}, 404, "webhook-not-found"],
      ["GET", "/rest/v3/webhooks/abc", {}, 404, "webhook-not-found"],
      ["DELETE", "/rest/v3/webhooks/42", {}, 404, "webhook-not-found"],
      ["GET", "/rest/v3/webhooks/42/deliveries", {}, 404, "webhook-not-found"],
      ["POST", "/rest/v3/webhooks/42/deliveries/1/retry", {}, 404, "webhook-not-found"],
      ["GET", "/rest/v3/webhooks", { headers: { "X-Api-Key": readOnly } }, 403, "forbidden-operation"],
      ["GET", "/rest/v3/webhooks", { headers: { "X-Api-Key": "" } }, 401, "missing-authentication"],
    ];
    for (const [method, path, init, status, type] of cases) {
      const response = await server.api(path, { method, ...init });
      expect({ path, method, status: response.status }).toEqual({ path, method, status });
      expect(((await response.json()) as { type: string }).type).toBe(`https://shlink.io/api/error/${type}`);
    }
    const created = (await (
      await server.api("/rest/v3/webhooks", {
        method: "POST",
        body: JSON.stringify({ url: "https://e.example/", events: ["link.created"] }),
      })
    ).json()) as { id: string };
    const badQueries: [string, string][] = [
      ["state=bogus", "state"],
      ["itemsPerPage=0", "itemsPerPage"],
      ["beforeId=x", "beforeId"],
    ];
    for (const [query, field] of badQueries) {
      const response = await server.api(`/rest/v3/webhooks/${created.id}/deliveries?${query}`);
      expect(response.status).toBe(400);
      expect(((await response.json()) as { invalidElements: string[] }).invalidElements).toEqual([field]);
    }
  });
});

describe("shortener webhooks (CLI)", () => {
  test("create prints only the secret; a running server sends to it at once; list shows it without the secret; delete removes it", async () => {
    using receiver = new WebhookReceiver();
    await using server = await startServer({ env: FAST_RETRIES });
    const dir = ["--data-dir", server.dataDir];
    const created = await runCli(["webhooks", "create", "--url", receiver.url, "--events", "link.created", "--name", "cli", ...dir]);
    expect(created.exitCode).toBe(0);
    expect(created.stdout).toMatch(/^whsec_[A-Za-z0-9+/]{43}=\n$/);
    receiver.secret = created.stdout.trim();

    // The server notices a webhook created by another process at its next event.
    const first = await server.api("/rest/v3/short-urls", {
      method: "POST",
      body: JSON.stringify({ longUrl: "https://example.com/c", customSlug: "cli-1" }),
    });
    expect(first.status).toBe(200);
    await waitFor("the event accepted", () => receiver.accepted.length === 1);
    expect(receiver.accepted[0]).toMatchObject({ type: "link.created", link: "/cli-1" });

    const list = await runCli(["webhooks", "list", "--json", ...dir]);
    expect(list.exitCode).toBe(0);
    const [webhook] = JSON.parse(list.stdout) as { id: number; url: string; events: string[]; name: string }[];
    expect(webhook).toMatchObject({ url: receiver.url, events: ["link.created"], name: "cli" });
    expect(list.stdout).not.toContain(receiver.secret);
    const table = await runCli(["webhooks", "list", ...dir]);
    expect(table.stdout).toContain(receiver.url);
    expect(table.stdout).not.toContain(receiver.secret);

    const deliveries = await runCli(["webhooks", "deliveries", String(webhook?.id), "--state", "delivered", "--json", ...dir]);
    expect(JSON.parse(deliveries.stdout)).toEqual([expect.objectContaining({ eventType: "link.created", state: "delivered" })]);

    expect((await runCli(["webhooks", "delete", String(webhook?.id), ...dir])).exitCode).toBe(0);
    expect(JSON.parse((await runCli(["webhooks", "list", "--json", ...dir])).stdout)).toEqual([]);
    // Deleted in another process: the server stores no event for the next link.
    // (Had it kept the deleted webhook's id, the outbox row's foreign key would have failed the create.)
    const afterDelete = await server.api("/rest/v3/short-urls", {
      method: "POST",
      body: JSON.stringify({ longUrl: "https://example.com/d", customSlug: "cli-2" }),
    });
    expect(afterDelete.status).toBe(200);
    const db = new Database(join(server.dataDir, "shortener.db"), { readonly: true });
    try {
      expect(db.query("SELECT count(*) AS n FROM webhook_outbox").get()).toEqual({ n: 0 });
    } finally {
      db.close();
    }
  });

  test.each<[string[], string]>([
    [["webhooks", "create", "--url", "http://127.0.0.1:9/x", "--events", "link.nope"], "events"],
    [["webhooks", "create", "--url", "gopher://x", "--events", "link.created"], "url"],
    [["webhooks", "delete", "77"], "77"],
    [["webhooks", "delete", "x"], '"x" is not a webhook ID'],
    [["webhooks", "frobnicate"], 'unknown webhooks action "frobnicate"'],
  ])("%p exits 2 with a message naming the problem", async (args, named) => {
    const dataDir = tempDir();
    try {
      const result = await runCli([...args, "--data-dir", dataDir]);
      expect(result.exitCode).toBe(2);
      expect(result.stderr).toContain(named);
      expect(result.stderr).toContain("usage: shortener webhooks");
      expect(result.stdout).toBe("");
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});

describe("schema v4", () => {
  test("on a database from before webhooks, check names the pending migration and serve adds the tables", async () => {
    const dataDir = tempDir();
    try {
      expect((await runCli(["keys", "list", "--data-dir", dataDir])).exitCode).toBe(0);
      const db = new Database(join(dataDir, "shortener.db"));
      db.exec("DROP TABLE webhook_outbox; DROP TABLE webhooks; PRAGMA user_version = 3");
      db.close();
      const check = await runCli(["check", "--data-dir", dataDir, "--ops-listen", "127.0.0.1:1"]);
      expect(check.exitCode).toBe(1);
      expect(check.stdout).toContain("schema version 3, this binary expects 4");
      expect(check.stdout).not.toContain("no such table");
      await using server = await startServer({ dataDir });
      expect((await server.api("/rest/v3/webhooks")).status).toBe(200);
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});

describe("runbooks/webhook-failures.md", () => {
  test("every command runs, exits and prints as documented, on a node with a dead delivery", async () => {
    using receiver = new WebhookReceiver();
    receiver.mode = { kind: "down" };
    await using server = await startServer({ env: { ...FAST_RETRIES, SHORTENER_WEBHOOK_MAX_ATTEMPTS: "2" } });
    // The situation the runbook is for: webhook 1's first delivery (1) is dead, and its receiver works again.
    expect(await createWebhook(server, receiver, ["link.created"])).toBe("1");
    await server.api("/rest/v3/short-urls", {
      method: "POST",
      body: JSON.stringify({ longUrl: "https://example.com/rb", customSlug: "rb" }),
    });
    await waitFor("a dead letter", async () => (await deliveries(server, "1", "&state=dead")).length === 1);
    const [dead] = await deliveries(server, "1", "&state=dead");
    expect(dead?.id).toBe("1");
    receiver.mode = { kind: "up" };

    const steps = parseRunbook("webhook-failures.md");
    expect(steps.filter((s) => s.kind === "unit")).toEqual([]);
    // The runbook writes blue's addresses (deploy/systemd/blue.env.example); they stand for this node's.
    const addresses: [string, string][] = [
      ["127.0.0.1:8081", `127.0.0.1:${server.opsPort}`],
      ["127.0.0.1:8080", `127.0.0.1:${server.port}`],
    ];
    const map = (text: string) => addresses.reduce((t, [from, to]) => t.replaceAll(from, to), text);
    const env = {
      PATH: process.env.PATH ?? "",
      HOME: process.env.HOME ?? "/tmp",
      SHORTENER_BIN: BINARY,
      SHORTENER_DATA_DIR: server.dataDir,
      SHORTENER_LISTEN: `127.0.0.1:${server.port}`,
      SHORTENER_OPS_LISTEN: `127.0.0.1:${server.opsPort}`,
      SHORTENER_BASE_URL: server.baseUrl,
      NODE: server.baseUrl,
    };
    for (const step of steps) {
      const command = map(step.command);
      const shell = step.kind === "shortener" ? `${step.assignments}"$SHORTENER_BIN"${command.slice("shortener".length)}` : command;
      const result = await runShell(shell, env);
      const output = result.stdout + result.stderr;
      const problems = [
        ...(result.exitCode === step.exit ? [] : [`exited ${result.exitCode}, the runbook says ${step.exit}`]),
        ...step.prints.filter((text) => !output.includes(map(text))).map((text) => `does not print ${JSON.stringify(text)}`),
        ...step.matches.filter((re) => !new RegExp(map(re)).test(output)).map((re) => `output does not match /${re}/`),
      ];
      expect({ step: `${step.where}: ${command}`, problems, output: problems.length > 0 ? output : "" }).toEqual({
        step: `${step.where}: ${command}`,
        problems: [],
        output: "",
      });
      // The retried delivery reaches its receiver before the runbook goes on (its last step deletes the webhook).
      if (command.includes("webhooks retry")) await waitFor("the retried delivery accepted", () => receiver.accepted.length === 1);
    }
    expect(receiver.accepted.map((r) => r.id)).toEqual([dead?.messageId as string]);
    expect(JSON.parse((await runCli(["webhooks", "list", "--json", "--data-dir", server.dataDir])).stdout)).toEqual([]);
  });
});
