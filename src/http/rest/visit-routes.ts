/** /rest/v3 visits: Shlink's overview, visit lists (by short URL, tag, domain, orphan, non-orphan) and deletions. */
import { Elysia } from "elysia";
import { parseVisitsQuery } from "../../domain/visits-query";
import { formatIsoDate } from "../../lib/iso-date";
import type { VisitRecord } from "../../storage/visit-query-store";
import type { HttpDeps } from "../deps";
import { jsonResponse } from "../json-response";
import { pageJson } from "../short-url-json";
import { requireApiKey, searchParams } from "./auth";

/** Shlink's visit object; orphan visits add `type`. Shlink writes missing referers and user agents as "". */
export function visitJson(v: VisitRecord) {
  const located = v.country_code !== null || v.country_name !== null || v.city_name !== null || v.latitude !== null;
  const visitLocation = located
    ? {
        countryCode: v.country_code ?? "",
        countryName: v.country_name ?? "",
        regionName: v.region_name ?? "",
        cityName: v.city_name ?? "",
        latitude: v.latitude ?? 0,
        longitude: v.longitude ?? 0,
        timezone: v.timezone ?? "",
        isEmpty: false,
      }
    : null;
  const base = {
    referer: v.referer ?? "",
    date: formatIsoDate(v.at),
    userAgent: v.user_agent ?? "",
    visitLocation,
    potentialBot: v.potential_bot === 1,
    visitedUrl: v.visited_url,
    redirectUrl: v.redirect_url,
  };
  return v.orphan_type === null ? base : { ...base, type: v.orphan_type };
}

/** A path segment as sent when Elysia could not decode it (broken percent-encoding). */
function param(value: string | undefined, request: Request, fromEnd: number): string {
  if (typeof value === "string") return value;
  const segments = new URL(request.url).pathname.split("/");
  return segments[segments.length - 1 - fromEnd] ?? "";
}

export function visitRoutes(ctx: HttpDeps) {
  const { visitQueries } = ctx;
  /** A client's domain as stored: '' for the default domain (DEFAULT or its host). */
  const domainKey = (domain: string | null) => (domain === null || domain === "" ? undefined : ctx.shortUrls.domainKey(domain));
  return new Elysia({ name: "visits" })
    .get("/rest/v3/visits", ({ request }) => {
      requireApiKey(ctx, request);
      const overview = visitQueries.overview();
      return jsonResponse({
        visits: { ...overview, visitsCount: overview.nonOrphanVisits.total, orphanVisitsCount: overview.orphanVisits.total },
      });
    })
    .get("/rest/v3/visits/orphan", ({ request }) => {
      requireApiKey(ctx, request);
      const query = parseVisitsQuery(searchParams(request), { orphans: true });
      return jsonResponse({ visits: pageJson(visitQueries.orphanVisits(query), visitJson) });
    })
    .delete("/rest/v3/visits/orphan", async ({ request }) => {
      const key = requireApiKey(ctx, request);
      return jsonResponse({ deletedVisits: await visitQueries.deleteOrphanVisits(key) });
    })
    .get("/rest/v3/visits/non-orphan", ({ request }) => {
      requireApiKey(ctx, request);
      const params = searchParams(request);
      const query = { ...parseVisitsQuery(params), domain: domainKey(params.get("domain")) };
      return jsonResponse({ visits: pageJson(visitQueries.nonOrphanVisits(query), visitJson) });
    })
    .get("/rest/v3/short-urls/:shortCode/visits", ({ request, params }) => {
      requireApiKey(ctx, request);
      const query = searchParams(request);
      const page = visitQueries.shortUrlVisits(param(params.shortCode, request, 1), query.get("domain"), parseVisitsQuery(query));
      return jsonResponse({ visits: pageJson(page, visitJson) });
    })
    .delete("/rest/v3/short-urls/:shortCode/visits", async ({ request, params }) => {
      const key = requireApiKey(ctx, request);
      const deleted = await visitQueries.deleteShortUrlVisits(
        param(params.shortCode, request, 1),
        searchParams(request).get("domain"),
        key,
      );
      return jsonResponse({ deletedVisits: deleted });
    })
    .get("/rest/v3/tags/:tag/visits", ({ request, params }) => {
      requireApiKey(ctx, request);
      const query = searchParams(request);
      const visits = visitQueries.tagVisits(param(params.tag, request, 1), {
        ...parseVisitsQuery(query),
        domain: domainKey(query.get("domain")),
      });
      return jsonResponse({ visits: pageJson(visits, visitJson) });
    })
    .get("/rest/v3/domains/:domain/visits", ({ request, params }) => {
      requireApiKey(ctx, request);
      const key = ctx.domains.visitsKey(param(params.domain, request, 1));
      const visits = visitQueries.domainVisits(key, parseVisitsQuery(searchParams(request)));
      return jsonResponse({ visits: pageJson(visits, visitJson) });
    });
}
