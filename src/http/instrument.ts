/**
 * Wraps a route handler with the request's id, in-flight count, latency histogram, counters, one access log
 * line and, when tracing is on and the sampler keeps the request, a SERVER span that the handler runs in.
 * Synchronous handlers stay synchronous (the redirect path never awaits).
 */
import type { Span } from "@opentelemetry/api";
import { SpanStatusCode } from "@opentelemetry/api";
import type { Server } from "bun";
import { logAccess } from "../telemetry/logger";
import type { Metrics } from "../telemetry/metrics";
import type { RequestSeries } from "../telemetry/request-metrics";
import type { Tracing } from "../telemetry/tracing";
import { errorResponse } from "./problem";
import { assignRequestId, type ClientIpResolver, rememberRequestId } from "./request-context";

export interface Instrumentation {
  metrics: Metrics;
  clientIp: ClientIpResolver;
  tracing: Tracing;
}

/** A route handler; `requestId` is given so a hot handler can set X-Request-Id while building its response. */
type Handler = (request: Request, server: Server<undefined>, requestId: string) => Response | Promise<Response>;
type Route = (request: Request, server: Server<undefined>) => Response | Promise<Response>;

const METHOD_INDEX = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "other"];
const KNOWN_METHODS = new Set(METHOD_INDEX.slice(0, -1));

/** HTTP semantic-convention attributes of a sampled request's span. */
function describeRequest(span: Span, request: Request, method: string, route: string, requestId: string): void {
  const url = request.url;
  const pathStart = url.indexOf("/", url.indexOf("//") + 2);
  const query = url.indexOf("?", pathStart);
  const host = request.headers.get("host");
  const port = host === null ? null : /:(\d+)$/.exec(host);
  span.setAttributes({
    "http.request.method": method === "other" ? "_OTHER" : method,
    "http.route": route,
    "url.path": url.slice(pathStart, query === -1 ? undefined : query),
    "url.scheme": url.startsWith("https:") ? "https" : "http",
    "server.address": host === null ? "" : port === null ? host : host.slice(0, port.index),
    "shortener.request_id": requestId,
  });
  if (port) span.setAttribute("server.port", Number(port[1]));
}

function endRequestSpan(span: Span, status: number): void {
  span.setAttribute("http.response.status_code", status);
  if (status >= 500) {
    span.setAttribute("error.type", String(status));
    span.setStatus({ code: SpanStatusCode.ERROR });
  }
  span.end();
}

/** `route` is the template label, or a function mapping a request to one of a fixed set of templates. */
export function instrumented(
  route: string | ((request: Request) => string),
  handler: Handler,
  inst: Instrumentation,
  options: { setsRequestId?: boolean } = {},
): Route {
  // A fixed route keeps its series at hand, keyed by status and method, so the hot path does no string work.
  const seriesCache = new Map<number, RequestSeries>();
  const seriesFor = (label: string, method: string, status: number): RequestSeries => {
    if (typeof route !== "string") return inst.metrics.requestSeries(label, method, status);
    const key = status * 16 + METHOD_INDEX.indexOf(method);
    let series = seriesCache.get(key);
    if (series === undefined) {
      series = inst.metrics.requestSeries(label, method, status);
      seriesCache.set(key, series);
    }
    return series;
  };
  const finish = (
    response: Response,
    request: Request,
    server: Server<undefined>,
    requestId: string,
    started: number,
    span: Span | null,
  ): Response => {
    // Touching `response.headers` materialises a Headers object: a handler that sets the id itself is spared that.
    if (!options.setsRequestId) response.headers.set("X-Request-Id", requestId);
    const latencyMs = performance.now() - started;
    const label = typeof route === "string" ? route : route(request);
    const method = KNOWN_METHODS.has(request.method) ? request.method : "other";
    inst.metrics.recordRequest(seriesFor(label, method, response.status), latencyMs / 1000);
    if (span !== null) endRequestSpan(span, response.status);
    logAccess({
      requestId,
      method,
      route: label,
      status: response.status,
      latencyMs,
      bytes: response.body === null ? 0 : Number(response.headers.get("content-length") ?? -1),
      clientIp: inst.clientIp(request, server),
      traceId: span === null ? undefined : span.spanContext().traceId,
    });
    return response;
  };
  const run = (request: Request, server: Server<undefined>, requestId: string, started: number, span: Span | null) => {
    let result: Response | Promise<Response>;
    try {
      result = handler(request, server, requestId);
    } catch (error) {
      rememberRequestId(request, requestId);
      result = errorResponse(error, request);
    }
    if (result instanceof Promise) {
      return result.then(
        (response) => finish(response, request, server, requestId, started, span),
        (error) => {
          rememberRequestId(request, requestId);
          return finish(errorResponse(error, request), request, server, requestId, started, span);
        },
      );
    }
    return finish(result, request, server, requestId, started, span);
  };
  const tracing = inst.tracing;
  if (!tracing.enabled) {
    return (request, server) => {
      const started = performance.now();
      const requestId = assignRequestId(request, !options.setsRequestId);
      inst.metrics.requestStarted();
      return run(request, server, requestId, started, null);
    };
  }
  return (request, server) => {
    const started = performance.now();
    const requestId = assignRequestId(request, !options.setsRequestId);
    inst.metrics.requestStarted();
    const label = typeof route === "string" ? route : route(request);
    const method = KNOWN_METHODS.has(request.method) ? request.method : "other";
    const span = tracing.startServerSpan(`${method === "other" ? "HTTP" : method} ${label}`, request.headers);
    if (span === null) return run(request, server, requestId, started, null);
    describeRequest(span, request, method, label, requestId);
    return tracing.withSpan(span, () => run(request, server, requestId, started, span));
  };
}

/** A path segment: a short code, a tag, a domain or an id. */
const SEGMENT = "[^/]+";

/** Every REST route's template (src/http/rest/*-routes.ts); a fixed segment comes before a parameter in its place. */
const REST_TEMPLATES: readonly string[] = [
  "/rest/health",
  "/rest/v3/health",
  "/rest/v3/mercure-info",
  "/rest/v3/short-urls",
  "/rest/v3/short-urls/shorten",
  "/rest/v3/short-urls/bulk",
  "/rest/v3/short-urls/{shortCode}/visits",
  "/rest/v3/short-urls/{shortCode}/redirect-rules",
  "/rest/v3/short-urls/{shortCode}",
  "/rest/v3/tags",
  "/rest/v3/tags/stats",
  "/rest/v3/tags/{tag}/visits",
  "/rest/v3/domains",
  "/rest/v3/domains/redirects",
  "/rest/v3/domains/{domain}/visits",
  "/rest/v3/visits",
  "/rest/v3/visits/orphan",
  "/rest/v3/visits/non-orphan",
  "/rest/v3/webhooks",
  "/rest/v3/webhooks/{id}",
  "/rest/v3/webhooks/{id}/rotate-secret",
  "/rest/v3/webhooks/{id}/deliveries",
  "/rest/v3/webhooks/{id}/deliveries/{deliveryId}/retry",
  "/rest/v3/audit-events",
];

/** Each template as a pattern (a trailing slash allowed); `/rest/v3/health` is counted as Shlink's `/rest/health`. */
const REST_ROUTES: [RegExp, string][] = REST_TEMPLATES.map((template) => [
  new RegExp(`^${template.replace(/\{[^}]+\}/g, SEGMENT)}/?$`),
  template === "/rest/v3/health" ? "/rest/health" : template,
]);

/** The template of a REST path, from a fixed list: unknown paths are "/rest/other", so labels stay bounded. */
export function restRouteTemplate(request: Request): string {
  const url = request.url;
  const start = url.indexOf("/rest/");
  const end = url.indexOf("?", start);
  // /rest/v1 and /rest/v2 are served as /rest/v3 (asCurrentVersion), and counted with it.
  const path = url.slice(start, end === -1 ? undefined : end).replace(/^\/rest\/v[12]\//, "/rest/v3/");
  for (const [pattern, template] of REST_ROUTES) if (pattern.test(path)) return template;
  return "/rest/other";
}
