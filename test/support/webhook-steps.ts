/**
 * Shared steps of the webhook black-box tests (test/webhooks.test.ts, test/webhooks-admin.test.ts): settings for
 * fast or slow retries, creating a webhook for a receiver, reading deliveries and metrics, driving link events.
 */
import { expect } from "bun:test";
import { type TestServer, waitFor } from "./binary";
import type { WebhookReceiver } from "./webhook-receiver";

export const BROWSER = "Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0";
export const ALL_EVENTS = ["link.created", "link.updated", "link.deleted", "link.visited"];
/** The test receivers listen on 127.0.0.1, which a webhook may reach only when the operator allows it. */
export const LOOPBACK_RECEIVERS = { SHORTENER_WEBHOOK_ALLOW_LOOPBACK: "true" };
/** Fast retries, so that a test's failing attempts take milliseconds. */
export const FAST_RETRIES = {
  ...LOOPBACK_RECEIVERS,
  SHORTENER_WEBHOOK_RETRY_BASE: "20ms",
  SHORTENER_WEBHOOK_RETRY_MAX: "100ms",
  SHORTENER_VISIT_FLUSH_INTERVAL: "50ms",
};
/** Retries spaced so that a down receiver takes a minute to exhaust the attempts (none may die mid-test). */
export const SLOW_RETRIES = {
  ...LOOPBACK_RECEIVERS,
  SHORTENER_WEBHOOK_RETRY_BASE: "200ms",
  SHORTENER_WEBHOOK_RETRY_MAX: "1s",
  SHORTENER_WEBHOOK_MAX_ATTEMPTS: "100",
  SHORTENER_VISIT_FLUSH_INTERVAL: "50ms",
};

export async function createWebhook(server: TestServer, receiver: WebhookReceiver, events = ALL_EVENTS): Promise<string> {
  const response = await server.api("/rest/v3/webhooks", { method: "POST", body: JSON.stringify({ url: receiver.url, events }) });
  expect(response.status).toBe(201);
  const created = (await response.json()) as { id: string; secret: string };
  receiver.secret = created.secret;
  return created.id;
}

export async function deliveries(server: TestServer, webhookId: string, query = ""): Promise<Record<string, unknown>[]> {
  const response = await server.api(`/rest/v3/webhooks/${webhookId}/deliveries?itemsPerPage=500${query}`);
  expect(response.status).toBe(200);
  return ((await response.json()) as { deliveries: { data: Record<string, unknown>[] } }).deliveries.data;
}

/**
 * Per link: created, updated, two visits (enqueued before the deletion: the test waits for them), and for the
 * links listed in `deleted`, deleted. Returns the event types each link should receive, in order.
 */
export async function driveLinks(
  server: TestServer,
  webhookId: string,
  codes: string[],
  deleted: string[],
): Promise<Map<string, string[]>> {
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
export function sentInOrderPerLink(receiver: WebhookReceiver): string[] {
  const problems: string[] = [];
  const byLink = new Map<string, string[]>();
  for (const r of receiver.accepted) byLink.set(r.link, [...(byLink.get(r.link) ?? []), r.id]);
  for (const [link, ids] of byLink) {
    for (let i = 1; i < ids.length; i++) {
      const acceptedPrevious = receiver.attempts.find((a) => a.id === ids[i - 1] && a.status === 204)?.seq ?? Number.POSITIVE_INFINITY;
      const firstTry = receiver.attempts.find((a) => a.id === ids[i])?.seq ?? 0;
      if (firstTry < acceptedPrevious) problems.push(`${link}: event ${i} was tried before event ${i - 1} was accepted`);
    }
  }
  return problems;
}
