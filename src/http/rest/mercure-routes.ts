/**
 * GET /rest/v3/mercure-info: where Shlink's web UI subscribes for live updates (this server's own hub) and a
 * token to subscribe with, valid for a day (Shlink's default), until this process stops, or until the API key that
 * fetched it is revoked or expires.
 */
import { Elysia } from "elysia";
import { formatIsoDate } from "../../lib/iso-date";
import type { HttpDeps } from "../deps";
import { jsonResponse } from "../json-response";
import { mercureNotConfigured } from "../realtime/mercure-hub";
import { requireApiKey } from "./auth";

export const MERCURE_TOKEN_LIFETIME_MS = 86_400_000;

export function mercureRoutes(ctx: HttpDeps) {
  const hubUrl = `${ctx.config.baseUrl}/.well-known/mercure`;
  return new Elysia({ name: "mercure" }).get("/rest/v3/mercure-info", ({ request }) => {
    const key = requireApiKey(ctx, request);
    if (!ctx.liveFeed.enabled) throw mercureNotConfigured();
    // Whole seconds, as the token's `exp` claim holds them.
    const expiresAt = Math.floor((Date.now() + MERCURE_TOKEN_LIFETIME_MS) / 1000) * 1000;
    return jsonResponse(
      { mercureHubUrl: hubUrl, token: ctx.mercureTokens.issue(key.id, expiresAt), jwtExpiration: formatIsoDate(expiresAt) },
      { headers: { "Cache-Control": "no-store" } },
    );
  });
}
