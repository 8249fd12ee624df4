/**
 * Cross-origin access to the REST API (and the real-time feed), as Shlink gives it, so that Shlink's web client
 * served from another origin (the hosted one, or a container of it) can call this server from a browser. A request
 * with an `Origin` gets `Access-Control-Allow-Origin` when the origin is allowed; a preflight (OPTIONS) is answered
 * 204 here, before authentication, with the methods, the headers the browser asked for and how long it may keep it.
 */
import type { CorsOrigins } from "../lib/cors-origins";

/** How long a browser may reuse a preflight answer, in seconds (Shlink's default). */
const PREFLIGHT_MAX_AGE = "3600";
const METHODS = "GET, POST, PUT, PATCH, DELETE, OPTIONS";

/** The Access-Control-Allow-Origin value for a request's origin, or null when it is not allowed. */
function allowedOrigin(origin: string, allowed: CorsOrigins): string | null {
  if (allowed === "*") return "*";
  if (allowed === "<origin>") return origin;
  return allowed.includes(origin.toLowerCase()) ? origin : null;
}

/** Whether the request comes from an origin allowed to read the answer (false without an `Origin`). */
export function corsAllows(request: Request, allowed: CorsOrigins): boolean {
  const origin = request.headers.get("origin");
  return origin !== null && allowedOrigin(origin, allowed) !== null;
}

/** Adds the CORS headers a request with an `Origin` gets; a request without one goes unchanged. */
export function withCors(request: Request, response: Response, allowed: CorsOrigins): Response {
  const origin = request.headers.get("origin");
  if (origin === null) return response;
  const allow = allowedOrigin(origin, allowed);
  // The answer depends on the Origin unless it is "*": caches must keep one per origin.
  if (allowed !== "*") response.headers.append("Vary", "Origin");
  if (allow === null) return response;
  response.headers.set("Access-Control-Allow-Origin", allow);
  response.headers.set("Access-Control-Expose-Headers", "X-Request-Id");
  return response;
}

/** A preflight's answer: 204, with the CORS headers when the origin is allowed. */
export function preflight(request: Request, allowed: CorsOrigins): Response {
  const headers: Record<string, string> = {};
  if (corsAllows(request, allowed)) {
    headers["Access-Control-Allow-Methods"] = METHODS;
    headers["Access-Control-Max-Age"] = PREFLIGHT_MAX_AGE;
    const asked = request.headers.get("access-control-request-headers");
    if (asked !== null) headers["Access-Control-Allow-Headers"] = asked;
  }
  return withCors(request, new Response(null, { status: 204, headers }), allowed);
}
