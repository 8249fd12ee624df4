/**
 * Sends the webhook outbox in the background of the server process. Each (webhook, link) queue sends its head
 * only, so a link's events arrive in order; different links go in parallel, up to `concurrency` requests. A 2xx
 * marks the head delivered; anything else (and a timeout) schedules a retry with exponential backoff and full
 * jitter, until the head is dead after `maxAttempts`. Every attempt of a message carries the same `webhook-id`:
 * nothing is written before sending, so a crash between a receiver's 2xx and the write only causes a resend
 * under the same id, which a receiver that deduplicates on it ignores. A 410 Gone turns the webhook off (the
 * Standard Webhooks advice): its deliveries wait until someone turns it on again.
 *
 * Nothing here blocks the event loop for long: requests are async, and the database work is a few small
 * statements per tick (the due heads, one transaction writing back every result that came in meanwhile).
 *
 * With tracing on, each attempt is a CLIENT span of a trace of its own (the event that queued it was answered long
 * before), and its W3C `traceparent` goes with the request, so a traced receiver continues that trace. The span
 * names the receiver's host, never its URL: a webhook URL often carries a token.
 */

import { propagation, ROOT_CONTEXT, type Span, SpanKind, SpanStatusCode, type Tracer, trace } from "@opentelemetry/api";
import { BUSY_TIMEOUT_MS } from "../storage/database";
import type { AttemptResult, DueDelivery, WebhookStore } from "../storage/webhook-store";
import { neverConnected, type Route, WebhookTargets } from "./webhook-targets";
import { type BackoffPolicy, retryAfterMs, retryDelayMs } from "./webhooks-backoff";
import { signedHeaders } from "./webhooks-signature";

export type DeliveryOutcome = "delivered" | "failed" | "dead";

export interface DispatcherOptions {
  maxAttempts: number;
  backoff: BackoffPolicy;
  timeoutMs: number;
  userAgent: string;
  /** Requests in flight at most (default 16). */
  concurrency?: number;
  /** The longest wait between two looks at the outbox when nothing wakes the dispatcher (default 1 s). */
  pollMs?: number;
  /** How long delivered rows are kept for the deliveries list (default a day). */
  keepDeliveredMs?: number;
  /** Told of every attempt: its outcome and how long the request took. */
  onAttempt?: (outcome: DeliveryOutcome, seconds: number) => void;
  /** Told when a receiver answered 410 Gone and its webhook was turned off. */
  onWebhookGone?: (webhookId: number, url: string) => void;
  /** Told of a database error in the loop (it carries on: the rows stay pending). */
  onError?: (error: unknown) => void;
  /**
   * How long results may wait for another process's write lock before that is told as an error (default: SQLite's
   * busy_timeout here, 5 s): Litestream takes the lock for each checkpoint, for milliseconds, which is no failure.
   */
  lockPatienceMs?: number;
  /** Told after each look at the outbox that met no error (so a run of errors can be logged as ended). */
  onTick?: () => void;
  /** Traces each attempt when tracing is on (null or absent: off). */
  tracer?: Tracer | null;
  /** Whether a receiver's host may resolve to this machine or a link-local address (--webhook-allow-loopback). */
  allowLoopback?: boolean;
  /** A host's addresses (default: the system resolver's, all of them). */
  resolve?: (host: string) => Promise<string[]>;
  /** Whether requests to URLs of this scheme go through a proxy (webhook-targets.ts); default: never. */
  proxied?: (scheme: string) => boolean;
  now?: () => number;
  random?: () => number;
  fetch?: typeof fetch;
}

interface Sent {
  ok: boolean;
  status: number | null;
  error: string;
  retryAfterMs: number;
  seconds: number;
}

/** Delivered rows past keepDeliveredMs go in batches of 500: once a second, or every tick while a batch comes back full. */
const PRUNE_EVERY_MS = 1000;
const PRUNE_BATCH = 500;
const ERROR_BODY_BYTES = 200;

export class WebhookDispatcher {
  readonly #inFlight = new Map<number, AbortController>();
  readonly #requests = new Set<Promise<void>>();
  #results: (AttemptResult & { webhookId: number; linkId: number; gone: boolean; url: string })[] = [];
  #timer: Timer | undefined;
  #stopped = true;
  #lastPrune = 0;
  /** Since when results have waited for another process's write lock (epoch ms), or null. */
  #lockedSince: number | null = null;
  readonly #now: () => number;
  readonly #fetch: typeof fetch;
  /** Where each receiver's requests go: its checked addresses, and its host's fetch session. */
  readonly #targets: WebhookTargets;

  constructor(
    private readonly store: WebhookStore,
    private readonly options: DispatcherOptions,
  ) {
    this.#now = options.now ?? Date.now;
    this.#fetch = options.fetch ?? fetch;
    this.#targets = new WebhookTargets({
      allowLoopback: options.allowLoopback === true,
      resolve: options.resolve,
      proxied: options.proxied,
      now: this.#now,
    });
  }

  /** Starts looking at the outbox (a standby never starts: the primary sends). */
  start(): void {
    if (!this.#stopped) return;
    this.#stopped = false;
    this.#lastPrune = this.#now();
    this.wake();
  }

  /** Looks at the outbox on the next turn of the event loop (new events, a retried delivery, a finished request). */
  wake(): void {
    if (this.#stopped) return;
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => this.#tick(), 0);
  }

  /** Requests in flight now. */
  get inFlight(): number {
    return this.#inFlight.size;
  }

  /**
   * Stops sending: results already in are written, requests still in flight are aborted and left pending (they
   * are sent again, under the same ids, by the next start). Resolves once no request is left.
   */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    try {
      this.#writeResults();
    } catch (error) {
      this.options.onError?.(error);
    }
    for (const controller of this.#inFlight.values()) controller.abort();
    await Promise.allSettled([...this.#requests]);
    this.#targets.close();
  }

  #tick(): void {
    this.#timer = undefined;
    if (this.#stopped) return;
    let next: number | null = null;
    try {
      if (!this.#writeResults()) {
        // Results wait for the lock, and so does sending: their rows still look due, and would be sent twice.
        this.#schedule(null);
        return;
      }
      const room = (this.options.concurrency ?? 16) - this.#inFlight.size;
      if (room > 0) {
        const due = this.store.due(this.#now(), room + this.#inFlight.size).filter((d) => !this.#inFlight.has(d.id));
        for (const delivery of due.slice(0, room)) this.#send(delivery);
      }
      this.#prune();
      next = this.store.nextDueAt();
      this.options.onTick?.();
    } catch (error) {
      this.options.onError?.(error);
    }
    this.#schedule(next);
  }

  /**
   * The next look: when the next head falls due, at most pollMs away. A head already due is in flight or waits
   * for room, and a finished request wakes the dispatcher, so that case polls rather than spins.
   */
  #schedule(nextDueAt: number | null): void {
    if (this.#stopped || this.#timer !== undefined) return;
    const poll = this.options.pollMs ?? 1000;
    const wait = nextDueAt === null ? poll : nextDueAt - this.#now();
    this.#timer = setTimeout(() => this.#tick(), wait <= 0 ? poll : Math.min(wait, poll));
  }

  #send(delivery: DueDelivery): void {
    const controller = new AbortController();
    this.#inFlight.set(delivery.id, controller);
    const request = this.#attempt(delivery, controller.signal).then((sent) => {
      this.#inFlight.delete(delivery.id);
      this.#requests.delete(request);
      // Stopped meanwhile: the row stays pending and is sent again, with the same id, after the restart.
      if (this.#stopped) return;
      const result = this.#resultOf(delivery, sent);
      const gone = sent.status === 410;
      this.#results.push({ ...result, webhookId: delivery.webhook_id, linkId: delivery.link_id, gone, url: delivery.url });
      this.options.onAttempt?.(result.outcome, sent.seconds);
      this.wake();
    });
    this.#requests.add(request);
  }

  #resultOf(delivery: DueDelivery, sent: Sent): AttemptResult {
    if (sent.ok) return { id: delivery.id, outcome: "delivered", status: sent.status as number };
    const attempts = delivery.attempts + 1;
    if (attempts >= this.options.maxAttempts) return { id: delivery.id, outcome: "dead", attempts, status: sent.status, error: sent.error };
    const delay = retryDelayMs(this.options.backoff, attempts, this.options.random, sent.retryAfterMs);
    return { id: delivery.id, outcome: "failed", attempts, nextAttemptAt: this.#now() + delay, status: sent.status, error: sent.error };
  }

  /** One signed POST; never throws. Redirects are not followed (a 3xx is a failure, as the spec says). */
  async #attempt(delivery: DueDelivery, stop: AbortSignal): Promise<Sent> {
    const started = performance.now();
    const seconds = () => (performance.now() - started) / 1000;
    const timestamp = Math.floor(this.#now() / 1000);
    const headers: Record<string, string> = {
      "Content-Type": "application/json",
      "User-Agent": this.options.userAgent,
      ...signedHeaders(secretsOf(delivery, this.#now()), delivery.message_id, timestamp, delivery.payload),
    };
    const url = new URL(delivery.url);
    const span = this.#startSpan(delivery, url, headers);
    const sent = await this.#post(delivery, url, headers, stop, seconds);
    if (span !== null) endSpan(span, sent);
    return sent;
  }

  /** The attempt's CLIENT span, its context injected into `headers`; null with tracing off. */
  #startSpan(delivery: DueDelivery, url: URL, headers: Record<string, string>): Span | null {
    const tracer = this.options.tracer;
    if (tracer === undefined || tracer === null) return null;
    const span = tracer.startSpan(
      "POST",
      {
        kind: SpanKind.CLIENT,
        root: true,
        attributes: {
          "http.request.method": "POST",
          "server.address": url.hostname,
          "server.port": Number(url.port || (url.protocol === "https:" ? 443 : 80)),
          "url.scheme": url.protocol.slice(0, -1),
          "shortener.webhook_id": delivery.webhook_id,
          "shortener.webhook_message_id": delivery.message_id,
          "shortener.webhook_attempt": delivery.attempts + 1,
        },
      },
      ROOT_CONTEXT,
    );
    propagation.inject(trace.setSpan(ROOT_CONTEXT, span), headers);
    return span;
  }

  async #post(delivery: DueDelivery, url: URL, headers: Record<string, string>, stop: AbortSignal, seconds: () => number): Promise<Sent> {
    const routing = await this.#targets.route(url);
    if ("refused" in routing) return { ok: false, status: null, error: routing.refused, retryAfterMs: 0, seconds: seconds() };
    const signal = AbortSignal.any([stop, AbortSignal.timeout(this.options.timeoutMs)]);
    try {
      const response = await this.#postFirst(routing.routes, delivery.payload, headers, signal);
      const ok = response.status >= 200 && response.status < 300;
      const detail = ok ? "" : await bodyStart(response);
      if (ok) await response.body?.cancel();
      return {
        ok,
        status: response.status,
        error: ok ? "" : `HTTP ${response.status}${detail === "" ? "" : `: ${detail}`}`,
        retryAfterMs: retryAfterMs(response.headers.get("retry-after"), this.#now()),
        seconds: seconds(),
      };
    } catch (error) {
      const timedOut = (error as { name?: unknown } | null)?.name === "TimeoutError";
      const why = timedOut ? `timed out after ${this.options.timeoutMs} ms` : error instanceof Error ? error.message : String(error);
      return { ok: false, status: null, error: why, retryAfterMs: 0, seconds: seconds() };
    }
  }

  /**
   * POSTs to the first of a receiver's addresses that takes the connection (webhook-targets.ts); the next is tried
   * only when the connection itself failed, so nothing was sent. Redirects are not followed.
   */
  async #postFirst(routes: readonly Route[], body: string, headers: Record<string, string>, signal: AbortSignal): Promise<Response> {
    for (let i = 0; ; i++) {
      const route = routes[i] as Route;
      const init: BunFetchRequestInit = { method: "POST", headers: { ...headers, Host: route.host }, body, redirect: "manual", signal };
      if (route.session !== undefined) init.session = route.session;
      try {
        return await this.#fetch(route.url, init);
      } catch (error) {
        if (i + 1 >= routes.length || !neverConnected(error)) throw error;
      }
    }
  }

  /**
   * Writes back the results that came in; false while another process holds the write lock (they wait for the next
   * tick), and an error once they have waited longer than lockPatienceMs.
   */
  #writeResults(): boolean {
    if (this.#results.length === 0) return true;
    const results = this.#results;
    this.#results = [];
    // If this throws, the rows stay pending and are sent again under the same ids.
    const now = this.#now();
    if (!this.store.recordAttempts(results, now)) {
      this.#results = results.concat(this.#results);
      this.#lockedSince ??= now;
      if (now - this.#lockedSince < (this.options.lockPatienceMs ?? BUSY_TIMEOUT_MS)) return false;
      throw new Error("webhook results not recorded: another process holds the database's write lock; retrying");
    }
    this.#lockedSince = null;
    const gone = new Map(results.filter((r) => r.gone).map((r) => [r.webhookId, r.url]));
    for (const [webhookId, url] of gone) this.options.onWebhookGone?.(webhookId, url);
    return true;
  }

  #prune(): void {
    const now = this.#now();
    if (now - this.#lastPrune < PRUNE_EVERY_MS) return;
    const pruned = this.store.pruneDelivered(now - (this.options.keepDeliveredMs ?? 86_400_000), PRUNE_BATCH);
    // A full batch means more are due, and null that another process held the write lock: the next tick prunes
    // again rather than waiting a second. A lock is no failure here (nothing waits on pruning).
    if (pruned !== null && pruned < PRUNE_BATCH) this.#lastPrune = now;
  }
}

/** Ends an attempt's span with what the receiver answered (or why nothing came). */
function endSpan(span: Span, sent: Sent): void {
  if (sent.status !== null) span.setAttribute("http.response.status_code", sent.status);
  if (!sent.ok) {
    span.setAttribute(
      "error.type",
      sent.status === null ? (sent.error.startsWith("timed out") ? "timeout" : "_OTHER") : String(sent.status),
    );
    span.setStatus({ code: SpanStatusCode.ERROR, message: sent.error });
  }
  span.end();
}

/** The secrets that sign a delivery: the current one, and the previous one until its rotation period ends. */
function secretsOf(delivery: DueDelivery, now: number): string[] {
  const previous = delivery.previous_secret;
  const until = delivery.previous_secret_until ?? 0;
  return previous !== null && until > now ? [delivery.secret, previous] : [delivery.secret];
}

/** The first bytes of an error response's body, for the deliveries list. */
async function bodyStart(response: Response): Promise<string> {
  try {
    const reader = response.body?.getReader();
    if (reader === undefined) return "";
    const { value } = await reader.read();
    await reader.cancel();
    if (value === undefined) return "";
    return new TextDecoder().decode(value.subarray(0, ERROR_BODY_BYTES)).replace(/\s+/g, " ").trim();
  } catch {
    return "";
  }
}
