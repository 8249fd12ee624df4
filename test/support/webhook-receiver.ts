/**
 * A webhook receiver on 127.0.0.1 for black-box tests: it verifies every delivery's signature with the official
 * `standardwebhooks` library, deduplicates on `webhook-id` as a receiver should, and answers as the test says
 * (fail the first attempts of each message, be down, or hold a request). It records every request in order.
 */
import type { Server } from "bun";
import { Webhook } from "standardwebhooks";

export interface Received {
  /** Order of arrival over all requests. */
  seq: number;
  id: string;
  type: string;
  /** The link the event is about: its domain and short code. */
  link: string;
  data: Record<string, unknown>;
}

export interface Attempt {
  seq: number;
  id: string;
  status: number;
  verified: boolean;
  /** The request's W3C trace context, if it carried one (with tracing on, each attempt does). */
  traceparent: string | null;
}

type Mode = { kind: "fail-first"; attempts: number } | { kind: "down" } | { kind: "gone" } | { kind: "up" } | { kind: "hold-next" };

function linkOf(data: Record<string, unknown>): string {
  const shortUrl = data.shortUrl as { shortCode: string; domain: string | null };
  return `${shortUrl.domain ?? ""}/${shortUrl.shortCode}`;
}

export class WebhookReceiver implements Disposable {
  readonly server: Server<undefined>;
  secret = "";
  mode: Mode = { kind: "up" };
  /** Every request, verified or not, in arrival order. */
  readonly attempts: Attempt[] = [];
  /** Each message id once, in the order first accepted. */
  readonly accepted: Received[] = [];
  /** Accepted requests whose id had been accepted before (a resend the receiver ignored). */
  readonly duplicates: string[] = [];
  /** The request being held (hold-next), released by `release`. */
  held: { id: string; release: () => void } | null = null;
  #seq = 0;
  readonly #tries = new Map<string, number>();

  /** The Host header of every request, in arrival order. */
  readonly hosts: (string | null)[] = [];
  readonly #name: string;
  readonly #scheme: string;

  /** On 127.0.0.1; with `tls`, an https receiver whose URL names it `name` (its certificate's). */
  constructor(tls?: { name: string; cert: string; key: string }) {
    this.server = Bun.serve({
      hostname: "127.0.0.1",
      port: 0,
      fetch: (request) => this.#handle(request),
      ...(tls === undefined ? {} : { tls: { cert: Bun.file(tls.cert), key: Bun.file(tls.key) } }),
    });
    this.#name = tls?.name ?? "127.0.0.1";
    this.#scheme = tls === undefined ? "http" : "https";
  }

  get url(): string {
    return `${this.#scheme}://${this.#name}:${this.server.port}/hooks`;
  }

  /** How many requests carried this message id. */
  triesOf(id: string): number {
    return this.#tries.get(id) ?? 0;
  }

  async #handle(request: Request): Promise<Response> {
    const seq = ++this.#seq;
    this.hosts.push(request.headers.get("host"));
    const body = await request.text();
    const headers: Record<string, string> = {};
    request.headers.forEach((value, name) => {
      headers[name] = value;
    });
    const id = headers["webhook-id"] ?? "";
    const traceparent = headers.traceparent ?? null;
    let payload: { type: string; data: Record<string, unknown> };
    try {
      payload = new Webhook(this.secret).verify(body, headers) as typeof payload;
    } catch {
      this.attempts.push({ seq, id, status: 401, verified: false, traceparent });
      return new Response("bad signature", { status: 401 });
    }
    const tries = (this.#tries.get(id) ?? 0) + 1;
    this.#tries.set(id, tries);
    const mode = this.mode;
    if (mode.kind === "gone") {
      this.attempts.push({ seq, id, status: 410, verified: true, traceparent });
      return new Response("gone", { status: 410 });
    }
    if (mode.kind === "down" || (mode.kind === "fail-first" && tries <= mode.attempts)) {
      this.attempts.push({ seq, id, status: 503, verified: true, traceparent });
      return new Response("try again later", { status: 503 });
    }
    this.attempts.push({ seq, id, status: 204, verified: true, traceparent });
    if (this.accepted.some((r) => r.id === id)) this.duplicates.push(id);
    else this.accepted.push({ seq, id, type: payload.type, link: linkOf(payload.data), data: payload.data });
    if (mode.kind === "hold-next") {
      // While one is held, every other request fails: only the held message is accepted and unrecorded.
      this.mode = { kind: "down" };
      const released = Promise.withResolvers<void>();
      this.held = { id, release: released.resolve };
      await released.promise;
    }
    return new Response(null, { status: 204 });
  }

  /** The accepted events' types per link, in the order accepted. */
  typesByLink(): Map<string, string[]> {
    const byLink = new Map<string, string[]>();
    for (const r of this.accepted) byLink.set(r.link, [...(byLink.get(r.link) ?? []), r.type]);
    return byLink;
  }

  [Symbol.dispose](): void {
    this.held?.release();
    this.server.stop(true);
  }
}
