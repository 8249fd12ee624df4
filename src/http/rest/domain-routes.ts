/** /rest/v3/domains: the domains Shlink would list (domain/domains.ts); a domain's redirects. */
import { Elysia } from "elysia";
import { parseDomainRedirectsInput } from "../../domain/not-found-redirects";
import type { HttpDeps } from "../deps";
import { jsonResponse } from "../json-response";
import { requireApiKey } from "./auth";

export function domainRoutes(ctx: HttpDeps) {
  return new Elysia({ name: "domains" })
    .get("/rest/v3/domains", ({ request }) => {
      requireApiKey(ctx, request);
      return jsonResponse({ domains: { data: ctx.domains.list(), defaultRedirects: ctx.notFoundRedirects.defaults } });
    })
    .patch("/rest/v3/domains/redirects", async ({ request, body }) => {
      const key = requireApiKey(ctx, request);
      return jsonResponse(await ctx.notFoundRedirects.edit(parseDomainRedirectsInput(body), key));
    });
}
