import { Database } from "bun:sqlite";
import { describe, expect, test } from "bun:test";
import { scratchDatabases } from "../../test/support/scratch-database";
import { writeTransaction } from "../storage/database";
import { WebhookStore } from "../storage/webhook-store";
import type { LinkEvent } from "./link-events";
import type { ShortUrl } from "./short-urls";
import type { Visit } from "./visit-buffer";
import { DEFAULT_PRIVACY } from "./visit-recorder";
import { WebhookOutbox } from "./webhooks-outbox";

const databases = scratchDatabases("webhooks-outbox-");

const LINK: ShortUrl = {
  id: 4,
  shortCode: "abc",
  domain: null,
  longUrl: "https://example.com/",
  title: null,
  crawlable: false,
  forwardQuery: true,
  redirectStatus: null,
  validSince: null,
  validUntil: null,
  maxVisits: null,
  createdAt: 0,
  visitsTotal: 0,
  visitsBots: 0,
  tags: [],
  hasRedirectRules: false,
  passwordProtected: false,
};
const event = (type: LinkEvent["type"]): LinkEvent => ({ type, shortUrl: LINK, at: Date.UTC(2026, 11, 3) });
const visit = (linkId: number | null): Visit => ({
  link: linkId === null ? null : { id: linkId, shortCode: "abc", domain: "" },
  orphanType: linkId === null ? "regular_404" : null,
  at: Date.UTC(2026, 11, 3),
  bot: false,
  referer: "https://ref.example/",
  userAgent: "Mozilla/5.0",
  ip: "203.0.113.9",
  visitedUrl: "https://s.example/abc",
  redirectUrl: linkId === null ? null : "https://example.com/",
});

function setup(privacy = DEFAULT_PRIVACY) {
  const { db, path } = databases.open();
  const store = new WebhookStore(db);
  let woken = 0;
  const outbox = new WebhookOutbox(store, {
    linkJson: (s) => ({ shortCode: s.shortCode, domain: s.domain }),
    shortUrlOf: (code) => `https://s.example/${code}`,
    privacy,
    onEnqueued: () => woken++,
  });
  const rows = () =>
    db.query<{ event_type: string; link_id: number; payload: string }, []>("SELECT * FROM webhook_outbox ORDER BY id").all();
  return { db, path, store, outbox, rows, woken: () => woken };
}

describe("WebhookOutbox", () => {
  test("with no webhook, events and visits write nothing and wake no one", () => {
    const { db, outbox, rows, woken } = setup();
    writeTransaction(db, () => {
      outbox.inTransaction(event("link.created"));
      outbox.write([visit(4), visit(null)]);
    });
    outbox.afterCommit();
    outbox.committed();
    expect(rows()).toEqual([]);
    expect(woken()).toBe(0);
  });

  test("writes one row per subscribed webhook and event, none for orphan visits, and wakes the dispatcher after the commit", () => {
    const { db, store, outbox, rows, woken } = setup();
    const common = { name: null, url: "https://r.example/", secret: "whsec_c2VjcmV0", created_at: 0 };
    store.insertWebhook({ ...common, events: "link.created,link.visited" });
    store.insertWebhook({ ...common, events: "link.visited" });
    outbox.invalidate();
    writeTransaction(db, () => {
      outbox.inTransaction(event("link.created"));
      outbox.inTransaction(event("link.deleted"));
      outbox.write([visit(4), visit(null)]);
    });
    expect(woken()).toBe(0);
    outbox.committed();
    expect(woken()).toBe(1);
    expect(rows().map((r) => [r.event_type, r.link_id])).toEqual([
      ["link.created", 4],
      ["link.visited", 4],
      ["link.visited", 4],
    ]);
    const created = JSON.parse(rows()[0]?.payload as string);
    expect(created).toEqual({
      type: "link.created",
      timestamp: "2026-12-03T00:00:00.000Z",
      data: { shortUrl: { shortCode: "abc", domain: null } },
    });
    const visited = JSON.parse(rows()[1]?.payload as string);
    expect(visited.data.visit).toMatchObject({
      referer: "https://ref.example/",
      userAgent: "Mozilla/5.0",
      date: "2026-12-03T00:00:00+00:00",
    });
    expect(rows()[1]?.payload).not.toContain("203.0.113");
  });

  test("a webhook created or deleted by another process (the CLI) is noticed at the next event", () => {
    const { db, path, outbox, rows } = setup();
    const other = databases.closeLater(new Database(path));
    const otherStore = new WebhookStore(other);
    writeTransaction(db, () => outbox.inTransaction(event("link.created")));
    expect(rows()).toEqual([]);
    const id = otherStore.insertWebhook({
      name: null,
      url: "https://r.example/",
      secret: "whsec_c2VjcmV0",
      events: "link.created",
      created_at: 0,
    });
    writeTransaction(db, () => outbox.inTransaction(event("link.created")));
    expect(rows()).toHaveLength(1);
    other.exec("PRAGMA foreign_keys = ON");
    otherStore.deleteWebhook(id);
    writeTransaction(db, () => outbox.inTransaction(event("link.created")));
    expect(rows()).toEqual([]);
  });

  test("leaves out the referrer and user agent the privacy switches keep out of the visits tables", () => {
    const { db, store, outbox, rows } = setup({ ...DEFAULT_PRIVACY, trackReferrer: false, trackUserAgent: false });
    store.insertWebhook({ name: null, url: "https://r.example/", secret: "whsec_c2VjcmV0", events: "link.visited", created_at: 0 });
    outbox.invalidate();
    writeTransaction(db, () => outbox.write([visit(4)]));
    const payload = rows()[0]?.payload as string;
    expect(JSON.parse(payload).data.visit).toMatchObject({ referer: "", userAgent: "" });
    expect(payload).not.toContain("ref.example");
    expect(payload).not.toContain("Mozilla");
  });
});
