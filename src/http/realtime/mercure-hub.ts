/**
 * GET /.well-known/mercure: the built-in Mercure hub's subscribe endpoint, as Shlink's web UI uses an external
 * hub. The subscriber names exact topics (`topic`, or the newer spec's `match`/`matchExact`; `*` is every topic)
 * and presents a token from /rest/v3/mercure-info: an `Authorization: Bearer` header, else an `authorization` (the
 * web UI's) or `access_token` query parameter, else a `mercureAuthorization` or `mercureAccessToken` cookie.
 * The answer is a text/event-stream. Publishing is not open to clients: events come from this node only.
 */

import type { Server } from "bun";
import { AppError, invalidField, methodNotAllowed } from "../../errors";
import { corsAllows, withCors } from "../cors";
import type { HttpDeps } from "../deps";
import { problemResponse } from "../problem";
import { grants, type MercureTokens } from "./mercure-token";

/** Bun closes a connection that sent nothing for this long: a stuck client's stream ends even without new events. */
const STREAM_IDLE_TIMEOUT_SECONDS = 60;
const MAX_TOPICS = 32;
const MAX_TOPIC_LENGTH = 2048;
const TOPIC_PARAMS = new Set(["topic", "match", "matchExact"]);
const CONTROL_CHARACTERS = /[\u0000-\u001f\u007f-\u009f]/;

export function mercureNotConfigured(): AppError {
  return new AppError(
    501,
    "mercure-not-configured",
    "Mercure integration not configured",
    "The real-time feed is turned off on this server (--realtime-max-subscribers 0).",
  );
}

function missingToken(): AppError {
  return new AppError(
    401,
    "missing-authentication",
    "Invalid authorization",
    "Subscribing needs the token from GET /rest/v3/mercure-info: in an Authorization: Bearer header, the authorization query parameter or the mercureAuthorization cookie.",
    {},
    { "WWW-Authenticate": 'Bearer realm="mercure"' },
  );
}

function invalidToken(): AppError {
  return new AppError(
    401,
    "invalid-token",
    "Invalid authorization",
    "The token is malformed, expired, its API key was revoked, or it was not issued by this server process (tokens do not survive a restart): get a new one from GET /rest/v3/mercure-info.",
    {},
    { "WWW-Authenticate": 'Bearer realm="mercure", error="invalid_token"' },
  );
}

function cookie(request: Request, name: string): string | null {
  const header = request.headers.get("cookie");
  if (header === null) return null;
  for (const part of header.split(";")) {
    const eq = part.indexOf("=");
    if (eq === -1 || part.slice(0, eq).trim() !== name) continue;
    const value = part.slice(eq + 1).trim();
    try {
      return decodeURIComponent(value);
    } catch {
      return value; // broken percent-encoding: as sent, which then fails verification (401), not a 500
    }
  }
  return null;
}

/** The token in the precedence the Mercure spec sets: header, then query parameter, then cookie. */
function presentedToken(request: Request, query: URLSearchParams): string | null {
  const header = request.headers.get("authorization");
  if (header !== null) return /^Bearer\s+(\S+)\s*$/i.exec(header)?.[1] ?? "";
  return (
    query.get("authorization") ??
    query.get("access_token") ??
    cookie(request, "mercureAuthorization") ??
    cookie(request, "mercureAccessToken")
  );
}

/** The requested topics; throws a 400 problem naming the parameter when they are missing or unusable. */
function requestedTopics(query: URLSearchParams): string[] {
  const topics: string[] = [];
  for (const [name, value] of query) {
    if (name.toLowerCase().startsWith("match") && !TOPIC_PARAMS.has(name)) {
      throw invalidField(name, "only exact topics are supported (topic, match or matchExact)");
    }
    if (!TOPIC_PARAMS.has(name)) continue;
    if (value === "" || value.length > MAX_TOPIC_LENGTH || CONTROL_CHARACTERS.test(value)) {
      throw invalidField(name, `must be a topic of 1-${MAX_TOPIC_LENGTH} characters without control characters`);
    }
    topics.push(value);
  }
  if (topics.length === 0) throw invalidField("topic", "name at least one topic, e.g. topic=https://shlink.io/new-visit");
  if (topics.length > MAX_TOPICS) throw invalidField("topic", `at most ${MAX_TOPICS} topics per subscription`);
  return topics;
}

/**
 * CORS preflight answer for an allowed origin: older web UIs subscribe through an EventSource polyfill that sends
 * the token in an Authorization header, which a browser first asks about when the UI is served from another origin.
 */
const PREFLIGHT_HEADERS = {
  "Access-Control-Allow-Methods": "GET",
  "Access-Control-Allow-Headers": "Authorization, Last-Event-ID, Cache-Control",
  "Access-Control-Max-Age": "600",
};

const STREAM_HEADERS = {
  "Content-Type": "text/event-stream",
  "Cache-Control": "private, no-cache, no-store, must-revalidate, max-age=0",
  // Nginx-style proxies must not buffer the stream.
  "X-Accel-Buffering": "no",
  // No history is kept: a reconnecting client learns that it may have missed events (Mercure's reconciliation).
  "Last-Event-ID": "earliest",
};

/** The subscribe handler of the public listener's /.well-known/mercure route. */
export function createMercureHub(ctx: HttpDeps, tokens: MercureTokens) {
  // The token travels in the URL or a header, never a cookie the browser adds, so with the default (*) any origin may
  // read a stream it holds a token for; --cors-allow-origin narrows that as it does for the REST API.
  const cors = ctx.config.corsAllowOrigin;
  return (request: Request, server: Server<undefined>): Response => {
    if (request.method === "OPTIONS") {
      const headers = corsAllows(request, cors) ? PREFLIGHT_HEADERS : {};
      return withCors(request, new Response(null, { status: 204, headers }), cors);
    }
    if (request.method !== "GET") {
      const response = problemResponse(methodNotAllowed(request.method), request);
      response.headers.set("Allow", "GET, OPTIONS");
      return response;
    }
    if (!ctx.liveFeed.enabled) throw mercureNotConfigured();
    const q = request.url.indexOf("?");
    const query = new URLSearchParams(q === -1 ? "" : request.url.slice(q + 1));
    const token = presentedToken(request, query);
    if (token === null) throw missingToken();
    const grant = tokens.verify(token);
    // A token lives no longer than the API key it was fetched with: revoking the key ends its streams too.
    if (grant === null || !ctx.apiKeys.isActive(grant.keyId)) throw invalidToken();
    const topics = requestedTopics(query);
    const refused = topics.find((topic) => !grants(grant, topic));
    if (refused !== undefined) {
      throw new AppError(403, "forbidden-operation", "Forbidden operation", `The token does not allow subscribing to "${refused}".`);
    }
    server.timeout(request, STREAM_IDLE_TIMEOUT_SECONDS);
    const stream = ctx.liveFeed.subscribe(topics, grant.expiresAt, () => ctx.apiKeys.isActive(grant.keyId));
    return withCors(request, new Response(stream, { headers: STREAM_HEADERS }), cors);
  };
}
