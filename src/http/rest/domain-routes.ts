/** /rest/v3/domains: the default domain and every domain that holds links or sets redirects; a domain's redirects. */
import { Elysia } from "elysia";
import { NO_REDIRECTS, parseDomainRedirectsInput } from "../../domain/not-found-redirects";
import type { HttpDeps } from "../deps";
import { jsonResponse } from "../json-response";
import { requireApiKey } from "./auth";

export function domainRoutes(ctx: HttpDeps) {
  return new Elysia({ name: "domains" })
    .get("/rest/v3/domains", ({ request }) => {
      requireApiKey(ctx, request);
      const own = ctx.notFoundRedirects.all();
      const withLinks = ctx.shortUrls.domains();
      const others = [...withLinks, ...[...own.keys()].filter((d) => d !== "" && !withLinks.includes(d))];
      return jsonResponse({
        domains: {
          data: [
            // The default domain's as they apply: its own where it sets them, else the settings'.
            { domain: ctx.config.defaultDomain, isDefault: true, redirects: ctx.notFoundRedirects.applied(own.get("") ?? NO_REDIRECTS) },
            ...others.map((domain) => ({ domain, isDefault: false, redirects: own.get(domain) ?? NO_REDIRECTS })),
          ],
          defaultRedirects: ctx.notFoundRedirects.defaults,
        },
      });
    })
    .patch("/rest/v3/domains/redirects", async ({ request, body }) => {
      const key = requireApiKey(ctx, request);
      return jsonResponse(await ctx.notFoundRedirects.edit(parseDomainRedirectsInput(body), key));
    });
}
