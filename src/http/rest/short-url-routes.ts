/** /rest/v3/short-urls: Shlink's short URL endpoints. */
import { Elysia } from "elysia";
import { parseShortUrlListQuery } from "../../domain/list-query";
import { parseRedirectRulesInput } from "../../domain/redirect-rules";
import { parseBulkCreateInput, parseCreateInput, parseEditInput } from "../../domain/short-url-input";
import { allLinksResponse } from "../all-links-response";
import type { HttpDeps } from "../deps";
import { jsonResponse } from "../json-response";
import { pageJson, shortUrlJson } from "../short-url-json";
import { requireApiKey, requireQueryApiKey, searchParams } from "./auth";

/** The short code in the path. Elysia yields null when its percent-encoding is broken: use the segment as sent. */
function shortCodeOf(params: { shortCode: string }, request: Request): string {
  if (typeof params.shortCode === "string") return params.shortCode;
  const path = new URL(request.url).pathname;
  return path.slice(path.lastIndexOf("/") + 1);
}

/**
 * A created short URL as Shlink's content negotiation answers it: the bare short URL as text/plain when the query says
 * `format=txt`, or (with no `format`) the first type in Accept is text/plain, as scripts and screenshot tools ask;
 * else the JSON. Errors stay problem+json either way, as in Shlink.
 */
function createdResponse(request: Request, created: { shortUrl: string }): Response {
  const format = searchParams(request).get("format");
  const accept = (request.headers.get("accept") ?? "").split(",")[0] as string;
  const text = format === null ? accept.toLowerCase().includes("text/plain") : format.toLowerCase() === "txt";
  if (!text) return jsonResponse(created);
  return new Response(created.shortUrl, { headers: { "Content-Type": "text/plain; charset=utf-8" } });
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
        return createdResponse(request, json(await ctx.shortUrls.create(parseCreateInput(body), key)));
      })
      // Our extension: many links in one request and one transaction, all or none (domain/short-urls.ts createMany).
      .post("/rest/v3/short-urls/bulk", async ({ request, body }) => {
        const key = requireApiKey(ctx, request);
        const created = await ctx.shortUrls.createMany(parseBulkCreateInput(body), key);
        return jsonResponse({ shortUrls: { data: created.map(json) } });
      })
      // Shlink's single-step create: a GET with the key and the long URL in the query, for third-party integrations.
      .get("/rest/v3/short-urls/shorten", async ({ request }) => {
        const key = requireQueryApiKey(ctx, request);
        const input = parseCreateInput({ longUrl: searchParams(request).get("longUrl") });
        return createdResponse(request, json(await ctx.shortUrls.create(input, key)));
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
