import { describe, expect, test } from "bun:test";
import { scratchDatabases } from "../../test/support/scratch-database";
import { AppError } from "../errors";
import { writeTransaction } from "../storage/database";
import { GroupCommit } from "../storage/group-commit";
import { WebhookStore } from "../storage/webhook-store";
import { parseWebhookEdit, parseWebhookInput, WebhookService } from "./webhooks";

const databases = scratchDatabases("webhooks-service-");

function setup() {
  const { db } = databases.open();
  const store = new WebhookStore(db);
  let changes = 0;
  const service = new WebhookService({ store, writes: new GroupCommit(db), onChange: () => changes++ });
  return { db, store, service, changes: () => changes };
}

/** The invalid-data fields a parse names, or [] when it passes. */
function invalidFields(parse: () => unknown): string[] {
  try {
    parse();
    return [];
  } catch (error) {
    if (error instanceof AppError) return error.extras.invalidElements as string[];
    throw error;
  }
}

const STRICT = { allowLoopback: false };

describe("webhook input", () => {
  test("accepts an http(s) URL and known events, in their canonical order, without duplicates", () => {
    expect(
      parseWebhookInput({ url: " https://h.example/in?x=1 ", events: ["link.visited", "link.created", "link.visited"] }, STRICT),
    ).toEqual({
      url: "https://h.example/in?x=1",
      events: ["link.created", "link.visited"],
      name: null,
    });
    expect(parseWebhookInput({ url: "http://10.0.0.5:8080/", events: "link.deleted, link.updated", name: " crm " }, STRICT)).toEqual({
      url: "http://10.0.0.5:8080/",
      events: ["link.updated", "link.deleted"],
      name: "crm",
    });
  });

  test.each([
    [{ url: "mailto:a@b.example", events: ["link.created"] }, ["url"]],
    [{ url: "https://h.example/#frag", events: ["link.created"] }, ["url"]],
    [{ url: `https://h.example/${"a".repeat(2050)}`, events: ["link.created"] }, ["url"]],
    [{ url: "https://h.example/", events: ["link.created", 4] }, ["events"]],
    [{ url: "https://h.example/", events: ["link.created"], name: "" }, ["name"]],
    [null, ["url", "events"]],
    [[], ["url", "events"]],
  ])("refuses %p naming %p", (body, fields) => {
    expect(invalidFields(() => parseWebhookInput(body, STRICT))).toEqual(fields);
  });

  test("refuses a URL naming this machine or a link-local address unless --webhook-allow-loopback, naming url", () => {
    for (const url of [
      "http://127.0.0.1:8081/control/drain",
      "http://localhost:2019/stop",
      "http://LOCALHOST./x",
      "http://api.localhost/x",
      "http://[::1]/x",
      "http://[::ffff:127.0.0.1]/x",
      "http://0.0.0.0:8080/",
      "http://2130706433/", // 127.0.0.1 as a number: the URL parser makes it the address
      "http://169.254.169.254/latest/meta-data/",
      "http://[fe80::1]/x",
    ]) {
      expect(
        invalidFields(() => parseWebhookInput({ url, events: ["link.created"] }, STRICT)),
        url,
      ).toEqual(["url"]);
      expect(parseWebhookInput({ url, events: ["link.created"] }, { allowLoopback: true }).url).toBe(new URL(url).href);
    }
    // Private networks are where internal receivers live: allowed.
    expect(parseWebhookInput({ url: "http://192.168.1.20/hook", events: ["link.created"] }, STRICT).url).toBe("http://192.168.1.20/hook");
  });

  test("an edit must say disabled true or false", () => {
    expect(parseWebhookEdit({ disabled: true })).toEqual({ disabled: true });
    expect(invalidFields(() => parseWebhookEdit({ disabled: "yes" }))).toEqual(["disabled"]);
    expect(invalidFields(() => parseWebhookEdit({}))).toEqual(["disabled"]);
  });
});

describe("WebhookService", () => {
  test("deleting a webhook with a long outbox removes every row, in batches, and the webhook", async () => {
    const { db, store, service, changes } = setup();
    const { webhook } = await service.create({ url: "https://h.example/", events: ["link.visited"], name: null }, null);
    const other = (await service.create({ url: "https://o.example/", events: ["link.visited"], name: null }, null)).webhook;
    writeTransaction(db, () => {
      for (let i = 0; i < 4500; i++) {
        for (const id of [webhook.id, other.id]) {
          store.enqueue({ webhook_id: id, message_id: `msg_${id}_${i}`, event_type: "link.visited", link_id: i % 7, payload: "{}" }, 0);
        }
      }
    });
    const before = changes();
    await service.delete(webhook.id, null);
    expect(db.query("SELECT webhook_id, count(*) AS n FROM webhook_outbox GROUP BY webhook_id").all()).toEqual([
      { webhook_id: other.id, n: 4500 },
    ]);
    expect(store.webhook(webhook.id)).toBeNull();
    // Turned off first (no new events), then gone: the outbox's cache hears of both.
    expect(changes() - before).toBe(2);
    await expect(service.delete(webhook.id, null)).rejects.toMatchObject({ status: 404, code: "webhook-not-found" });
  });

  test("a read-only key may not manage webhooks", async () => {
    const { service } = setup();
    const readOnly = { id: 1, name: "reader", role: "read-only" as const };
    expect(() => service.list(readOnly)).toThrow("Only admin API keys can manage webhooks.");
    await expect(service.create({ url: "https://h.example/", events: ["link.created"], name: null }, readOnly)).rejects.toMatchObject({
      status: 403,
    });
  });
});
