/** /rest/v3/short-urls: Shlink's short URL endpoints. */
import { Elysia } from "elysia";
import { parseShortUrlListQuery } from "../../domain/list-query";
import { parseRedirectRulesInput } from "../../domain/redirect-rules";
import { parseCreateInput, parseEditInput } from "../../domain/short-url-input";
import { allLinksResponse } from "../all-links-response";
import type { HttpDeps } from "../deps";
import { jsonResponse } from "../json-response";
import { pageJson, shortUrlJson } from "../short-url-json";
import { requireApiKey, searchParams } from "./auth";

/** The short code in the path. Elysia yields null when its percent-encoding is broken: use the segment as sent. */
function shortCodeOf(params: { shortCode: string }, request: Request): string {
  if (typeof params.shortCode === "string") return params.shortCode;
  const path = new URL(request.url).pathname;
  return path.slice(path.lastIndexOf("/") + 1);
}

export function shortUrlRoutes(ctx: HttpDeps) {
  const json = (s: Parameters<typeof shortUrlJson>[0]) => shortUrlJson(s, ctx.config.baseUrl);
  const setRules = async (request: Request, params: { shortCode: string }, body: unknown) => {
    const key = requireApiKey(ctx, request);
    const code = shortCodeOf(params, request);
    return jsonResponse(await ctx.redirectRules.set(code, searchParams(request).get("domain"), parseRedirectRulesInput(body), key));
  };
  return (
    new Elysia({ name: "short-urls" })
      .get("/rest/v3/short-urls", async ({ request }) => {
        requireApiKey(ctx, request);
        const query = parseShortUrlListQuery(searchParams(request), ctx.config.defaultDomain, Date.now());
        if (query.itemsPerPage === -1) return allLinksResponse(await ctx.shortUrls.listAll(query), json);
        return jsonResponse({ shortUrls: pageJson(await ctx.shortUrls.list(query), json) });
      })
      .post("/rest/v3/short-urls", async ({ request, body }) => {
        const key = requireApiKey(ctx, request);
        return jsonResponse(json(await ctx.shortUrls.create(parseCreateInput(body), key)));
      })
      .get("/rest/v3/short-urls/:shortCode", ({ request, params }) => {
        requireApiKey(ctx, request);
        return jsonResponse(json(ctx.shortUrls.get(shortCodeOf(params, request), searchParams(request).get("domain"))));
      })
      .patch("/rest/v3/short-urls/:shortCode", async ({ request, params, body }) => {
        const key = requireApiKey(ctx, request);
        const edited = await ctx.shortUrls.edit(
          shortCodeOf(params, request),
          searchParams(request).get("domain"),
          parseEditInput(body),
          key,
        );
        return jsonResponse(json(edited));
      })
      .get("/rest/v3/short-urls/:shortCode/redirect-rules", ({ request, params }) => {
        requireApiKey(ctx, request);
        return jsonResponse(ctx.redirectRules.get(shortCodeOf(params, request), searchParams(request).get("domain")));
      })
      // Shlink answers both POST and PATCH with the same replace-everything semantics.
      .post("/rest/v3/short-urls/:shortCode/redirect-rules", ({ request, params, body }) => setRules(request, params, body))
      .patch("/rest/v3/short-urls/:shortCode/redirect-rules", ({ request, params, body }) => setRules(request, params, body))
      .delete("/rest/v3/short-urls/:shortCode", async ({ request, params }) => {
        const key = requireApiKey(ctx, request);
        await ctx.shortUrls.delete(shortCodeOf(params, request), searchParams(request).get("domain"), key);
        return new Response(null, { status: 204 });
      })
  );
}
