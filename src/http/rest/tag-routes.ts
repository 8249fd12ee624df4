/** /rest/v3/tags: list, stats, rename and delete. */
import { Elysia } from "elysia";
import { type Paging, parseTagListQuery } from "../../domain/list-query";
import { type InvalidElement, invalidData } from "../../errors";
import type { HttpDeps } from "../deps";
import { jsonResponse } from "../json-response";
import { paginationJson } from "../short-url-json";
import { requireApiKey, searchParams } from "./auth";

/** One page of a sorted list, with Shlink's pagination block. */
function page<T>(items: T[], paging: Paging) {
  const all = paging.itemsPerPage === -1;
  const start = all ? 0 : (paging.page - 1) * paging.itemsPerPage;
  const slice = all ? items : items.slice(start, start + paging.itemsPerPage);
  return {
    data: slice,
    pagination: paginationJson({
      page: all ? 1 : paging.page,
      itemsPerPage: all ? Math.max(1, items.length) : paging.itemsPerPage,
      total: items.length,
      items: slice,
    }),
  };
}

export function tagRoutes(ctx: HttpDeps) {
  return new Elysia({ name: "tags" })
    .get("/rest/v3/tags", ({ request }) => {
      requireApiKey(ctx, request);
      const query = parseTagListQuery(searchParams(request));
      return jsonResponse({ tags: page(ctx.tags.names(query.searchTerm, query.order.dir), query) });
    })
    .get("/rest/v3/tags/stats", async ({ request }) => {
      requireApiKey(ctx, request);
      const query = parseTagListQuery(searchParams(request));
      const stats = (await ctx.tags.stats(query.searchTerm, query.order)).map((row) => ({
        tag: row.name,
        shortUrlsCount: row.short_urls,
        visitsSummary: { total: row.visits_total, nonBots: row.visits_total - row.visits_bots, bots: row.visits_bots },
      }));
      return jsonResponse({ tags: page(stats, query) });
    })
    .put("/rest/v3/tags", async ({ request, body }) => {
      const key = requireApiKey(ctx, request);
      const { oldName, newName } = (body ?? {}) as Record<string, unknown>;
      const problems: InvalidElement[] = [];
      if (typeof oldName !== "string" || oldName.trim() === "") problems.push({ field: "oldName", reason: "must be a non-empty string" });
      if (typeof newName !== "string" || newName.trim() === "") problems.push({ field: "newName", reason: "must be a non-empty string" });
      if (problems.length > 0) throw invalidData(problems);
      await ctx.tags.rename((oldName as string).trim(), (newName as string).trim(), key);
      return new Response(null, { status: 204 });
    })
    .delete("/rest/v3/tags", async ({ request }) => {
      const key = requireApiKey(ctx, request);
      const params = searchParams(request);
      const names = [...params.getAll("tags[]"), ...params.getAll("tags")];
      // As Shlink: no tags named means nothing to delete, not an error.
      await ctx.tags.delete(names, key);
      return new Response(null, { status: 204 });
    });
}
