/** Shlink's visits query parameters, parsed and checked (400 invalid-data naming the field). Never sees HTTP. */
import { type InvalidElement, invalidData } from "../errors";
import { parseIsoDate } from "../lib/iso-date";
import type { OrphanType } from "./visit-buffer";

/** Visits pages go up to 5 000 items: Shlink's web client loads visits 5 000 at a time. */
export const MAX_VISITS_PER_PAGE = 5000;
export const ORPHAN_TYPES: readonly OrphanType[] = ["base_url", "invalid_short_url", "regular_404"];

export interface VisitsQuery {
  /** Epoch ms, inclusive. */
  from?: number;
  to?: number;
  excludeBots: boolean;
  page: number;
  /** -1: all (served as pages of MAX_VISITS_PER_PAGE). */
  itemsPerPage: number;
  /** Orphan visits only. */
  type?: OrphanType;
  /** Tag and non-orphan visits: only links of this domain (stored key, '' = default). */
  domain?: string;
}

function parseWhole(raw: string | null, field: string, min: number, max: number, problems: InvalidElement[]): number | null {
  if (raw === null || raw === "") return null;
  if (!/^\d+$/.test(raw) || Number(raw) < min || Number(raw) > max) {
    problems.push({ field, reason: `must be a whole number from ${min} to ${max}` });
    return null;
  }
  return Number(raw);
}

/**
 * Shlink's visits query: startDate/endDate (ISO 8601), page, itemsPerPage (absent or -1: all), excludeBots (present
 * and not false/0), and for orphan visits `type`. Bad values are a 400 naming the field.
 */
export function parseVisitsQuery(params: URLSearchParams, options: { orphans?: boolean } = {}): VisitsQuery {
  const problems: InvalidElement[] = [];
  const query: VisitsQuery = { excludeBots: false, page: 1, itemsPerPage: -1 };
  for (const [field, key] of [
    ["startDate", "from"],
    ["endDate", "to"],
  ] as const) {
    const raw = params.get(field);
    if (raw === null || raw === "") continue;
    const ms = parseIsoDate(raw);
    if (ms === null) problems.push({ field, reason: "must be an ISO 8601 date" });
    else query[key] = ms;
  }
  if (query.from !== undefined && query.to !== undefined && query.from > query.to) {
    problems.push({ field: "endDate", reason: "must not be before startDate" });
  }
  query.page = parseWhole(params.get("page"), "page", 1, 1_000_000_000, problems) ?? 1;
  const items = params.get("itemsPerPage");
  if (items !== "-1") query.itemsPerPage = parseWhole(items, "itemsPerPage", 1, MAX_VISITS_PER_PAGE, problems) ?? -1;
  const bots = params.get("excludeBots");
  if (bots !== null) {
    if (["", "true", "1"].includes(bots)) query.excludeBots = true;
    else if (!["false", "0"].includes(bots)) problems.push({ field: "excludeBots", reason: "must be true or false" });
  }
  if (options.orphans) {
    const type = params.get("type");
    if (type !== null && type !== "") {
      if (ORPHAN_TYPES.includes(type as OrphanType)) query.type = type as OrphanType;
      else problems.push({ field: "type", reason: `must be one of ${ORPHAN_TYPES.join(", ")}` });
    }
  }
  if (problems.length > 0) throw invalidData(problems);
  return query;
}
