/**
 * The hot path: GET/HEAD /{shortCode}. Reads the LRU (one prepared SELECT on a miss), counts the visit in
 * memory and answers. It never writes to the database.
 */
import { isbot } from "isbot";
import type { Resolution } from "../domain/link-resolver";
import { methodNotAllowed } from "../errors";
import type { HttpDeps } from "./deps";
import { notFoundResponse } from "./not-found";
import { problemResponse } from "./problem";

const BOT_MEMO_LIMIT = 2048;

/** isbot, memoised per user agent: a handful of agents make almost all traffic. */
function botDetector(): (userAgent: string | null) => boolean {
  const memo = new Map<string, boolean>();
  return (userAgent) => {
    if (userAgent === null || userAgent === "") return false;
    let bot = memo.get(userAgent);
    if (bot === undefined) {
      bot = isbot(userAgent);
      if (memo.size >= BOT_MEMO_LIMIT) memo.clear();
      memo.set(userAgent, bot);
    }
    return bot;
  };
}

/** The target with the visit's query merged in (the visit's parameters win), as Shlink's forwardQuery does. */
export function forwardedLocation(longUrl: string, requestUrl: string): string {
  const q = requestUrl.indexOf("?");
  if (q === -1 || q === requestUrl.length - 1) return longUrl;
  const incoming = new URLSearchParams(requestUrl.slice(q + 1));
  const target = new URL(longUrl);
  for (const key of new Set(incoming.keys())) target.searchParams.delete(key);
  for (const [key, value] of incoming) target.searchParams.append(key, value);
  return target.href;
}

export function createRedirectHandler(ctx: HttpDeps) {
  const { resolver, config, customDomains, metrics } = ctx;
  const cacheControl = `private, max-age=${config.redirectMaxAge}`;
  const isBot = botDetector();

  const respond = (resolution: Resolution & { kind: "redirect" }, request: Request, requestId: string): Response => {
    const link = resolution.link;
    metrics.recordRedirect(resolution.cached ? "hit" : "miss");
    // The request id goes in with the other headers: setting it afterwards costs the hot path a second pass.
    return new Response(null, {
      status: link.status ?? config.redirectStatus,
      headers: {
        Location: link.forwardQuery ? forwardedLocation(link.longUrl, request.url) : link.longUrl,
        "Cache-Control": cacheControl,
        "X-Request-Id": requestId,
      },
    });
  };
  const refuse = (request: Request, code: string, outcome: "not_found" | "expired", requestId: string): Response => {
    metrics.recordRedirect(outcome);
    const response = notFoundResponse(request, code);
    response.headers.set("X-Request-Id", requestId);
    return response;
  };

  return (request: Request & { params: { code: string } }, _server: unknown, requestId: string): Response => {
    const method = request.method;
    if (method !== "GET" && method !== "HEAD") {
      const response = problemResponse(methodNotAllowed(method), request);
      response.headers.set("Allow", "GET, HEAD");
      response.headers.set("X-Request-Id", requestId);
      return response;
    }
    const code = request.params.code;
    const bot = method === "HEAD" || isBot(request.headers.get("user-agent"));
    const now = Date.now();
    if (customDomains.size > 0) {
      const host = (request.headers.get("host") ?? "").toLowerCase();
      if (customDomains.has(host)) {
        const onDomain = resolver.resolveAndCount(host, code, bot, now);
        if (onDomain.kind === "redirect") return respond(onDomain, request, requestId);
        if (onDomain.kind === "expired") return refuse(request, code, "expired", requestId);
      }
    }
    const resolution = resolver.resolveAndCount("", code, bot, now);
    if (resolution.kind === "redirect") return respond(resolution, request, requestId);
    return refuse(request, code, resolution.kind === "expired" ? "expired" : "not_found", requestId);
  };
}
