/**
 * Wraps a route handler with the request's id, in-flight count, latency histogram, counters and one access
 * log line. Synchronous handlers stay synchronous (the redirect path never awaits).
 */
import type { Server } from "bun";
import type { Cidr } from "../lib/cidr";
import { logAccess } from "../telemetry/logger";
import type { Metrics } from "../telemetry/metrics";
import { errorResponse } from "./problem";
import { assignRequestId, clientIp } from "./request-context";

export interface Instrumentation {
  metrics: Metrics;
  trustedProxies: readonly Cidr[];
}

type Handler = (request: Request, server: Server<undefined>) => Response | Promise<Response>;

const KNOWN_METHODS = new Set(["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]);

/** `route` is the template label, or a function mapping a request to one of a fixed set of templates. */
export function instrumented(route: string | ((request: Request) => string), handler: Handler, inst: Instrumentation): Handler {
  const finish = (response: Response, request: Request, server: Server<undefined>, requestId: string, started: number): Response => {
    response.headers.set("X-Request-Id", requestId);
    const latencyMs = performance.now() - started;
    const label = typeof route === "string" ? route : route(request);
    const method = KNOWN_METHODS.has(request.method) ? request.method : "other";
    inst.metrics.recordRequest(label, method, response.status, latencyMs / 1000);
    const length = response.headers.get("content-length");
    logAccess({
      requestId,
      method,
      route: label,
      status: response.status,
      latencyMs,
      bytes: response.body === null ? 0 : length === null ? -1 : Number(length),
      clientIp: clientIp(request, server, inst.trustedProxies),
    });
    return response;
  };
  return (request, server) => {
    const started = performance.now();
    const requestId = assignRequestId(request);
    inst.metrics.requestStarted();
    let result: Response | Promise<Response>;
    try {
      result = handler(request, server);
    } catch (error) {
      result = errorResponse(error, request);
    }
    if (result instanceof Promise) {
      return result.then(
        (response) => finish(response, request, server, requestId, started),
        (error) => finish(errorResponse(error, request), request, server, requestId, started),
      );
    }
    return finish(result, request, server, requestId, started);
  };
}

const REST_ROUTES: [RegExp, string][] = [
  [/^\/rest\/v3\/short-urls\/?$/, "/rest/v3/short-urls"],
  [/^\/rest\/v3\/short-urls\/[^/]+\/?$/, "/rest/v3/short-urls/{shortCode}"],
  [/^\/rest\/v3\/tags\/stats\/?$/, "/rest/v3/tags/stats"],
  [/^\/rest\/v3\/tags\/?$/, "/rest/v3/tags"],
  [/^\/rest\/v3\/domains\/?$/, "/rest/v3/domains"],
  [/^\/rest\/(v3\/)?health\/?$/, "/rest/health"],
];

/** The template of a REST path, from a fixed list: unknown paths are "/rest/other", so labels stay bounded. */
export function restRouteTemplate(request: Request): string {
  const url = request.url;
  const start = url.indexOf("/rest/");
  const end = url.indexOf("?", start);
  const path = url.slice(start, end === -1 ? undefined : end);
  for (const [pattern, template] of REST_ROUTES) if (pattern.test(path)) return template;
  return "/rest/other";
}
