/**
 * The audit history: who changed what, and when, for every change made through the API (by which key) or the CLI
 * (by which login). Each event is written inside its change's transaction (`record`), so a refused or rolled-back
 * change leaves none and a committed one always has one. Never sees HTTP.
 */
import { userInfo } from "node:os";
import { forbidden, type InvalidElement, invalidData } from "../errors";
import { formatIsoDate } from "../lib/iso-date";
import type { AuditFilter, AuditRow, AuditStore } from "../storage/audit-store";
import type { ApiKey } from "./api-keys";
import { dateRangeParams, wholeParam } from "./query-params";
import type { CreateShortUrlInput } from "./short-url-input";
import type { ShortUrl } from "./short-urls";

export type AuditAction =
  | "short-url.created"
  | "short-url.imported"
  | "short-url.edited"
  | "short-url.deleted"
  | "short-url.redirect-rules-set"
  | "short-url.visits-deleted"
  | "orphan-visits.deleted"
  | "tag.renamed"
  | "tags.deleted"
  | "domain.redirects-edited"
  | "webhook.created"
  | "webhook.edited"
  | "webhook.deleted"
  | "webhook.secret-rotated"
  | "webhook.delivery-retried"
  | "api-key.created"
  | "api-key.revoked";

/** Who made a change: an API key (by its name, never reused) or someone at the command line (by login name). */
export interface AuditActor {
  type: "api-key" | "cli";
  name: string;
  apiKeyId: number | null;
}

export const keyActor = (key: ApiKey): AuditActor => ({ type: "api-key", name: key.name, apiKeyId: key.id });

/** Whoever runs this process: the login name of a `shortener keys …` or `webhooks …` command. */
export function cliActor(): AuditActor {
  let name = process.env.SUDO_USER || "";
  if (name === "") {
    try {
      name = userInfo().username;
    } catch {
      name = `uid ${process.getuid?.() ?? "unknown"}`;
    }
  }
  return { type: "cli", name, apiKeyId: null };
}

/** A link's event names the link; other events name what they changed ("tag foo", "webhook 3", "key ci"). */
export type AuditSubject = string | { domain: string; shortCode: string };

export interface AuditEvent {
  id: number;
  at: number;
  action: string;
  actor: { type: "api-key" | "cli"; name: string };
  subject: string;
  shortCode: string | null;
  /** null for the default domain, as in Shlink's short URLs. */
  domain: string | null;
  details: Record<string, unknown>;
}

/** An event as the API and `shortener audit --json` write it. */
export function auditEventJson(e: AuditEvent) {
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

const isoOrNull = (ms: number | null) => (ms === null ? null : formatIsoDate(ms));

/** What an audit event keeps of a link: what a client sets, not its visit counts (a deletion keeps all of it). */
export function linkFacts(link: ShortUrl): Record<string, unknown> {
  return {
    longUrl: link.longUrl,
    title: link.title,
    tags: link.tags,
    crawlable: link.crawlable,
    forwardQuery: link.forwardQuery,
    redirectStatus: link.redirectStatus,
    validSince: isoOrNull(link.validSince),
    validUntil: isoOrNull(link.validUntil),
    maxVisits: link.maxVisits,
    passwordProtected: link.passwordProtected,
  };
}

/**
 * What a creation set, from its input: the long URL, and the other fields only where they differ from a new link's
 * defaults, so the event of each of a million links created stays a few dozen bytes.
 */
export function createdFacts(input: CreateShortUrlInput): Record<string, unknown> {
  const facts: Record<string, unknown> = { longUrl: input.longUrl };
  if (input.title != null) facts.title = input.title;
  if (input.tags !== undefined && input.tags.length > 0) facts.tags = input.tags;
  if (input.crawlable) facts.crawlable = true;
  if (input.forwardQuery === false) facts.forwardQuery = false;
  if (input.redirectStatus != null) facts.redirectStatus = input.redirectStatus;
  if (input.validSince != null) facts.validSince = formatIsoDate(input.validSince);
  if (input.validUntil != null) facts.validUntil = formatIsoDate(input.validUntil);
  if (input.maxVisits != null) facts.maxVisits = input.maxVisits;
  if (typeof input.password === "string") facts.passwordProtected = true;
  return facts;
}

/** The fields an edit changed, each `{from, to}`; the fields it left as they were are not listed. */
export function linkChanges(before: ShortUrl, after: ShortUrl): Record<string, { from: unknown; to: unknown }> {
  const was = linkFacts(before);
  const now = linkFacts(after);
  const changes: Record<string, { from: unknown; to: unknown }> = {};
  for (const [field, value] of Object.entries(now)) {
    if (JSON.stringify(value) !== JSON.stringify(was[field])) changes[field] = { from: was[field], to: value };
  }
  return changes;
}

export const AUDIT_PAGE_DEFAULT = 50;
export const AUDIT_PAGE_MAX = 500;

export interface AuditQuery {
  filter: AuditFilter;
  page: number;
  itemsPerPage: number;
}

/**
 * The audit list's query: `page`, `itemsPerPage` (at most AUDIT_PAGE_MAX), `startDate`/`endDate` (ISO 8601),
 * `shortCode` (with `domain`, its domain; none is the default one) for one link's history, and `actor` for one key's
 * (or login's) changes. Bad values: 400 naming them.
 */
export function parseAuditQuery(params: URLSearchParams, domainKey: (domain: string | null) => string): AuditQuery {
  const problems: InvalidElement[] = [];
  const filter: AuditFilter = dateRangeParams(params, problems);
  const shortCode = params.get("shortCode");
  if (shortCode !== null && shortCode !== "") filter.link = { domain: domainKey(params.get("domain")), shortCode };
  else if (params.get("domain")) problems.push({ field: "domain", reason: "filters one link's history: give its shortCode too" });
  const actor = params.get("actor");
  if (actor !== null && actor !== "") filter.actor = actor;
  const page = wholeParam(params.get("page"), "page", 1, 1_000_000_000, problems) ?? 1;
  const itemsPerPage = wholeParam(params.get("itemsPerPage"), "itemsPerPage", 1, AUDIT_PAGE_MAX, problems) ?? AUDIT_PAGE_DEFAULT;
  if (problems.length > 0) throw invalidData(problems);
  return { filter, page, itemsPerPage };
}

function toEvent(row: AuditRow): AuditEvent {
  return {
    id: row.id,
    at: row.at,
    action: row.action,
    actor: { type: row.actor_type, name: row.actor_name },
    subject: row.subject,
    shortCode: row.short_code,
    domain: row.short_code === null || row.domain === "" ? null : row.domain,
    details: JSON.parse(row.details) as Record<string, unknown>,
  };
}

export class AuditLog {
  constructor(
    private readonly store: AuditStore,
    private readonly now: () => number = Date.now,
  ) {}

  /** Inside the change's transaction: throwing rolls the change back with it. */
  record(actor: AuditActor, action: AuditAction, subject: AuditSubject, details: Record<string, unknown> = {}): void {
    const link = typeof subject === "string" ? null : subject;
    this.store.insert({
      at: this.now(),
      action,
      actor_type: actor.type,
      actor_name: actor.name,
      api_key_id: actor.apiKeyId,
      subject: link === null ? (subject as string) : link.domain === "" ? link.shortCode : `${link.domain}/${link.shortCode}`,
      domain: link?.domain ?? null,
      short_code: link?.shortCode ?? null,
      details: JSON.stringify(details),
    });
  }

  /** Newest first, through the API: admin keys only, as the history names keys and shows what every change was. */
  page(query: AuditQuery, key: ApiKey): { items: AuditEvent[]; page: number; itemsPerPage: number; total: number } {
    if (key.role !== "admin") throw forbidden("Only admin API keys can read the audit history.");
    return this.list(query);
  }

  /** Newest first, for whoever may read the database (the `audit` command). */
  list(query: AuditQuery): { items: AuditEvent[]; page: number; itemsPerPage: number; total: number } {
    const { rows, total } = this.store.page(query.filter, query.itemsPerPage, (query.page - 1) * query.itemsPerPage);
    return { items: rows.map(toEvent), page: query.page, itemsPerPage: query.itemsPerPage, total };
  }
}
