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
    const [, field = "", dir = "ASC"] = /^([A-Za-z]+)(?:-(ASC|DESC))?$/.exec(orderBy) ?? [];
    if (!ORDER_FIELDS.has(field as OrderField)) {
      problems.push({ field: "orderBy", reason: `must be one of ${[...ORDER_FIELDS].join(", ")}, optionally followed by -ASC or -DESC` });
    } else order = { field: field as OrderField, dir: dir as "ASC" | "DESC" };
  }
  if (problems.length > 0) throw invalidData(problems);
  return { ...paging, filter, order };
}
