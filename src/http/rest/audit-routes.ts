/** /rest/v3/audit-events: the audit history (domain/audit-log.ts), our extension in Shlink's list style. Admin keys only. */
import { Elysia } from "elysia";
import { type AuditEvent, parseAuditQuery } from "../../domain/audit-log";
import { formatIsoDate } from "../../lib/iso-date";
import type { HttpDeps } from "../deps";
import { jsonResponse } from "../json-response";
import { pageJson } from "../short-url-json";
import { requireApiKey, searchParams } from "./auth";

function auditEventJson(e: AuditEvent) {
  return {
    id: String(e.id),
    date: formatIsoDate(e.at),
    action: e.action,
    actor: e.actor,
    subject: e.subject,
    shortCode: e.shortCode,
    domain: e.domain,
    details: e.details,
  };
}

export function auditRoutes(ctx: HttpDeps) {
  return new Elysia({ name: "audit" }).get("/rest/v3/audit-events", ({ request }) => {
    const key = requireApiKey(ctx, request);
    const query = parseAuditQuery(searchParams(request), (domain) => ctx.shortUrls.domainKey(domain));
    return jsonResponse({ auditEvents: pageJson(ctx.audit.page(query, key), auditEventJson) });
  });
}
