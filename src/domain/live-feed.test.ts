import { describe, expect, test } from "bun:test";
import { AppError } from "../errors";
import { LiveFeed, type LiveFeedOptions } from "./live-feed";

const HOUR = 3_600_000;
const decoder = new TextDecoder();

function feed(options: Partial<LiveFeedOptions> = {}): LiveFeed {
  return new LiveFeed({ maxSubscribers: 10, maxQueuedBytes: 64 * 1024, keepAliveMs: 60_000, ...options });
}

/** Reads a stream until `until` holds for what arrived, or the stream ends, within a deadline. */
async function readUntil(reader: ReadableStreamDefaultReader<Uint8Array>, until: (text: string) => boolean, timeoutMs = 2_000) {
  let text = "";
  const deadline = Date.now() + timeoutMs;
  for (let i = 0; i < 10_000 && !until(text); i++) {
    const left = deadline - Date.now();
    if (left <= 0) throw new Error(`timed out; got ${JSON.stringify(text)}`);
    const next = await Promise.race([reader.read(), Bun.sleep(left).then(() => "timeout" as const)]);
    if (next === "timeout") throw new Error(`timed out; got ${JSON.stringify(text)}`);
    if (next.done) return { text, done: true };
    text += decoder.decode(next.value);
  }
  return { text, done: false };
}

const events = (text: string) => [...text.matchAll(/^data: (.*)$/gm)].map((m) => m[1]);

describe("LiveFeed", () => {
  test("sends an event only to subscribers of its exact topic, as id and data lines", async () => {
    const hub = feed();
    const visits = hub.subscribe(["t/visits"], Date.now() + HOUR).getReader();
    const links = hub.subscribe(["t/links"], Date.now() + HOUR).getReader();
    expect(hub.publish([{ topic: "t/visits", data: '{"n":1}' }])).toBe(1);
    expect(hub.publish([{ topic: "t/links", data: '{"n":2}' }])).toBe(1);
    const got = await readUntil(visits, (t) => t.includes('"n":1'));
    expect(got.text).toMatch(/^:\n\nid: urn:uuid:[0-9a-f-]{36}\ndata: \{"n":1\}\n\n$/);
    const other = await readUntil(links, (t) => t.includes('"n":2'));
    expect(events(other.text)).toEqual(['{"n":2}']);
  });

  test("a subscriber to * gets every topic, once per event", async () => {
    const hub = feed();
    const all = hub.subscribe(["*", "t/a"], Date.now() + HOUR).getReader();
    hub.publish([{ topic: "t/a", data: "1" }]);
    hub.publish([{ topic: "t/b", data: "2" }]);
    const got = await readUntil(all, (t) => events(t).length >= 2);
    expect(events(got.text)).toEqual(["1", "2"]);
  });

  test("wants a topic only while someone is subscribed to it, and publishes nothing otherwise", async () => {
    const hub = feed();
    expect(hub.idle).toBe(true);
    expect(hub.wants("t/a")).toBe(false);
    expect(hub.publish([{ topic: "t/a", data: "x" }])).toBe(0);
    const reader = hub.subscribe(["t/a"], Date.now() + HOUR).getReader();
    expect(hub.wants("t/a")).toBe(true);
    expect(hub.wants("t/b")).toBe(false);
    await reader.cancel();
    expect(hub.wants("t/a")).toBe(false);
    expect(hub.stats()).toEqual({ subscribers: 0, dropped: 0 });
  });

  test("refuses subscribers past the maximum with a 503 problem, and is off at 0", () => {
    const hub = feed({ maxSubscribers: 1 });
    hub.subscribe(["t"], Date.now() + HOUR);
    let refused: unknown;
    try {
      hub.subscribe(["t"], Date.now() + HOUR);
    } catch (error) {
      refused = error;
    }
    expect(refused).toBeInstanceOf(AppError);
    expect((refused as AppError).status).toBe(503);
    expect((refused as AppError).headers["Retry-After"]).toBeDefined();
    expect(feed({ maxSubscribers: 0 }).enabled).toBe(false);
  });

  test("drops a subscriber that does not read once it holds more than its limit, while a reading one keeps receiving", async () => {
    const hub = feed({ maxQueuedBytes: 4096 });
    const stuck = hub.subscribe(["t"], Date.now() + HOUR);
    const reader = hub.subscribe(["t"], Date.now() + HOUR).getReader();
    const payload = "x".repeat(1000);
    let deliveredToReader = 0;
    for (let i = 0; i < 20; i++) {
      hub.publish([{ topic: "t", data: payload }]);
      const got = await readUntil(reader, (t) => events(t).length >= 1);
      deliveredToReader += events(got.text).length;
    }
    expect(deliveredToReader).toBe(20);
    expect(hub.stats()).toEqual({ subscribers: 1, dropped: 1 });
    // The dropped stream is errored: its queue is gone.
    await expect(stuck.getReader().read()).rejects.toBeUndefined();
  });

  test("a batch larger than the limit still reaches a subscriber that keeps up", async () => {
    const hub = feed({ maxQueuedBytes: 4096 });
    const reader = hub.subscribe(["t"], Date.now() + HOUR).getReader();
    const batch = Array.from({ length: 20 }, (_, i) => ({ topic: "t", data: `${i}:${"x".repeat(1000)}` }));
    for (let round = 0; round < 3; round++) {
      expect(hub.publish(batch)).toBe(20);
      const got = await readUntil(reader, (t) => events(t).length >= 20);
      expect(events(got.text).map((e) => e?.split(":")[0])).toEqual(batch.map((_, i) => String(i)));
    }
    expect(hub.stats()).toEqual({ subscribers: 1, dropped: 0 });
  });

  test("sends a keep-alive comment on idle streams", async () => {
    const hub = feed({ keepAliveMs: 20 });
    const reader = hub.subscribe(["t"], Date.now() + HOUR).getReader();
    const got = await readUntil(reader, (t) => t === ":\n\n:\n\n");
    expect(got.text).toBe(":\n\n:\n\n");
    await reader.cancel();
  });

  test("ends a stream when its token expires", async () => {
    const hub = feed({ keepAliveMs: 10 });
    const reader = hub.subscribe(["t"], Date.now() + 50).getReader();
    const got = await readUntil(reader, () => false);
    expect(got.done).toBe(true);
    expect(hub.stats().subscribers).toBe(0);
  });

  test("ends a stream at the first keep-alive where it is no longer authorized", async () => {
    const hub = feed({ keepAliveMs: 10 });
    let authorized = true;
    const reader = hub.subscribe(["t"], Date.now() + HOUR, () => authorized).getReader();
    await readUntil(reader, (t) => t.length > 3); // a keep-alive went out while authorized
    authorized = false;
    expect((await readUntil(reader, () => false)).done).toBe(true);
    expect(hub.stats().subscribers).toBe(0);
  });

  test("close ends every stream and refuses new subscribers", async () => {
    const hub = feed();
    const reader = hub.subscribe(["t"], Date.now() + HOUR).getReader();
    await readUntil(reader, (t) => t === ":\n\n");
    hub.close();
    expect((await readUntil(reader, () => false)).done).toBe(true);
    expect(() => hub.subscribe(["t"], Date.now() + HOUR)).toThrow(AppError);
  });
});
