/**
 * The public listener's routes, in order of precedence: health, robots.txt, the REST API, then the
 * redirect path. Bun's native router dispatches the redirect path without entering Elysia.
 */
import type { Server } from "bun";
import type { HttpDeps } from "./deps";
import { notFoundResponse } from "./not-found";
import { errorResponse } from "./problem";
import { createRedirectHandler } from "./redirect-handler";
import { createRestApp } from "./rest/rest-app";

function readiness(ctx: HttpDeps): Response {
  const reasons: string[] = [];
  if (ctx.lifecycle.draining) reasons.push("draining");
  if (!ctx.databaseUsable()) reasons.push("database unusable");
  const ready = reasons.length === 0;
  return Response.json(
    { status: ready ? "ready" : "not ready", role: ctx.config.role, reasons },
    { status: ready ? 200 : 503, headers: { "Cache-Control": "no-store" } },
  );
}

function robots(ctx: HttpDeps, request: Request): Response {
  const host = (request.headers.get("host") ?? "").toLowerCase();
  const domain = ctx.customDomains.has(host) ? host : "";
  const allows = ctx.shortUrls.crawlableCodes(domain).map((code) => `Allow: /${code}\n`);
  const body = `# Short links marked crawlable are allowed; everything else is not.\n\nUser-agent: *\n${allows.join("")}Disallow: /\n`;
  return new Response(body, { headers: { "Content-Type": "text/plain; charset=utf-8" } });
}

/** Starts the public listener. `reusePort: false` so a port clash fails loudly. */
export function startPublicServer(ctx: HttpDeps): Server<undefined> {
  const rest = createRestApp(ctx);
  const redirect = createRedirectHandler(ctx);
  const api = (request: Request) => rest.handle(request);
  return Bun.serve({
    hostname: ctx.config.listen.hostname,
    port: ctx.config.listen.port,
    reusePort: false,
    development: false,
    // Bodies are limited by readJsonBody (a problem+json 413); Bun's own limit would answer a bare 413.
    maxRequestBodySize: 2 ** 40,
    routes: {
      "/healthz": () => new Response("ok\n", { headers: { "Cache-Control": "no-store" } }),
      "/readyz": () => readiness(ctx),
      "/robots.txt": (request) => robots(ctx, request),
      "/rest/*": api,
      "/:code": redirect,
      "/:code/": redirect,
    },
    fetch: (request) => notFoundResponse(request),
    error: (error) => errorResponse(error, { where: "public listener" }),
  });
}
