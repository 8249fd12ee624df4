/** Shlink's list conventions: `page`, `itemsPerPage` (-1 = all), `tags[]`, `orderBy=field-DIR`, date bounds. */
import { type InvalidElement, invalidData } from "../errors";
import { parseIsoDate } from "../lib/iso-date";
import { normalizeTagName } from "../lib/tag-name";
import type { ListFilter, OrderField } from "../storage/short-url-store";
import { normalizeDomain } from "./short-url-input";

export const DEFAULT_ITEMS_PER_PAGE = 10;
export const MAX_ITEMS_PER_PAGE = 1000;
/** Keeps (page - 1) * itemsPerPage a safe integer, so the offset reaches SQLite as an integer. */
export const MAX_PAGE = 1_000_000_000;

export interface Paging {
  page: number;
  /** -1: every item on one page. */
  itemsPerPage: number;
}

export interface ShortUrlListQuery extends Paging {
  filter: ListFilter;
  order: { field: OrderField; dir: "ASC" | "DESC" };
}

const ORDER_FIELDS = new Set<OrderField>(["dateCreated", "shortCode", "longUrl", "title", "visits", "nonBotVisits"]);

/** Values of a list parameter, accepting both `tags[]=a` and `tags=a`. */
function listParam(params: URLSearchParams, name: string): string[] {
  return [...params.getAll(`${name}[]`), ...params.getAll(name)].filter((v) => v !== "");
}

function flag(params: URLSearchParams, name: string, problems: InvalidElement[]): boolean {
  const value = params.get(name);
  if (value === null || value === "" || value === "false" || value === "0") return false;
  if (value === "true" || value === "1") return true;
  problems.push({ field: name, reason: "must be true or false" });
  return false;
}

export function parsePaging(params: URLSearchParams, problems: InvalidElement[]): Paging {
  let page = 1;
  let itemsPerPage = DEFAULT_ITEMS_PER_PAGE;
  const rawPage = params.get("page");
  if (rawPage !== null && rawPage !== "") {
    if (!/^\d+$/.test(rawPage) || Number(rawPage) < 1 || Number(rawPage) > MAX_PAGE) {
      problems.push({ field: "page", reason: `must be a whole number from 1 to ${MAX_PAGE}` });
    } else page = Number(rawPage);
  }
  const rawItems = params.get("itemsPerPage");
  if (rawItems !== null && rawItems !== "") {
    if (rawItems === "-1") itemsPerPage = -1;
    else if (!/^\d+$/.test(rawItems) || Number(rawItems) < 1 || Number(rawItems) > MAX_ITEMS_PER_PAGE) {
      problems.push({ field: "itemsPerPage", reason: `must be -1 or a whole number from 1 to ${MAX_ITEMS_PER_PAGE}` });
    } else itemsPerPage = Number(rawItems);
  }
  return { page, itemsPerPage };
}

function tagsMode(params: URLSearchParams, name: string, problems: InvalidElement[]): "any" | "all" {
  const mode = params.get(name) || "any";
  if (mode === "any" || mode === "all") return mode;
  problems.push({ field: name, reason: "must be any or all" });
  return "any";
}

/** Parses the short URL list query; `defaultDomain` maps to the stored '' as does DEFAULT. */
export function parseShortUrlListQuery(params: URLSearchParams, defaultDomain: string, now: number): ShortUrlListQuery {
  const problems: InvalidElement[] = [];
  const paging = parsePaging(params, problems);
  const filter: ListFilter = {};
  const term = params.get("searchTerm");
  if (term) filter.searchTerm = term;
  // Modes are checked even without tags: a bad value is a client bug worth reporting either way.
  const mode = tagsMode(params, "tagsMode", problems);
  const excludeMode = tagsMode(params, "excludeTagsMode", problems);
  // Normalised as tags are on create and edit (Shlink's filter chain), so `tags[]=Foo Bar` finds links tagged foo-bar.
  const tags = listParam(params, "tags").map(normalizeTagName);
  if (tags.length > 0) filter.tags = { names: tags, mode };
  const excludeTags = listParam(params, "excludeTags").map(normalizeTagName);
  if (excludeTags.length > 0) filter.excludeTags = { names: excludeTags, mode: excludeMode };
  for (const field of ["startDate", "endDate"] as const) {
    const raw = params.get(field);
    if (raw === null || raw === "") continue;
    const ms = parseIsoDate(raw);
    if (ms === null) problems.push({ field, reason: "must be an ISO 8601 date" });
    else filter[field] = ms;
  }
  if (flag(params, "excludeMaxVisitsReached", problems)) filter.excludeMaxVisitsReached = true;
  if (flag(params, "excludePastValidUntil", problems)) filter.excludePastValidUntil = { now };
  const domain = params.get("domain");
  if (domain !== null && domain !== "") {
    if (domain === "DEFAULT") filter.domain = "";
    else {
      const normalized = normalizeDomain(domain);
      if (normalized === null) problems.push({ field: "domain", reason: "must be a host name or DEFAULT" });
      else filter.domain = normalized === defaultDomain ? "" : normalized;
    }
  }
  let order: ShortUrlListQuery["order"] = { field: "dateCreated", dir: "DESC" };
  const orderBy = params.get("orderBy");
  if (orderBy !== null && orderBy !== "") {
    const parsed = splitOrderBy(orderBy);
    if (parsed === null || !ORDER_FIELDS.has(parsed.field as OrderField)) {
      problems.push({ field: "orderBy", reason: `must be one of ${[...ORDER_FIELDS].join(", ")}, optionally followed by -ASC or -DESC` });
    } else order = { field: parsed.field as OrderField, dir: parsed.dir };
  }
  if (problems.length > 0) throw invalidData(problems);
  return { ...paging, filter, order };
}

/**
 * `field-DIR` as Shlink writes it (DIR defaults to ASC); null when DIR is not ASC or DESC (in any case, with `anyCase`),
 * or more follows.
 */
function splitOrderBy(raw: string, anyCase = false): { field: string; dir: "ASC" | "DESC" } | null {
  const match = (anyCase ? /^([^-]*)(?:-(ASC|DESC))?$/i : /^([^-]*)(?:-(ASC|DESC))?$/).exec(raw);
  return match ? { field: match[1] as string, dir: (match[2]?.toUpperCase() ?? "ASC") as "ASC" | "DESC" } : null;
}

/** How Shlink 3 orders tags: by a count (ties by name, ascending) or by name. */
export interface TagOrder {
  field: "tag" | "shortUrlsCount" | "visits" | "nonBotVisits";
  dir: "ASC" | "DESC";
}

// visitsCount is Shlink's deprecated name for visits.
const TAG_ORDER_FIELDS = new Map<string, TagOrder["field"]>([
  ["tag", "tag"],
  ["shortUrlsCount", "shortUrlsCount"],
  ["visits", "visits"],
  ["nonBotVisits", "nonBotVisits"],
  ["visitsCount", "visits"],
]);

export interface TagListQuery extends Paging {
  searchTerm?: string;
  order: TagOrder;
}

/** GET /tags and /tags/stats: every tag on one page unless itemsPerPage says otherwise, by name unless orderBy says. */
export function parseTagListQuery(params: URLSearchParams): TagListQuery {
  const problems: InvalidElement[] = [];
  const paging = parsePaging(
    new URLSearchParams({ itemsPerPage: params.get("itemsPerPage") ?? "-1", page: params.get("page") ?? "1" }),
    problems,
  );
  let order: TagOrder = { field: "tag", dir: "ASC" };
  const orderBy = params.get("orderBy");
  if (orderBy !== null && orderBy !== "") {
    // Shlink 3 does not check it: a field it does not know orders by name, in the direction given, and the direction
    // goes into its SQL as sent, where `desc` works as DESC and anything else fails (a 500), refused here instead.
    const parsed = splitOrderBy(orderBy, true);
    if (parsed === null) problems.push({ field: "orderBy", reason: "must be a field optionally followed by -ASC or -DESC" });
    else order = { field: TAG_ORDER_FIELDS.get(parsed.field) ?? "tag", dir: parsed.dir };
  }
  if (problems.length > 0) throw invalidData(problems);
  return { ...paging, order, searchTerm: params.get("searchTerm") || undefined };
}
