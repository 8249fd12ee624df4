/** /rest/v3/audit-events: the audit history (domain/audit-log.ts), our extension in Shlink's list style. Admin keys only. */
import { Elysia } from "elysia";
import { auditEventJson, parseAuditQuery } from "../../domain/audit-log";
import type { HttpDeps } from "../deps";
import { jsonResponse } from "../json-response";
import { pageJson } from "../short-url-json";
import { requireApiKey, searchParams } from "./auth";

export function auditRoutes(ctx: HttpDeps) {
  return new Elysia({ name: "audit" }).get("/rest/v3/audit-events", ({ request }) => {
    const key = requireApiKey(ctx, request);
    const query = parseAuditQuery(searchParams(request), (domain) => ctx.shortUrls.domainKey(domain));
    return jsonResponse({ auditEvents: pageJson(ctx.audit.page(query, key), auditEventJson) });
  });
}
