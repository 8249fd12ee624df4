/**
 * The public listener's routes, in order of precedence: health, robots.txt, the REST API, then the
 * redirect path and each link's tracking pixel (/{shortCode}/track). Bun's native router dispatches those without
 * entering Elysia. Every route is instrumented (request id, metrics, access log).
 */
import type { Server } from "bun";
import { preflight, withCors } from "./cors";
import type { HttpDeps } from "./deps";
import { type Instrumentation, instrumented, restRouteTemplate } from "./instrument";
import { jsonResponse } from "./json-response";
import { errorResponse } from "./problem";
import { createMercureHub } from "./realtime/mercure-hub";
import { createOrphanHandler, createRedirectHandler } from "./redirect-handler";
import { clientIpResolver, visitorIpResolver } from "./request-context";
import { createRestApp } from "./rest/rest-app";

/** Why this node should not get traffic, or [] when it should. */
export function notReadyReasons(ctx: HttpDeps): string[] {
  const reasons: string[] = [];
  if (ctx.lifecycle.draining) reasons.push("draining");
  if (!ctx.databaseUsable()) reasons.push("database unusable");
  else {
    const replica = ctx.replicaProblem();
    if (replica !== null) reasons.push(replica);
  }
  return reasons;
}

/**
 * 200 "ready", 503 "not ready", or 200 "degraded" while the replica lags: redirects go on and link writes are
 * refused, but readiness holds, because the only node Caddy could fail over to follows that same lagging replica:
 * it would serve staler links and refuse writes too.
 */
function readiness(ctx: HttpDeps): Response {
  const reasons = notReadyReasons(ctx);
  const ready = reasons.length === 0;
  const replication = ctx.replication?.status();
  if (replication?.ok === false) reasons.push("replication lagging: link writes refused");
  const status = !ready ? "not ready" : replication?.ok === false ? "degraded" : "ready";
  return jsonResponse(
    { status, role: ctx.config.role, reasons, ...(replication === undefined ? {} : { replication }) },
    { status: ready ? 200 : 503, headers: { "Cache-Control": "no-store" } },
  );
}

/** robots.txt's body for a list of crawlable codes; the list is the same object until a link write changes it. */
const robotsBodies = new WeakMap<readonly string[], { body: string; bytes: number }>();

function robots(ctx: HttpDeps, request: Request): Response {
  const host = (request.headers.get("host") ?? "").toLowerCase();
  const domain = ctx.customDomains.has(host) ? host : "";
  const codes = ctx.shortUrls.crawlableCodes(domain);
  let cached = robotsBodies.get(codes);
  if (cached === undefined) {
    const allows = codes.map((code) => `Allow: /${code}\n`).join("");
    const body = `# Short links marked crawlable are allowed; everything else is not.\n\nUser-agent: *\n${allows}Disallow: /\n`;
    cached = { body, bytes: Buffer.byteLength(body) };
    robotsBodies.set(codes, cached);
  }
  return new Response(cached.body, {
    headers: { "Content-Type": "text/plain; charset=utf-8", "Content-Length": String(cached.bytes) },
  });
}

/**
 * Shlink serves its REST API under /rest/v1 and /rest/v2 with the same handlers as /rest/v3, so integrations set up
 * against an older path (a screenshot tool's /rest/v2/short-urls/shorten) keep working: the same here.
 */
export function asCurrentVersion(request: Request): Request {
  const url = request.url;
  const at = url.indexOf("/rest/v");
  const version = url[at + 7];
  if (at === -1 || (version !== "1" && version !== "2") || url[at + 8] !== "/") return request;
  return new Request(`${url.slice(0, at)}/rest/v3${url.slice(at + 8)}`, request);
}

/** How long a REST DELETE may run without sending anything (Bun's default idle timeout is 10 s). */
const REST_DELETE_TIMEOUT_SECONDS = 300;

/** Starts the public listener. `reusePort: false` so a port clash fails loudly. */
export function startPublicServer(ctx: HttpDeps): Server<undefined> {
  const rest = createRestApp(ctx);
  const clientIp = clientIpResolver(ctx.config.listen.hostname, ctx.config.trustedProxies);
  const visitorIp = visitorIpResolver(clientIp, ctx.config.trustedProxies);
  const redirect = createRedirectHandler(ctx, visitorIp);
  const inst: Instrumentation = { metrics: ctx.metrics, clientIp, tracing: ctx.tracing };
  const redirectRoute = instrumented("/{shortCode}", redirect as (request: Request) => Response, inst, { setsRequestId: true });
  const pixel = createRedirectHandler(ctx, visitorIp, "pixel");
  const pixelRoute = instrumented("/{shortCode}/track", pixel as (request: Request) => Response, inst, { setsRequestId: true });
  return Bun.serve({
    hostname: ctx.config.listen.hostname,
    port: ctx.config.listen.port,
    reusePort: false,
    development: false,
    // Bodies are limited by readJsonBody (a problem+json 413); Bun's own limit would answer a bare 413.
    maxRequestBodySize: 2 ** 40,
    routes: {
      "/healthz": instrumented(
        "/healthz",
        () => new Response("ok\n", { headers: { "Cache-Control": "no-store", "Content-Length": "3" } }),
        inst,
      ),
      "/readyz": instrumented("/readyz", () => readiness(ctx), inst),
      "/robots.txt": instrumented("/robots.txt", (request) => robots(ctx, request), inst),
      "/.well-known/mercure": instrumented("/.well-known/mercure", createMercureHub(ctx, ctx.mercureTokens), inst),
      "/rest/*": instrumented(
        restRouteTemplate,
        async (request, server) => {
          const cors = ctx.config.corsAllowOrigin;
          if (request.method === "OPTIONS") return preflight(request, cors);
          // Deleting a link's millions of visits (in batches) can outlast Bun's 10 s idle timeout, which would cut the
          // answer off while the work goes on; a DELETE may stay quiet longer.
          if (request.method === "DELETE") server.timeout(request, REST_DELETE_TIMEOUT_SECONDS);
          return withCors(request, await rest.handle(asCurrentVersion(request)), cors);
        },
        inst,
      ),
      "/:code": redirectRoute,
      "/:code/": redirectRoute,
      "/:code/track": pixelRoute,
    },
    fetch: instrumented("other", createOrphanHandler(ctx, visitorIp), inst),
    error: (error) => errorResponse(error, undefined, { where: "public listener" }),
  });
}
