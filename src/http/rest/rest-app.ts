/**
 * The REST API (Shlink v3), assembled in one visible list. Bodies are read here with a byte limit and parsed
 * as JSON; every error leaves through problemResponse.
 */
import { Elysia } from "elysia";
import { AppError, malformedBody, notFound } from "../../errors";
import type { HttpDeps } from "../deps";
import { readJsonBody } from "../json-body";
import { errorResponse, problemResponse } from "../problem";
import { auditRoutes } from "./audit-routes";
import { requireApiKey } from "./auth";
import { domainRoutes } from "./domain-routes";
import { healthRoutes } from "./health-routes";
import { mercureRoutes } from "./mercure-routes";
import { shortUrlRoutes } from "./short-url-routes";
import { tagRoutes } from "./tag-routes";
import { visitRoutes } from "./visit-routes";
import { webhookRoutes } from "./webhook-routes";

export function createRestApp(ctx: HttpDeps) {
  return new Elysia({ name: "rest" })
    .onParse(({ request }) => {
      // Every route with a body needs a key: authenticate first, so an anonymous client learns nothing from its body.
      requireApiKey(ctx, request);
      return readJsonBody(request, ctx.config.maxBodyBytes);
    })
    .onError(({ code, error, request }) => {
      if (code === "NOT_FOUND")
        return problemResponse(notFound(`No route for ${request.method} ${new URL(request.url).pathname}.`), request);
      // Elysia wraps what the body parser throws in a ParseError; the cause is ours.
      if (code === "PARSE") {
        const cause = (error as { cause?: unknown }).cause;
        return problemResponse(cause instanceof AppError ? cause : malformedBody("Request body could not be parsed."), request);
      }
      return errorResponse(error, request, { method: request.method, path: new URL(request.url).pathname });
    })
    .use(healthRoutes(ctx))
    .use(shortUrlRoutes(ctx))
    .use(tagRoutes(ctx))
    .use(webhookRoutes(ctx))
    .use(domainRoutes(ctx))
    .use(visitRoutes(ctx))
    .use(mercureRoutes(ctx))
    .use(auditRoutes(ctx));
}
