/**
 * Traces, against the compiled binary: a small OTLP/HTTP receiver on loopback collects what the server exports
 * (the exporter sends JSON bodies, application/json), and the tests read the spans back from it.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { rmSync } from "node:fs";
import { runCli, startServer, type TestServer, tempDir, waitFor } from "./support/binary";
import { type Attempt, WebhookReceiver } from "./support/webhook-receiver";
import { createWebhook, LOOPBACK_RECEIVERS } from "./support/webhook-steps";

interface ExportedSpan {
  name: string;
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  kind: number;
  attributes: Record<string, unknown>;
  status?: { code?: number };
}

const SPAN_KIND_SERVER = 2;
const SPAN_KIND_CLIENT = 3;
const SPAN_STATUS_ERROR = 2;

type AnyValue = { stringValue?: string; intValue?: string | number; boolValue?: boolean; doubleValue?: number };

function attributeMap(list: { key: string; value: AnyValue }[] = []): Record<string, unknown> {
  const map: Record<string, unknown> = {};
  for (const { key, value } of list) {
    map[key] = value.stringValue ?? (value.intValue !== undefined ? Number(value.intValue) : (value.boolValue ?? value.doubleValue));
  }
  return map;
}

/** An OTLP/HTTP traces receiver: POST /v1/traces with a JSON ExportTraceServiceRequest. */
class OtlpReceiver implements AsyncDisposable {
  readonly spans: ExportedSpan[] = [];
  readonly resources: Record<string, unknown>[] = [];
  readonly contentTypes: string[] = [];
  posts = 0;
  readonly #server: ReturnType<typeof Bun.serve>;

  constructor() {
    this.#server = Bun.serve({
      hostname: "127.0.0.1",
      port: 0,
      fetch: async (request) => {
        if (request.method !== "POST" || new URL(request.url).pathname !== "/v1/traces") return new Response("not found", { status: 404 });
        this.posts++;
        this.contentTypes.push(request.headers.get("content-type") ?? "");
        const body = (await request.json()) as {
          resourceSpans: {
            resource: { attributes: { key: string; value: AnyValue }[] };
            scopeSpans: { spans: (Omit<ExportedSpan, "attributes"> & { attributes: { key: string; value: AnyValue }[] })[] }[];
          }[];
        };
        for (const resourceSpans of body.resourceSpans) {
          this.resources.push(attributeMap(resourceSpans.resource.attributes));
          for (const scope of resourceSpans.scopeSpans)
            for (const span of scope.spans) this.spans.push({ ...span, attributes: attributeMap(span.attributes) });
        }
        return Response.json({});
      },
    });
  }

  get endpoint(): string {
    return `http://127.0.0.1:${this.#server.port}`;
  }

  /** The first exported span matching `match`, waiting (with a deadline) for it to arrive. */
  async span(what: string, match: (span: ExportedSpan) => boolean): Promise<ExportedSpan> {
    await waitFor(what, () => this.spans.some(match), 10_000);
    return this.spans.find(match) as ExportedSpan;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.#server.stop(true);
  }
}

const hex = (bytes: number) => Buffer.from(crypto.getRandomValues(new Uint8Array(bytes))).toString("hex");

/** A W3C traceparent from a sampled caller, with its ids. */
function caller(sampled = true) {
  const traceId = hex(16);
  const spanId = hex(8);
  return { traceId, spanId, traceparent: `00-${traceId}-${spanId}-${sampled ? "01" : "00"}` };
}

async function createLink(server: TestServer, slug: string): Promise<void> {
  const response = await server.api("/rest/v3/short-urls", {
    method: "POST",
    body: JSON.stringify({ longUrl: `https://example.com/${slug}`, customSlug: slug }),
  });
  expect(response.status).toBe(200);
}

describe("with OTEL_EXPORTER_OTLP_ENDPOINT set", () => {
  let receiver: OtlpReceiver;
  let server: TestServer;
  beforeAll(async () => {
    receiver = new OtlpReceiver();
    server = await startServer({
      env: { OTEL_EXPORTER_OTLP_ENDPOINT: receiver.endpoint, OTEL_BSP_SCHEDULE_DELAY: "100", ...LOOPBACK_RECEIVERS },
    });
  });
  afterAll(async () => {
    await server[Symbol.asyncDispose]();
    await receiver[Symbol.asyncDispose]();
  });

  test("a redirect with a traceparent is exported as the caller's child SERVER span, route /{shortCode}", async () => {
    await createLink(server, "traced-hop");
    const parent = caller();
    const response = await fetch(`${server.baseUrl}/traced-hop?utm=x`, {
      headers: { traceparent: parent.traceparent },
      redirect: "manual",
    });
    expect(response.status).toBe(302);
    const span = await receiver.span("the redirect's span", (s) => s.traceId === parent.traceId && s.kind === SPAN_KIND_SERVER);
    expect(span.parentSpanId).toBe(parent.spanId);
    expect(span.name).toBe("GET /{shortCode}");
    expect(span.attributes).toMatchObject({
      "http.request.method": "GET",
      "http.route": "/{shortCode}",
      "url.path": "/traced-hop",
      "http.response.status_code": 302,
      "server.address": "127.0.0.1",
      "shortener.request_id": response.headers.get("x-request-id"),
    });
  });

  test("a cache-miss redirect's SELECT is a child span of the request span in the same trace", async () => {
    await createLink(server, "traced-miss");
    const parent = caller();
    expect(
      (await fetch(`${server.baseUrl}/traced-miss`, { headers: { traceparent: parent.traceparent }, redirect: "manual" })).status,
    ).toBe(302);
    const request = await receiver.span("the request span", (s) => s.traceId === parent.traceId && s.kind === SPAN_KIND_SERVER);
    const select = await receiver.span("the SELECT span", (s) => s.traceId === parent.traceId && s.name === "sqlite short_urls.select");
    expect(select.parentSpanId).toBe(request.spanId);
    expect(select.kind).toBe(SPAN_KIND_CLIENT);
    expect(select.attributes).toMatchObject({
      "db.system.name": "sqlite",
      "db.collection.name": "short_urls",
      "db.operation.name": "SELECT",
    });
  });

  test("a REST request is exported with its route template, status and storage span", async () => {
    await createLink(server, "traced-rest");
    const parent = caller();
    const response = await server.api("/rest/v3/short-urls/traced-rest", { headers: { traceparent: parent.traceparent } });
    expect(response.status).toBe(200);
    const span = await receiver.span("the REST span", (s) => s.traceId === parent.traceId && s.kind === SPAN_KIND_SERVER);
    expect(span.parentSpanId).toBe(parent.spanId);
    expect(span.name).toBe("GET /rest/v3/short-urls/{shortCode}");
    expect(span.attributes).toMatchObject({
      "http.route": "/rest/v3/short-urls/{shortCode}",
      "url.path": "/rest/v3/short-urls/traced-rest",
      "http.response.status_code": 200,
    });
    const select = await receiver.span("the REST SELECT", (s) => s.traceId === parent.traceId && s.name === "sqlite short_urls.select");
    expect(select.parentSpanId).toBe(span.spanId);
  });

  test("a create's shared write transaction is a child of its request, and the INSERT a child of that", async () => {
    const parent = caller();
    const response = await server.api("/rest/v3/short-urls", {
      method: "POST",
      headers: { traceparent: parent.traceparent },
      body: JSON.stringify({ longUrl: "https://example.com/traced-create", customSlug: "traced-create" }),
    });
    expect(response.status).toBe(200);
    const request = await receiver.span("the create span", (s) => s.traceId === parent.traceId && s.kind === SPAN_KIND_SERVER);
    const transaction = await receiver.span("the transaction", (s) => s.traceId === parent.traceId && s.name === "sqlite transaction");
    const insert = await receiver.span("the INSERT", (s) => s.traceId === parent.traceId && s.name === "sqlite short_urls.insert");
    expect(transaction.parentSpanId).toBe(request.spanId);
    expect(insert.parentSpanId).toBe(transaction.spanId);
    expect(request.attributes["http.response.status_code"]).toBe(200);
  });

  test("the access log line of a sampled request carries its trace id", async () => {
    const parent = caller();
    const response = await fetch(`${server.baseUrl}/healthz`, { headers: { traceparent: parent.traceparent } });
    const requestId = response.headers.get("x-request-id") as string;
    await waitFor("the access line", () => server.stdout.includes(`"request_id":"${requestId}"`), 5_000);
    const line = server.stdout.split("\n").find((l) => l.includes(`"request_id":"${requestId}"`)) as string;
    expect(JSON.parse(line).trace_id).toBe(parent.traceId);
  });

  test("spans are sent as OTLP/HTTP JSON from a resource named shortener", async () => {
    await receiver.span("any span", () => true);
    expect(receiver.contentTypes.every((type) => type.startsWith("application/json"))).toBe(true);
    expect(receiver.resources[0]).toMatchObject({ "service.name": "shortener", "telemetry.sdk.language": "nodejs" });
    expect(receiver.resources[0]?.["service.version"]).toBeString();
  });

  test("each webhook attempt is a CLIENT span of its own trace, whose traceparent the receiver gets", async () => {
    using hooks = new WebhookReceiver();
    await createWebhook(server, hooks, ["link.created"]);
    const attemptSpan = async (attempt: Attempt | undefined) => {
      const context = /^00-([0-9a-f]{32})-([0-9a-f]{16})-01$/.exec(attempt?.traceparent ?? "");
      expect(context, `traceparent of ${JSON.stringify(attempt)}`).not.toBeNull();
      const [, traceId, spanId] = context as RegExpExecArray;
      return receiver.span("the attempt's span", (s) => s.traceId === traceId && s.spanId === spanId);
    };

    await createLink(server, "traced-hook");
    await waitFor("the delivery", () => hooks.accepted.some((r) => r.link === "/traced-hook"), 10_000);
    const delivered = hooks.accepted.find((r) => r.link === "/traced-hook");
    const span = await attemptSpan(hooks.attempts.find((a) => a.id === delivered?.id && a.status === 204));
    expect(span.name).toBe("POST");
    expect(span.kind).toBe(SPAN_KIND_CLIENT);
    // A root: the REST request that queued the event was answered before the delivery began.
    expect(span.parentSpanId ?? "").toBe("");
    expect(span.attributes).toMatchObject({
      "http.request.method": "POST",
      "server.address": "127.0.0.1",
      "server.port": hooks.server.port,
      "url.scheme": "http",
      "shortener.webhook_message_id": delivered?.id,
      "shortener.webhook_attempt": 1,
      "http.response.status_code": 204,
    });
    expect(span.status?.code ?? 0).toBe(0);
    // The receiver's URL may carry a token: only its host and port are exported.
    expect(JSON.stringify(span)).not.toContain("/hooks");

    hooks.mode = { kind: "gone" };
    await createLink(server, "traced-gone");
    await waitFor("the refused attempt", () => hooks.attempts.some((a) => a.status === 410), 10_000);
    const refused = await attemptSpan(hooks.attempts.find((a) => a.status === 410));
    expect(refused.attributes).toMatchObject({ "http.response.status_code": 410, "error.type": "410" });
    expect(refused.status?.code).toBe(SPAN_STATUS_ERROR);
  });

  test("a caller's unsampled traceparent (flags 00) exports nothing for that trace", async () => {
    const unsampled = caller(false);
    expect((await fetch(`${server.baseUrl}/readyz`, { headers: { traceparent: unsampled.traceparent } })).status).toBe(200);
    // The processor exports one batch at a time, in the order spans end: once a later span has arrived, an
    // earlier one would have too.
    const later = caller();
    await fetch(`${server.baseUrl}/readyz`, { headers: { traceparent: later.traceparent } });
    await receiver.span("the later request's span", (s) => s.traceId === later.traceId);
    expect(receiver.spans.filter((s) => s.traceId === unsampled.traceId)).toEqual([]);
  });
});

describe("with sampling ratio 0 (OTEL_TRACES_SAMPLER=traceidratio, OTEL_TRACES_SAMPLER_ARG=0)", () => {
  test("requests without a parent export nothing, even after the drain flushes every buffered span", async () => {
    await using receiver = new OtlpReceiver();
    const server = await startServer({
      env: {
        OTEL_EXPORTER_OTLP_ENDPOINT: receiver.endpoint,
        OTEL_BSP_SCHEDULE_DELAY: "100",
        OTEL_TRACES_SAMPLER: "traceidratio",
        OTEL_TRACES_SAMPLER_ARG: "0",
      },
    });
    try {
      await createLink(server, "never-sampled");
      for (let i = 0; i < 5; i++) expect((await fetch(`${server.baseUrl}/never-sampled`, { redirect: "manual" })).status).toBe(302);
      expect((await server.api("/rest/v3/short-urls")).status).toBe(200);
    } finally {
      await server[Symbol.asyncDispose]();
    }
    expect(server.stdout).toContain(`"tracing":"${receiver.endpoint}/v1/traces traceidratio 0"`);
    expect(receiver.posts).toBe(0);
    expect(receiver.spans).toEqual([]);
  });
});

describe("without OTEL_EXPORTER_OTLP_ENDPOINT", () => {
  test("nothing is exported, tracing is reported off, and /metrics still works", async () => {
    await using receiver = new OtlpReceiver();
    // Every other tracing variable is set: only the endpoint turns tracing on.
    const server = await startServer({ env: { OTEL_BSP_SCHEDULE_DELAY: "100", OTEL_TRACES_SAMPLER: "always_on" } });
    try {
      const parent = caller();
      await createLink(server, "untraced");
      expect((await fetch(`${server.baseUrl}/untraced`, { headers: { traceparent: parent.traceparent }, redirect: "manual" })).status).toBe(
        302,
      );
      const metrics = await fetch(`http://127.0.0.1:${server.opsPort}/metrics`);
      expect(metrics.status).toBe(200);
      expect(await metrics.text()).toContain('http_requests_total{route="/{shortCode}",method="GET",status_class="3xx"} 1');
    } finally {
      await server[Symbol.asyncDispose]();
    }
    expect(server.stdout).toContain('"tracing":"off"');
    expect(server.stdout).not.toContain('"trace_id"');
    expect(receiver.posts).toBe(0);
  });
});

describe("tracing settings", () => {
  test.each([
    ["OTEL_TRACES_SAMPLER", { OTEL_TRACES_SAMPLER: "jaeger_remote" }],
    ["OTEL_TRACES_SAMPLER_ARG", { OTEL_TRACES_SAMPLER: "traceidratio", OTEL_TRACES_SAMPLER_ARG: "2" }],
    ["OTEL_EXPORTER_OTLP_PROTOCOL", { OTEL_EXPORTER_OTLP_PROTOCOL: "grpc" }],
    ["OTEL_BSP_SCHEDULE_DELAY", { OTEL_BSP_SCHEDULE_DELAY: "soon" }],
  ])("a bad %s with an endpoint set exits 1 with one line naming it", async (name, env) => {
    const dataDir = tempDir();
    try {
      const result = await runCli(["keys", "list"], {
        SHORTENER_DATA_DIR: dataDir,
        OTEL_EXPORTER_OTLP_ENDPOINT: "http://127.0.0.1:4318",
        ...env,
      });
      expect(result.exitCode).toBe(1);
      expect(result.stderr.trim().split("\n")).toEqual([expect.stringContaining(`invalid setting ${name}:`)]);
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});

describe("when the collector misbehaves", () => {
  test("an export the collector refuses is logged as a tracing_problem warning", async () => {
    const refusing = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Response("bad request", { status: 400 }) });
    const server = await startServer({
      env: { OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${refusing.port}`, OTEL_BSP_SCHEDULE_DELAY: "100" },
    });
    try {
      await fetch(`${server.baseUrl}/healthz`);
      await waitFor("the tracing_problem warning", () => server.stderr.includes('"event":"tracing_problem"'), 10_000);
      expect((await fetch(`${server.baseUrl}/healthz`)).status).toBe(200);
    } finally {
      await server[Symbol.asyncDispose]();
      await refusing.stop(true);
    }
  });

  test("a collector that never answers delays the drain by at most the 5 s export bound", async () => {
    const hung = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Promise<Response>(() => {}) });
    const server = await startServer({
      env: { OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${hung.port}`, OTEL_BSP_SCHEDULE_DELAY: "60000" },
    });
    try {
      await fetch(`${server.baseUrl}/healthz`);
      const stopping = performance.now();
      expect(await server.stop("SIGTERM", 20_000)).toBe(0);
      expect(performance.now() - stopping).toBeLessThan(9_000);
      expect(server.stderr).toContain('"event":"trace_export_timeout"');
    } finally {
      await server[Symbol.asyncDispose]();
      await hung.stop(true);
    }
  });
});
