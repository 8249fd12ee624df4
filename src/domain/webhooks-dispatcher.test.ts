import { Database } from "bun:sqlite";
import { describe, expect, test } from "bun:test";
import { Webhook } from "standardwebhooks";
import { scratchDatabases } from "../../test/support/scratch-database";
import { dispatcher, HeldReceiver, outbox, until } from "../../test/support/webhook-outbox";
import { writeTransaction } from "../storage/database";
import { WebhookDispatcher } from "./webhooks-dispatcher";
import { generateSecret } from "./webhooks-signature";

const databases = scratchDatabases("webhooks-dispatcher-");
const setup = () => outbox(databases);

describe("WebhookDispatcher", () => {
  test("sends only the head of each link's queue: a link's next event waits, other links go in parallel", async () => {
    const { store, enqueue } = setup();
    const [a1, a2, a3] = [enqueue(1, "a1"), enqueue(1, "a2"), enqueue(1, "a3")];
    const [b1, b2] = [enqueue(2, "b1"), enqueue(2, "b2")];
    const receiver = new HeldReceiver();
    const d = dispatcher(store, receiver);
    d.start();
    try {
      await until("both heads sent", () => receiver.requests.length === 2);
      expect(receiver.requests.map((r) => r.id).sort()).toEqual([a1, b1]);
      receiver.requests.find((r) => r.id === a1)?.settle(200);
      await until("a2 sent", () => receiver.requests.some((r) => r.id === a2));
      expect(receiver.requests.some((r) => r.id === a3 || r.id === b2)).toBe(false);
      receiver.requests.find((r) => r.id === a2)?.settle(204);
      receiver.requests.find((r) => r.id === b1)?.settle(200);
      await until("a3 and b2 sent", () => receiver.requests.some((r) => r.id === a3) && receiver.requests.some((r) => r.id === b2));
      for (const r of receiver.requests) r.settle(200);
      await until("the outbox drained", () => store.backlog() === 0);
    } finally {
      await d.stop();
    }
  });

  test("a result that meets another process's write lock is kept and written once the lock goes; nothing is sent twice", async () => {
    const { store, webhookId, enqueue, path } = setup();
    const first = enqueue(3, "first");
    const second = enqueue(3, "second");
    const receiver = new HeldReceiver();
    const errors: unknown[] = [];
    let cleanTicks = 0;
    // No patience: every poll under the lock is told as an error.
    const d = dispatcher(store, receiver, 3, { onError: (error) => errors.push(error), onTick: () => cleanTicks++, lockPatienceMs: 0 });
    d.start();
    const other = new Database(path);
    try {
      await until("the head sent", () => receiver.requests.length === 1);
      other.exec("BEGIN IMMEDIATE");
      receiver.requests[0]?.settle(200);
      // Several polls (every 20 ms) meet the lock: the delivered head still looks due in the table meanwhile.
      await until("a few tries under the lock", () => errors.length >= 3);
      expect(String(errors[0])).toContain("write lock");
      expect(receiver.requests.map((r) => r.id)).toEqual([first]);
      const ticksUnderLock = cleanTicks;
      const errorsUnderLock = errors.length;
      other.exec("ROLLBACK");
      // The first look after the lock goes is a clean one again (the log's streak ends there).
      await until("a clean look at the outbox", () => cleanTicks > ticksUnderLock);
      expect(errors.length - errorsUnderLock).toBeLessThanOrEqual(1);
      await until("the next event", () => receiver.requests.length === 2);
      expect(receiver.requests.map((r) => r.id)).toEqual([first, second]);
      receiver.requests[1]?.settle(200);
      await until("delivered", () => store.backlog() === 0);
      expect(store.deliveries(webhookId, "delivered", 10).map((r) => r.message_id)).toEqual([second, first]);
    } finally {
      if (other.inTransaction) other.exec("ROLLBACK");
      other.close();
      await d.stop();
    }
  });

  test("a write lock shorter than lockPatienceMs (Litestream's checkpoints) is no error; a longer one is", async () => {
    const { store, enqueue, path } = setup();
    const first = enqueue(4, "first");
    const second = enqueue(4, "second");
    const receiver = new HeldReceiver();
    const errors: unknown[] = [];
    const d = dispatcher(store, receiver, 3, { onError: (error) => errors.push(error), lockPatienceMs: 400 });
    d.start();
    const other = new Database(path);
    try {
      await until("the head sent", () => receiver.requests.length === 1);
      other.exec("BEGIN IMMEDIATE");
      const locked = performance.now();
      receiver.requests[0]?.settle(200);
      // Polls every 20 ms meet the lock: quietly, until it has been held for the patience's 400 ms.
      await until("the lock told as an error", () => errors.length > 0);
      expect(performance.now() - locked).toBeGreaterThanOrEqual(395); // Date.now() (the dispatcher's clock) ticks in whole ms
      expect(String(errors[0])).toContain("write lock");
      expect(receiver.requests.map((r) => r.id)).toEqual([first]);
      other.exec("ROLLBACK");
      await until("the next event", () => receiver.requests.length === 2);
      expect(receiver.requests.map((r) => r.id)).toEqual([first, second]);
      // A short lock after it waits quietly again: the patience starts over once results are written.
      other.exec("BEGIN IMMEDIATE");
      const told = errors.length;
      receiver.requests[1]?.settle(200);
      await Bun.sleep(100);
      other.exec("ROLLBACK");
      await until("delivered", () => store.backlog() === 0);
      expect(errors.length).toBe(told);
    } finally {
      if (other.inTransaction) other.exec("ROLLBACK");
      other.close();
      await d.stop();
    }
  });

  test("retries a failure under the same message id, is dead after the last attempt, then sends the link's next event", async () => {
    const { store, webhookId, enqueue } = setup();
    const first = enqueue(7, "first");
    const second = enqueue(7, "second");
    const receiver = new HeldReceiver();
    const lookups: string[] = [];
    const resolve = async (host: string) => {
      lookups.push(host);
      return ["192.0.2.10"];
    };
    const d = dispatcher(store, receiver, 3, { resolve });
    d.start();
    try {
      for (let attempt = 1; attempt <= 3; attempt++) {
        await until(`attempt ${attempt}`, () => receiver.requests.length === attempt);
        expect(receiver.requests[attempt - 1]?.id).toBe(first);
        receiver.requests[attempt - 1]?.settle(503);
      }
      await until("the next event", () => receiver.requests.length === 4);
      expect(receiver.requests[3]?.id).toBe(second);
      receiver.requests[3]?.settle(200);
      await until("delivered", () => store.backlog() === 0);
      const [dead] = store.deliveries(webhookId, "dead", 10);
      expect(dead).toMatchObject({ message_id: first, attempts: 3, last_status: 503, last_error: "HTTP 503", next_attempt_at: null });
      expect(store.deadLetters()).toBe(1);
      // Four requests to one receiver, one lookup of its host (it is reused for 30 s, as fetch reuses its own).
      expect(lookups).toEqual(["receiver.test"]);
    } finally {
      await d.stop();
    }
  });

  test("a receiver whose name now resolves to this machine is not sent to: the attempt fails and says why", async () => {
    const { store, webhookId, enqueue } = setup();
    enqueue(9, "rebound");
    const receiver = new HeldReceiver();
    const d = dispatcher(store, receiver, 1, { resolve: async () => ["203.0.113.7", "127.0.0.1"] });
    d.start();
    try {
      await until("dead", () => store.deadLetters() === 1);
      expect(receiver.requests).toEqual([]);
      const [dead] = store.deliveries(webhookId, "dead", 10);
      expect(dead).toMatchObject({ message_id: "msg_rebound", last_status: null });
      expect(dead?.last_error).toBe(
        "refused: receiver.test resolves to 127.0.0.1, this machine or link-local; --webhook-allow-loopback allows it",
      );
    } finally {
      await d.stop();
    }
    // Allowed, the same resolution is sent to.
    enqueue(10, "allowed");
    const allowed = dispatcher(store, receiver, 1, { resolve: async () => ["127.0.0.1"], allowLoopback: true });
    allowed.start();
    try {
      await until("sent", () => receiver.requests.length === 1);
      receiver.requests[0]?.settle(200);
      await until("delivered", () => store.backlog() === 0);
    } finally {
      await allowed.stop();
    }
  });

  test("stop aborts requests in flight and leaves them pending; the next dispatcher resends them under the same id", async () => {
    const { store, enqueue } = setup();
    const id = enqueue(3, "held");
    const receiver = new HeldReceiver();
    const d = dispatcher(store, receiver);
    d.start();
    await until("sent", () => receiver.requests.length === 1);
    await d.stop();
    expect(receiver.requests[0]?.aborted).toBe(true);
    expect(store.backlog()).toBe(1);
    const next = dispatcher(store, receiver);
    next.start();
    try {
      await until("resent", () => receiver.requests.length === 2);
      expect(receiver.requests[1]?.id).toBe(id);
      receiver.requests[1]?.settle(200);
      await until("delivered", () => store.backlog() === 0);
    } finally {
      await next.stop();
    }
  });
});

describe("WebhookDispatcher failures", () => {
  test("a receiver that does not answer within the timeout fails the attempt; a redirect is a failure too", async () => {
    const { store, webhookId, enqueue } = setup();
    enqueue(1, "silent");
    enqueue(2, "moved");
    const silent = new HeldReceiver();
    const answers = ((url: string, init: RequestInit) => {
      const id = (init.headers as Record<string, string>)["webhook-id"];
      if (id === "msg_moved")
        return Promise.resolve(new Response(null, { status: 302, headers: { Location: "https://elsewhere.example/" } }));
      return silent.fetch(url, init);
    }) as unknown as typeof fetch;
    const d = new WebhookDispatcher(store, {
      maxAttempts: 1,
      backoff: { baseMs: 10, maxMs: 20 },
      timeoutMs: 50,
      userAgent: "test",
      fetch: answers,
      resolve: async () => ["192.0.2.10"],
    });
    d.start();
    try {
      await until("both dead", () => store.deadLetters() === 2);
      const dead = Object.fromEntries(store.deliveries(webhookId, "dead", 10).map((r) => [r.message_id, [r.last_status, r.last_error]]));
      expect(dead).toEqual({ msg_silent: [null, "timed out after 50 ms"], msg_moved: [302, "HTTP 302"] });
    } finally {
      await d.stop();
    }
  });
});

describe("WebhookDispatcher and 410 Gone", () => {
  test("turns the webhook off and keeps its delivery pending; turned on again, the same message is sent", async () => {
    const { store, webhookId, enqueue } = setup();
    const id = enqueue(1, "gone");
    const receiver = new HeldReceiver();
    const gone: number[] = [];
    const d = dispatcher(store, receiver, 5, { onWebhookGone: (webhook) => gone.push(webhook) });
    d.start();
    try {
      await until("sent", () => receiver.requests.length === 1);
      receiver.requests[0]?.settle(410);
      await until("turned off", () => store.webhook(webhookId)?.disabled === 1);
      expect(gone).toEqual([webhookId]);
      expect(store.deliveries(webhookId, "pending", 10)).toEqual([
        expect.objectContaining({ message_id: id, attempts: 1, last_status: 410 }),
      ]);
      // Off: a few polls go by without a request.
      const polls = Date.now() + 100;
      await until("100 ms of polling", () => Date.now() >= polls);
      expect(receiver.requests).toHaveLength(1);
      store.setDisabled(webhookId, false);
      d.wake();
      await until("sent again", () => receiver.requests.length === 2);
      expect(receiver.requests[1]?.id).toBe(id);
      receiver.requests[1]?.settle(200);
      await until("delivered", () => store.backlog() === 0);
    } finally {
      await d.stop();
    }
  });
});

describe("WebhookDispatcher and secret rotation", () => {
  test("signs with the current and the previous secret until the previous one's time is up, then with the current only", async () => {
    const { store, webhookId, enqueue } = setup();
    const first = store.webhook(webhookId)?.secret as string;
    const second = generateSecret();
    store.rotateSecret(webhookId, second, Date.now() + 60_000);
    enqueue(1, "overlap");
    const receiver = new HeldReceiver();
    const d = dispatcher(store, receiver);
    d.start();
    try {
      await until("sent", () => receiver.requests.length === 1);
      const [overlap] = receiver.requests;
      const headers = (request: typeof overlap) => ({
        "webhook-id": request?.id as string,
        "webhook-timestamp": String(Math.floor(Date.now() / 1000)),
        "webhook-signature": request?.signature as string,
      });
      expect(overlap?.signature.split(" ")).toHaveLength(2);
      expect(new Webhook(first).verify(overlap?.body as string, headers(overlap))).toEqual({ n: "overlap" });
      expect(new Webhook(second).verify(overlap?.body as string, headers(overlap))).toEqual({ n: "overlap" });
      overlap?.settle(200);

      store.rotateSecret(webhookId, generateSecret(), Date.now() - 1);
      enqueue(1, "after");
      await until("sent", () => receiver.requests.length === 2);
      expect(receiver.requests[1]?.signature.split(" ")).toHaveLength(1);
      expect(() => new Webhook(second).verify(receiver.requests[1]?.body as string, headers(receiver.requests[1]))).toThrow();
      receiver.requests[1]?.settle(200);
    } finally {
      await d.stop();
    }
  });
});

describe("WebhookDispatcher pruning", () => {
  test("another process's write lock is no failure when pruning: the rows go once it is let go", async () => {
    const { store, webhookId, enqueue, path } = setup();
    enqueue(1, "ok");
    const receiver = new HeldReceiver();
    const errors: unknown[] = [];
    let ticks = 0;
    const d = dispatcher(store, receiver, 1, { keepDeliveredMs: 1, onError: (error) => errors.push(error), onTick: () => ticks++ });
    d.start();
    const other = new Database(path);
    try {
      await until("sent", () => receiver.requests.length === 1);
      receiver.requests[0]?.settle(200);
      await until("delivered", () => store.backlog() === 0 && store.deliveries(webhookId, "delivered", 10).length === 1);
      // As Litestream's checkpoints do, for longer: past the first prune (a second after the start), polled every 20 ms.
      other.exec("BEGIN IMMEDIATE");
      const before = ticks;
      await until("1.4 s of clean ticks under the lock", () => ticks >= before + 70);
      expect(errors).toEqual([]);
      expect(store.deliveries(webhookId, "delivered", 10)).toHaveLength(1);
      other.exec("ROLLBACK");
      await until("the delivered row pruned", () => store.deliveries(webhookId, "delivered", 10).length === 0);
      expect(errors).toEqual([]);
    } finally {
      if (other.inTransaction) other.exec("ROLLBACK");
      other.close();
      await d.stop();
    }
  });

  test("deletes delivered rows once they are older than keepDeliveredMs, and keeps dead ones", async () => {
    const { store, webhookId, enqueue } = setup();
    enqueue(1, "ok");
    enqueue(2, "dead");
    const receiver = new HeldReceiver();
    const d = dispatcher(store, receiver, 1, { keepDeliveredMs: 1 });
    d.start();
    try {
      await until("both sent", () => receiver.requests.length === 2);
      for (const r of receiver.requests) r.settle(r.id === "msg_ok" ? 200 : 500);
      await until("nothing pending", () => store.backlog() === 0);
      await until("the delivered row pruned (within about a second)", () => store.deliveries(webhookId, "delivered", 10).length === 0);
      expect(store.deliveries(webhookId, null, 10).map((r) => [r.message_id, r.state])).toEqual([["msg_dead", "dead"]]);
    } finally {
      await d.stop();
    }
  });
});

describe("WebhookStore queues", () => {
  test("a dead delivery put back while its link has a head waits behind it, then goes before the later events", () => {
    const { db, store, webhookId, enqueue } = setup();
    enqueue(5, "one");
    enqueue(5, "two");
    enqueue(5, "three");
    const [one, two] = store.deliveries(webhookId, null, 10).reverse();
    const now = Date.now();
    store.recordAttempts(
      [{ id: one?.id as number, outcome: "dead", attempts: 3, status: 500, error: "HTTP 500", webhookId, linkId: 5 }],
      now,
    );
    expect(store.due(now, 10).map((d) => d.message_id)).toEqual(["msg_two"]);
    writeTransaction(db, () => store.requeue(webhookId, one?.id as number, now));
    // "two" is still the head (it may be in flight); "one" is next, before "three".
    expect(store.due(now, 10).map((d) => d.message_id)).toEqual(["msg_two"]);
    store.recordAttempts([{ id: two?.id as number, outcome: "delivered", status: 200, webhookId, linkId: 5 }], now);
    expect(store.due(now, 10).map((d) => d.message_id)).toEqual(["msg_one"]);
  });

  test("only the head of a queue is ever due, however long the queue", () => {
    const { store, enqueue } = setup();
    for (let i = 0; i < 50; i++) enqueue(9, `q${i}`);
    enqueue(10, "other");
    expect(store.due(Date.now(), 100).map((d) => d.message_id)).toEqual(["msg_q0", "msg_other"]);
    expect(store.backlog()).toBe(51);
    // The metrics count no further than their cap, so a scrape never counts a huge backlog on the event loop.
    expect(store.backlog(10)).toBe(10);
  });
});
