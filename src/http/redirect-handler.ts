/**
 * The hot path: GET/HEAD /{shortCode}. Reads the LRU (one prepared SELECT on a miss), counts the visit in
 * memory and answers. It never writes to the database.
 */

import type { Server } from "bun";
import { isbot } from "isbot";
import type { Resolution } from "../domain/link-resolver";
import { ruleTarget } from "../domain/redirect-rules";
import { cropText, VISIT_FIELD_LIMITS, type Visit } from "../domain/visit";
import { methodNotAllowed, passwordChecksBusy, tooManyPasswordAttempts, wrongLinkPassword } from "../errors";
import type { HttpDeps } from "./deps";
import { hostAndPath, notFoundRedirect, notFoundResponse } from "./not-found";
import { passwordPage, readPasswordForm } from "./password-page";
import { problemResponse } from "./problem";
import { type ClientIpResolver, rememberRequestId } from "./request-context";
import { trackingFilter } from "./tracking-filter";

const BOT_MEMO_LIMIT = 2048;

/**
 * isbot, memoised per user agent: a handful of agents make almost all traffic. It reads what a visit keeps of the
 * agent (VISIT_FIELD_LIMITS), so `potentialBot` says what the stored agent says, and a longer agent costs what one
 * of that length does: isbot takes ~10 µs on 512 characters and ~200 µs on 16 000, which a client sending new
 * ones each time would make every request pay. Those are not memoised: a slice may hold its whole agent alive.
 */
function botDetector(): (userAgent: string | null) => boolean {
  const memo = new Map<string, boolean>();
  return (userAgent) => {
    if (userAgent === null || userAgent === "") return false;
    if (userAgent.length > VISIT_FIELD_LIMITS.userAgent) return isbot(cropText(userAgent, VISIT_FIELD_LIMITS.userAgent));
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

type VisitCapture = (request: Request, server: Server<undefined> | undefined, at: number, bot: boolean, userAgent: string | null) => Visit;

/** Builds the visit record of a request (its link and Location are filled in once resolved). */
function visitCapture(visitorIp: ClientIpResolver): VisitCapture {
  return (request, server, at, bot, userAgent) => {
    return {
      link: null,
      orphanType: null,
      at,
      bot,
      referer: request.headers.get("referer"),
      userAgent,
      ip: visitorIp(request, server),
      visitedUrl: request.url,
      redirectUrl: null,
    };
  };
}

/**
 * Records an orphan visit (Shlink's `base_url` for "/", `regular_404` for any other unknown path), unless
 * --track-orphan-visits is off, and answers 404.
 * Used by the public listener's fallback route.
 */
export function createOrphanHandler(ctx: HttpDeps, visitorIp: ClientIpResolver) {
  const isBot = botDetector();
  const capture = visitCapture(visitorIp);
  const skipped = trackingFilter(ctx.config.skipTrackingFrom);
  const track = ctx.config.trackOrphanVisits;
  return (request: Request, server: Server<undefined>): Response => {
    const method = request.method;
    if (method !== "GET" && method !== "HEAD") return notFoundResponse(request);
    const { host, path } = hostAndPath(request);
    const type = path === "/" ? "base_url" : "regular_404";
    if (track) {
      const userAgent = request.headers.get("user-agent");
      const visit = capture(request, server, Date.now(), method === "HEAD" || isBot(userAgent), userAgent);
      visit.orphanType = type;
      if (!skipped(visit.ip)) ctx.visits.captureOrphan(visit);
    }
    const target = ctx.notFoundRedirects.target(type, host, path);
    return target === null ? notFoundResponse(request) : notFoundRedirect(target, ctx.config.redirectStatus);
  };
}

/**
 * A transparent 1×1 GIF: what Shlink's tracking pixel, `/{shortCode}/track`, answers for a link it counts a visit to
 * (for e-mails and pages that embed it as an image).
 */
const PIXEL = Buffer.from("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7", "base64");

/**
 * A link's tracking pixel: the visit is counted as a redirect's is, and nothing redirects. Never cached, or a
 * reopened mail would not count.
 */
function pixelResponse(method: string, requestId: string): Response {
  return new Response(method === "HEAD" ? null : PIXEL, {
    headers: {
      "Content-Type": "image/gif",
      "Content-Length": String(PIXEL.byteLength),
      "Cache-Control": "no-store",
      "X-Request-Id": requestId,
    },
  });
}

/**
 * GET/HEAD /{shortCode} (`answer` "redirect"), or the link's tracking pixel /{shortCode}/track (`answer` "pixel"):
 * the same lookup, counting and refusals, but the pixel applies no redirect rule and keeps no redirect URL (nor asks
 * a password-protected link's password: it reveals nothing). A password-protected link answers GET/HEAD with its
 * password form, and POST with its redirect once the password is right (see `unlock`).
 */
export function createRedirectHandler(ctx: HttpDeps, visitorIp: ClientIpResolver, answer: "redirect" | "pixel" = "redirect") {
  const { resolver, config, customDomains, metrics, visits, notFoundRedirects: notFound, linkPasswords } = ctx;
  const cacheControl = `private, max-age=${config.redirectMaxAge}`;
  const isBot = botDetector();
  const capture = visitCapture(visitorIp);
  const skipped = trackingFilter(config.skipTrackingFrom);
  const trackOrphans = config.trackOrphanVisits;

  const respond = (
    request: Request,
    resolution: Resolution & { kind: "redirect" },
    requestId: string,
    visit: Visit,
    tracked: boolean,
    posted = false,
  ): Response => {
    const link = resolution.link;
    metrics.recordRedirect(resolution.cached ? "hit" : "miss");
    if (answer === "pixel") {
      if (tracked) {
        visit.link = link;
        visits.capture(visit);
      }
      return pixelResponse(request.method, requestId);
    }
    const longUrl =
      link.rules === null
        ? link.longUrl
        : ruleTarget(
            link.rules,
            { userAgent: visit.userAgent, acceptLanguage: request.headers.get("accept-language"), url: visit.visitedUrl },
            link.longUrl,
          );
    const location = link.forwardQuery ? forwardedLocation(longUrl, visit.visitedUrl) : longUrl;
    if (tracked) {
      visit.link = link;
      visit.redirectUrl = location;
      visits.capture(visit);
    }
    // After a password's POST, 303 whatever the link's status: a 307 or 308 would post the password on to the target.
    if (posted)
      return new Response(null, { status: 303, headers: { Location: location, "Cache-Control": "no-store", "X-Request-Id": requestId } });
    // The request id goes in with the other headers: setting it afterwards costs the hot path a second pass.
    return new Response(null, {
      status: link.status ?? config.redirectStatus,
      headers: { Location: location, "Cache-Control": cacheControl, "X-Request-Id": requestId },
    });
  };
  const refuse = (
    request: Request,
    code: string,
    outcome: "not_found" | "expired",
    requestId: string,
    visit: Visit,
    tracked: boolean,
  ): Response => {
    metrics.recordRedirect(outcome);
    rememberRequestId(request, requestId);
    visit.orphanType = "invalid_short_url";
    if (tracked && trackOrphans) visits.captureOrphan(visit);
    const { host, path } = hostAndPath(request);
    const target = notFound.target("invalid_short_url", host, path);
    const response = target === null ? notFoundResponse(request, code) : notFoundRedirect(target, config.redirectStatus);
    response.headers.set("X-Request-Id", requestId);
    return response;
  };

  /** A code on the request's custom domain when it has one there, else on the default domain. */
  const resolve = (request: Request, code: string, bot: boolean, now: number, count: boolean, unlocked: boolean): Resolution => {
    if (customDomains.size > 0) {
      const host = (request.headers.get("host") ?? "").toLowerCase();
      if (customDomains.has(host)) {
        const onDomain = resolver.resolveAndCount(host, code, bot, now, count, unlocked);
        if (onDomain.kind !== "not-found") return onDomain;
      }
    }
    return resolver.resolveAndCount("", code, bot, now, count, unlocked);
  };
  const notAllowed = (request: Request, requestId: string, allow: string): Response => {
    rememberRequestId(request, requestId);
    const response = problemResponse(methodNotAllowed(request.method), request);
    response.headers.set("Allow", allow);
    response.headers.set("X-Request-Id", requestId);
    return response;
  };

  /**
   * POST /{shortCode} with a password-protected link's password: checked through the gate (domain/link-passwords.ts),
   * then counted and redirected as a GET would have been, with the Referer the visitor first came with.
   */
  const unlock = async (
    request: Request & { params: { code: string } },
    server: Server<undefined>,
    requestId: string,
  ): Promise<Response> => {
    const code = request.params.code;
    const userAgent = request.headers.get("user-agent");
    const bot = isBot(userAgent);
    const found = resolve(request, code, bot, Date.now(), false, true);
    if (found.kind === "expired")
      return refuse(request, code, "expired", requestId, capture(request, server, Date.now(), bot, userAgent), false);
    if (found.kind !== "redirect" || found.link.passwordHash === null) return notAllowed(request, requestId, "GET, HEAD");
    const hash = found.link.passwordHash;
    const form = await readPasswordForm(request);
    const ip = visitorIp(request, server);
    const outcome = await linkPasswords.unlock(found.link.id, hash, form.password, ip);
    metrics.recordPasswordAttempt(outcome.kind);
    if (outcome.kind === "limited")
      return passwordPage(request, requestId, code, tooManyPasswordAttempts(outcome.retryAfterSeconds), form.referer);
    if (outcome.kind === "busy") return passwordPage(request, requestId, code, passwordChecksBusy(outcome.retryAfterSeconds), form.referer);
    // The link may have changed while the password was checked: it must still be there, with that same password.
    const now = Date.now();
    if (outcome.kind === "wrong" || resolver.lookup(found.link.domain, code)?.passwordHash !== hash) {
      return passwordPage(request, requestId, code, wrongLinkPassword(code), form.referer);
    }
    const visit = capture(request, server, now, bot, userAgent);
    visit.referer = form.referer;
    const tracked = !skipped(visit.ip);
    const resolution = resolve(request, code, bot, now, tracked, true);
    if (resolution.kind === "redirect") return respond(request, resolution, requestId, visit, tracked, true);
    return refuse(request, code, resolution.kind === "expired" ? "expired" : "not_found", requestId, visit, tracked);
  };

  return (request: Request & { params: { code: string } }, server: Server<undefined>, requestId: string): Response | Promise<Response> => {
    const method = request.method;
    if (method !== "GET" && method !== "HEAD") {
      if (method === "POST" && answer === "redirect") return unlock(request, server, requestId);
      // Allow names what this resource takes: a password-protected link takes its password by POST (counting nothing).
      const locked = answer === "redirect" && resolve(request, request.params.code, true, Date.now(), false, false).kind === "locked";
      return notAllowed(request, requestId, locked ? "GET, HEAD, POST" : "GET, HEAD");
    }
    const code = request.params.code;
    const userAgent = request.headers.get("user-agent");
    const bot = method === "HEAD" || isBot(userAgent);
    const now = Date.now();
    const visit = capture(request, server, now, bot, userAgent);
    const tracked = !skipped(visit.ip);
    const resolution = resolve(request, code, bot, now, tracked, answer === "pixel");
    if (resolution.kind === "redirect") return respond(request, resolution, requestId, visit, tracked);
    if (resolution.kind === "locked") {
      metrics.recordRedirect("locked");
      return passwordPage(request, requestId, code, null, visit.referer);
    }
    return refuse(request, code, resolution.kind === "expired" ? "expired" : "not_found", requestId, visit, tracked);
  };
}
