/**
 * Turns untrusted API input into validated values. Every problem is collected, so one response names every
 * bad field (Shlink's `invalidElements`). Unknown fields are ignored, as Shlink does.
 */
import { REDIRECT_STATUSES } from "../config";
import { AppError, type InvalidElement, invalidData } from "../errors";
import { parseIsoDate } from "../lib/iso-date";
import { normalizeTagName } from "../lib/tag-name";
import type { NewShortUrl } from "../storage/short-url-store";
import { passwordProblem } from "./link-passwords";
import { normalizeLongUrl } from "./long-url";
import { MAX_CODE_LENGTH, MIN_GENERATED_LENGTH, slugProblem } from "./short-code";

export const MAX_TITLE_LENGTH = 512;
export const MAX_TAG_LENGTH = 255;
export const MAX_TAGS = 100;

/** Fields shared by create and edit; `undefined` means "not given", `null` means "clear". */
export interface ShortUrlMeta {
  longUrl?: string;
  title?: string | null;
  tags?: string[];
  crawlable?: boolean;
  forwardQuery?: boolean;
  redirectStatus?: number | null;
  validSince?: number | null;
  validUntil?: number | null;
  maxVisits?: number | null;
  /** A password visitors must give before the redirect (null: remove it); only its hash is kept. */
  password?: string | null;
}

export interface CreateShortUrlInput extends ShortUrlMeta {
  longUrl: string;
  customSlug?: string;
  shortCodeLength?: number;
  /** Host of a non-default domain, or undefined for the default domain. */
  domain?: string;
  findIfExists: boolean;
}

type Body = Record<string, unknown>;

class Collector {
  readonly problems: InvalidElement[] = [];
  add(field: string, reason: string): void {
    this.problems.push({ field, reason });
  }
  throwIfAny(): void {
    if (this.problems.length > 0) throw invalidData(this.problems);
  }
}

function asObject(body: unknown): Body {
  if (body === null || typeof body !== "object" || Array.isArray(body)) {
    throw invalidData([{ field: "body", reason: "must be a JSON object" }]);
  }
  return body as Body;
}

const HOST = /^(?=.{1,253}(?::\d{1,5})?$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*(?::\d{1,5})?$/;

/** Normalizes a domain name (host[:port]); null when malformed. */
export function normalizeDomain(raw: string): string | null {
  const domain = raw.trim().toLowerCase();
  return HOST.test(domain) ? domain : null;
}

function readMeta(body: Body, c: Collector, out: ShortUrlMeta, allowNull: boolean): void {
  if ("longUrl" in body) {
    try {
      out.longUrl = normalizeLongUrl(body.longUrl);
    } catch (error) {
      if (!(error instanceof AppError)) throw error;
      c.add("longUrl", String((error.extras.reasons as Record<string, string>).longUrl));
    }
  }
  if ("title" in body) {
    const title = body.title;
    if (title === null) out.title = null;
    else if (typeof title !== "string") c.add("title", "must be a string or null");
    else if (title.length > MAX_TITLE_LENGTH) c.add("title", `must be at most ${MAX_TITLE_LENGTH} characters`);
    else out.title = title.trim() === "" ? null : title;
  }
  if ("tags" in body) {
    const tags = body.tags;
    if (!Array.isArray(tags) || tags.length > MAX_TAGS) c.add("tags", `must be a list of at most ${MAX_TAGS} strings`);
    else {
      // Normalised as Shlink does, so "Foo Bar" and "foo-bar" are one tag; the limit applies to what is stored.
      const names = tags.map((t) => (typeof t === "string" ? normalizeTagName(t) : ""));
      if (names.some((n) => n === "" || n.length > MAX_TAG_LENGTH)) {
        c.add("tags", `each tag must be a non-empty string of at most ${MAX_TAG_LENGTH} characters`);
      } else out.tags = [...new Set(names)];
    }
  }
  for (const field of ["crawlable", "forwardQuery"] as const) {
    if (!(field in body)) continue;
    if (typeof body[field] !== "boolean") c.add(field, "must be true or false");
    else out[field] = body[field] as boolean;
  }
  if ("redirectStatus" in body) {
    const status = body.redirectStatus;
    if (status === null && allowNull) out.redirectStatus = null;
    else if (!REDIRECT_STATUSES.includes(status as 301)) c.add("redirectStatus", "must be one of 301, 302, 307, 308");
    else out.redirectStatus = status as number;
  }
  for (const field of ["validSince", "validUntil"] as const) {
    if (!(field in body)) continue;
    const value = body[field];
    if (value === null) out[field] = null;
    else if (typeof value !== "string" || parseIsoDate(value) === null)
      c.add(field, "must be an ISO 8601 date, e.g. 2026-11-22T10:15:00+00:00");
    else out[field] = parseIsoDate(value);
  }
  if ("maxVisits" in body) {
    const max = body.maxVisits;
    if (max === null) out.maxVisits = null;
    else if (typeof max !== "number" || !Number.isSafeInteger(max) || max < 1) c.add("maxVisits", "must be a whole number of at least 1");
    else out.maxVisits = max;
  }
  if ("password" in body) {
    const problem = body.password === null ? null : passwordProblem(body.password);
    if (problem !== null) c.add("password", allowNull ? `${problem}, or null to remove it` : problem);
    else if (body.password !== null || allowNull) out.password = body.password as string | null;
  }
  if (typeof out.validSince === "number" && typeof out.validUntil === "number" && out.validSince > out.validUntil) {
    c.add("validUntil", "must not be before validSince");
  }
}

export function parseCreateInput(raw: unknown): CreateShortUrlInput {
  const body = asObject(raw);
  const c = new Collector();
  const out: Partial<CreateShortUrlInput> = { findIfExists: false };
  if (!("longUrl" in body)) c.add("longUrl", "is required");
  readMeta(body, c, out, false);
  if ("customSlug" in body && body.customSlug !== null) {
    const slug = body.customSlug;
    const problem = typeof slug === "string" ? slugProblem(slug) : "must be a string";
    if (problem) c.add("customSlug", problem);
    else out.customSlug = slug as string;
  }
  if ("shortCodeLength" in body && body.shortCodeLength !== null) {
    const length = body.shortCodeLength;
    if (typeof length !== "number" || !Number.isInteger(length) || length < MIN_GENERATED_LENGTH || length > MAX_CODE_LENGTH) {
      c.add("shortCodeLength", `must be a whole number from ${MIN_GENERATED_LENGTH} to ${MAX_CODE_LENGTH}`);
    } else out.shortCodeLength = length;
  }
  if ("domain" in body && body.domain !== null && body.domain !== "") {
    const domain = typeof body.domain === "string" ? normalizeDomain(body.domain) : null;
    if (domain === null) c.add("domain", "must be a host name, e.g. s.example.com");
    else out.domain = domain;
  }
  if ("findIfExists" in body) {
    if (typeof body.findIfExists !== "boolean") c.add("findIfExists", "must be true or false");
    else out.findIfExists = body.findIfExists;
  }
  c.throwIfAny();
  return out as CreateShortUrlInput;
}

/** The most links one bulk create takes (each is still bounded by the body's byte limit). */
export const MAX_BULK_CREATE = 1000;

/**
 * A bulk create's body, `{"shortUrls":[…]}`: each item a create's body, checked as one (findIfExists included). Every
 * bad field of every item is named, with its index (`shortUrls[2].longUrl`), in one 400.
 */
export function parseBulkCreateInput(raw: unknown): CreateShortUrlInput[] {
  const body = asObject(raw);
  const items = body.shortUrls;
  if (!Array.isArray(items) || items.length === 0 || items.length > MAX_BULK_CREATE) {
    throw invalidData([{ field: "shortUrls", reason: `must be a list of 1 to ${MAX_BULK_CREATE} short URLs to create` }]);
  }
  const problems: InvalidElement[] = [];
  const inputs = items.map((item, index) => {
    try {
      return parseCreateInput(item);
    } catch (error) {
      if (!(error instanceof AppError) || error.code !== "invalid-data") throw error;
      const reasons = (error.extras.reasons ?? {}) as Record<string, string>;
      for (const [field, reason] of Object.entries(reasons)) {
        problems.push({ field: field === "body" ? `shortUrls[${index}]` : `shortUrls[${index}].${field}`, reason });
      }
      return null;
    }
  });
  if (problems.length > 0) throw invalidData(problems);
  return inputs as CreateShortUrlInput[];
}

export function parseEditInput(raw: unknown): ShortUrlMeta {
  const body = asObject(raw);
  const c = new Collector();
  const out: ShortUrlMeta = {};
  readMeta(body, c, out, true);
  c.throwIfAny();
  return out;
}

/** The stored row of a new link (its short code filled in by the caller): a create's, or an import's with its own date. */
export function newLinkRow(input: CreateShortUrlInput, domain: string, createdAt: number, apiKeyId: number | null): NewShortUrl {
  return {
    domain,
    short_code: input.customSlug ?? "",
    long_url: input.longUrl,
    title: input.title ?? null,
    crawlable: input.crawlable ? 1 : 0,
    forward_query: input.forwardQuery === false ? 0 : 1,
    redirect_status: input.redirectStatus ?? null,
    valid_since: input.validSince ?? null,
    valid_until: input.validUntil ?? null,
    max_visits: input.maxVisits ?? null,
    created_at: createdAt,
    api_key_id: apiKeyId,
  };
}
