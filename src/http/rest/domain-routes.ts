/** /rest/v3/domains: the default domain and every domain that holds links. */
import { Elysia } from "elysia";
import type { HttpDeps } from "../deps";
import { jsonResponse } from "../json-response";
import { requireApiKey } from "./auth";

const NO_REDIRECTS = { baseUrlRedirect: null, regular404Redirect: null, invalidShortUrlRedirect: null };

export function domainRoutes(ctx: HttpDeps) {
  return new Elysia({ name: "domains" }).get("/rest/v3/domains", ({ request }) => {
    requireApiKey(ctx, request);
    const others = ctx.shortUrls.domains().map((domain) => ({ domain, isDefault: false, redirects: NO_REDIRECTS }));
    return jsonResponse({
      domains: {
        data: [{ domain: ctx.config.defaultDomain, isDefault: true, redirects: NO_REDIRECTS }, ...others],
        defaultRedirects: NO_REDIRECTS,
      },
    });
  });
}
