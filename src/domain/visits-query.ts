/** Shlink's visits query parameters, parsed and checked (400 invalid-data naming the field). Never sees HTTP. */
import { type InvalidElement, invalidData } from "../errors";
import { dateRangeParams, wholeParam } from "./query-params";
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

/**
 * Shlink's visits query: startDate/endDate (ISO 8601), page, itemsPerPage (absent or -1: all), excludeBots (present
 * and not false/0), and for orphan visits `type`. Bad values are a 400 naming the field.
 */
export function parseVisitsQuery(params: URLSearchParams, options: { orphans?: boolean } = {}): VisitsQuery {
  const problems: InvalidElement[] = [];
  const query: VisitsQuery = { excludeBots: false, page: 1, itemsPerPage: -1, ...dateRangeParams(params, problems) };
  query.page = wholeParam(params.get("page"), "page", 1, 1_000_000_000, problems) ?? 1;
  const items = params.get("itemsPerPage");
  if (items !== "-1") query.itemsPerPage = wholeParam(items, "itemsPerPage", 1, MAX_VISITS_PER_PAGE, problems) ?? -1;
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
