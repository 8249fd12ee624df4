/**
 * The real-time feed: a publish-subscribe hub of Server-Sent Events streams, filtered by topic. Publishers hand it
 * updates after their changes commit; each subscriber gets the updates of its topics as SSE events.
 *
 * Memory is bounded: updates come in batches (one per visit flush or link write), and a subscriber whose stream
 * still holds more than `maxQueuedBytes` that its connection has not taken when the next batch comes (it stopped
 * reading, or reads slower than events arrive) is dropped, its queue discarded and its connection closed, rather
 * than buffered forever; the client may reconnect. So a stream holds at most that plus one batch, whose events are
 * encoded once and shared by every subscriber. With no subscribers, `wants` is false for every topic and publishers
 * do no work.
 */
import { unavailable } from "../errors";

export interface LiveFeedOptions {
  /** 0 turns the feed off. */
  maxSubscribers: number;
  /** Bytes a subscriber's stream may still hold when a batch comes; over that it is dropped. */
  maxQueuedBytes: number;
  /** A comment is sent this often, so proxies and clients see a live connection. */
  keepAliveMs: number;
}

/** One update: its data (JSON) goes to the subscribers of its topic as one event. */
export interface LiveUpdate {
  topic: string;
  data: string;
}

export interface LiveFeedStats {
  subscribers: number;
  /** Subscribers dropped for not keeping up, since start. */
  dropped: number;
}

interface Subscriber {
  controller: ReadableStreamDefaultController<Uint8Array>;
  /** Empty when subscribed to every topic (`*`). */
  topics: ReadonlySet<string>;
  /** The same topics as one string: subscribers with equal keys share one encoded batch. */
  key: string;
  /** Epoch ms when its token expires: the stream is ended then, and the client must get a new token. */
  expiresAt: number;
  /** Asked at each keep-alive: false (or a throw) ends the stream, as when the grant behind it was revoked. */
  authorized: () => boolean;
}

/**
 * What a node runs with: a comment every 15 s (as Mercure hubs do); a subscriber dropped when it has not taken
 * 512 KiB (beyond what the kernel's socket buffers hold) by the next batch, about a second later at most.
 */
export const LIVE_FEED_DEFAULTS = { maxQueuedBytes: 512 * 1024, keepAliveMs: 15_000 } as const;

/** The reserved Mercure topic that matches every topic. */
export const ANY_TOPIC = "*";

const encoder = new TextEncoder();
const KEEP_ALIVE = encoder.encode(":\n\n");

/** One SSE event: a unique `id` (a URN, as Mercure hubs generate) and the data on one line. */
function frame(data: string): Uint8Array {
  // JSON never holds a raw line break, but split anyway so any text stays one event.
  const lines = data.split(/\r\n|\r|\n/).map((line) => `data: ${line}\n`);
  return encoder.encode(`id: urn:uuid:${crypto.randomUUID()}\n${lines.join("")}\n`);
}

function stillAuthorized(subscriber: Subscriber): boolean {
  try {
    return subscriber.authorized();
  } catch {
    return false;
  }
}

function concat(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.byteLength;
  }
  return out;
}

export class LiveFeed {
  readonly #subscribers = new Set<Subscriber>();
  /** Subscribers by exact topic; those subscribed to `*` are in #everything instead. */
  readonly #byTopic = new Map<string, Set<Subscriber>>();
  readonly #everything = new Set<Subscriber>();
  #dropped = 0;
  #closed = false;
  #keepAlive: Timer | undefined;

  constructor(private readonly options: Readonly<LiveFeedOptions>) {}

  get enabled(): boolean {
    return this.options.maxSubscribers > 0;
  }

  /** True when someone would receive an update on `topic`: publishers skip building payloads otherwise. */
  wants(topic: string): boolean {
    return this.#subscribers.size > 0 && (this.#everything.size > 0 || this.#byTopic.has(topic));
  }

  /** True when nobody is subscribed. */
  get idle(): boolean {
    return this.#subscribers.size === 0;
  }

  stats(): LiveFeedStats {
    return { subscribers: this.#subscribers.size, dropped: this.#dropped };
  }

  /**
   * A new subscriber's event stream, for the given exact topics (or `*`), ending at `expiresAt` or at the first
   * keep-alive where `authorized` says no. Throws a 503 problem when the feed is full or shut down.
   */
  subscribe(topics: readonly string[], expiresAt: number, authorized: () => boolean = () => true): ReadableStream<Uint8Array> {
    if (this.#closed) throw unavailable("This node is shutting down; subscribe again to reach another node.", 1);
    if (this.#subscribers.size >= this.options.maxSubscribers) {
      throw unavailable(`The real-time feed already has its maximum of ${this.options.maxSubscribers} subscribers; retry later.`, 30);
    }
    let subscriber: Subscriber | undefined;
    const stream = new ReadableStream<Uint8Array>(
      {
        start: (controller) => {
          const everything = topics.includes(ANY_TOPIC);
          const set = new Set(everything ? [] : topics);
          subscriber = { controller, topics: set, key: everything ? ANY_TOPIC : [...set].sort().join("\n"), expiresAt, authorized };
          this.#add(subscriber);
          // A first comment sends the headers and tells the client the subscription is live.
          controller.enqueue(KEEP_ALIVE);
        },
        cancel: () => {
          if (subscriber !== undefined) this.#remove(subscriber);
        },
      },
      { highWaterMark: this.options.maxQueuedBytes, size: (chunk) => chunk?.byteLength ?? 0 },
    );
    return stream;
  }

  /**
   * Sends each update as one event to the subscribers of its topic, in order, and returns how many events were
   * queued. A recipient still holding more than `maxQueuedBytes` from earlier batches is dropped instead. Each
   * recipient gets its share of the batch as one chunk, encoded once for all recipients of the same topics.
   */
  publish(updates: readonly LiveUpdate[]): number {
    const events: { topic: string; bytes: Uint8Array }[] = [];
    const recipients = new Map<string, Subscriber[]>();
    const seen = new Set<Subscriber>();
    const add = (subscriber: Subscriber) => {
      if (seen.has(subscriber)) return;
      seen.add(subscriber);
      const group = recipients.get(subscriber.key);
      if (group === undefined) recipients.set(subscriber.key, [subscriber]);
      else group.push(subscriber);
    };
    for (const { topic, data } of updates) {
      if (!this.wants(topic)) continue;
      events.push({ topic, bytes: frame(data) });
      for (const subscriber of this.#everything) add(subscriber);
      for (const subscriber of this.#byTopic.get(topic) ?? []) add(subscriber);
    }
    let sent = 0;
    for (const group of recipients.values()) {
      const topics = (group[0] as Subscriber).topics;
      const share = topics.size === 0 ? events : events.filter((e) => topics.has(e.topic));
      const chunk = share.length === 1 ? (share[0] as { bytes: Uint8Array }).bytes : concat(share.map((e) => e.bytes));
      for (const subscriber of group) {
        if (this.#dropIfBehind(subscriber)) continue;
        subscriber.controller.enqueue(chunk);
        sent += share.length;
      }
    }
    return sent;
  }

  /** Ends every stream and refuses new subscribers (drain): a stream with nothing queued ends cleanly. */
  close(): void {
    this.#closed = true;
    for (const subscriber of [...this.#subscribers]) this.#end(subscriber);
  }

  #add(subscriber: Subscriber): void {
    this.#subscribers.add(subscriber);
    if (subscriber.topics.size === 0) this.#everything.add(subscriber);
    for (const topic of subscriber.topics) {
      let set = this.#byTopic.get(topic);
      if (set === undefined) {
        set = new Set();
        this.#byTopic.set(topic, set);
      }
      set.add(subscriber);
    }
    if (this.#keepAlive === undefined) {
      this.#keepAlive = setInterval(() => this.#tick(), this.options.keepAliveMs);
      this.#keepAlive.unref();
    }
  }

  #remove(subscriber: Subscriber): boolean {
    if (!this.#subscribers.delete(subscriber)) return false;
    this.#everything.delete(subscriber);
    for (const topic of subscriber.topics) {
      const set = this.#byTopic.get(topic);
      set?.delete(subscriber);
      if (set?.size === 0) this.#byTopic.delete(topic);
    }
    if (this.#subscribers.size === 0) {
      clearInterval(this.#keepAlive);
      this.#keepAlive = undefined;
    }
    return true;
  }

  /** Drops a subscriber whose stream holds more than it may (its connection is not taking what it is sent). */
  #dropIfBehind(subscriber: Subscriber): boolean {
    if ((subscriber.controller.desiredSize ?? 0) >= 0) return false;
    if (this.#remove(subscriber)) {
      this.#dropped++;
      // Erroring (with no reason, which Bun does not log) discards the queue and closes the connection.
      subscriber.controller.error(undefined);
    }
    return true;
  }

  /** Ends a stream: cleanly when its queue is empty, else by discarding the queue (a stuck client must not hold a drain). */
  #end(subscriber: Subscriber): void {
    if (!this.#remove(subscriber)) return;
    const controller = subscriber.controller;
    if (controller.desiredSize === this.options.maxQueuedBytes) controller.close();
    else controller.error(undefined);
  }

  #tick(): void {
    const now = Date.now();
    for (const subscriber of [...this.#subscribers]) {
      if (subscriber.expiresAt <= now || !stillAuthorized(subscriber)) this.#end(subscriber);
      else if (!this.#dropIfBehind(subscriber)) subscriber.controller.enqueue(KEEP_ALIVE);
    }
  }
}
