/**
 * Webhook delivery against the compiled binary: a receiver on loopback (test/support/webhook-receiver.ts) verifies
 * every signature with the official standardwebhooks library and deduplicates on webhook-id. Each link's events
 * must arrive exactly once by id and in order, through failing first attempts, a SIGTERM with events still
 * failing, and a SIGKILL between the receiver's acceptance and the server's record of it; a 410 turns a webhook off.
 */
import { describe, expect, test } from "bun:test";
import { rmSync } from "node:fs";
import { runCli, startServer, TestServer, tempDir, waitFor } from "./support/binary";
import { testCertificates } from "./support/test-certificates";
import { WebhookReceiver } from "./support/webhook-receiver";
import { BROWSER, createWebhook, deliveries, driveLinks, FAST_RETRIES, SLOW_RETRIES, sentInOrderPerLink } from "./support/webhook-steps";

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

    await waitFor("the outbox drained", async () => (await server.metrics()).get("shortener_webhook_outbox_backlog") === 0);
    const metrics = await server.metrics();
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
      await waitFor("the outbox drained", async () => (await third.metrics()).get("shortener_webhook_outbox_backlog") === 0);
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
    expect(await (await server.api(`/rest/v3/webhooks/${webhookId}`)).json()).toMatchObject({ deliveriesSummary: { pending: 0, dead: 1 } });
    const metrics = await server.metrics();
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
    await waitFor("no dead letter left", async () => (await server.metrics()).get("shortener_webhook_dead_letters") === 0);

    const again = await server.api(`/rest/v3/webhooks/${webhookId}/deliveries/${dead?.id}/retry`, { method: "POST" });
    expect(again.status).toBe(409);
    expect(await again.json()).toMatchObject({ type: "https://shlink.io/api/error/webhook-delivery-not-dead", state: "delivered" });
    const unknown = await server.api(`/rest/v3/webhooks/${webhookId}/deliveries/999999/retry`, { method: "POST" });
    expect(unknown.status).toBe(404);
  }, 60_000);
});

describe("https receivers", () => {
  test("a receiver named by its host gets its deliveries over TLS checked for that name; a wrong certificate is refused", async () => {
    using certificates = testCertificates(["localhost", "elsewhere.example"]);
    using receiver = new WebhookReceiver({ name: "localhost", ...certificates.pair("localhost") });
    // Listens where `localhost` resolves, with a certificate for another name.
    using impostor = new WebhookReceiver({ name: "localhost", ...certificates.pair("elsewhere.example") });
    await using server = await startServer({
      env: { ...FAST_RETRIES, SHORTENER_WEBHOOK_MAX_ATTEMPTS: "1", NODE_EXTRA_CA_CERTS: certificates.caFile },
    });
    const webhookId = await createWebhook(server, receiver, ["link.created"]);
    const impostorId = await createWebhook(server, impostor, ["link.created"]);
    for (const code of ["tls-1", "tls-2"]) {
      await server.api("/rest/v3/short-urls", {
        method: "POST",
        body: JSON.stringify({ longUrl: `https://example.com/${code}`, customSlug: code }),
      });
    }
    await waitFor("both accepted", () => receiver.accepted.length === 2);
    expect(receiver.attempts.map((a) => a.verified)).toEqual([true, true]);
    // The node connects to the address it looked up, and sends the URL's host in Host as a request by name would.
    expect(receiver.hosts).toEqual(Array(2).fill(`localhost:${receiver.server.port}`));
    await waitFor("the impostor's deliveries dead", async () => (await deliveries(server, impostorId, "&state=dead")).length === 2);
    const dead = await deliveries(server, impostorId, "&state=dead");
    expect(dead.map((d) => d.lastError)).toEqual(Array(2).fill(expect.stringContaining("localhost")));
    expect(dead.map((d) => d.lastError)).toEqual(Array(2).fill(expect.stringMatching(/altnames/i)));
    expect(impostor.attempts).toEqual([]);
    expect(await deliveries(server, webhookId, "&state=delivered")).toHaveLength(2);
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
