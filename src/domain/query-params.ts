/** Query parameters the list endpoints share, checked the same way: each bad one a problem naming its field. */
import type { InvalidElement } from "../errors";
import { parseIsoDate } from "../lib/iso-date";

/** A whole number from `min` to `max`, or null when absent (or bad: then `problems` says why). */
export function wholeParam(raw: string | null, field: string, min: number, max: number, problems: InvalidElement[]): number | null {
  if (raw === null || raw === "") return null;
  if (!/^\d+$/.test(raw) || Number(raw) < min || Number(raw) > max) {
    problems.push({ field, reason: `must be a whole number from ${min} to ${max}` });
    return null;
  }
  return Number(raw);
}

/** Shlink's `startDate` and `endDate` (ISO 8601) as epoch ms, each absent when not given; the end not before the start. */
export function dateRangeParams(params: URLSearchParams, problems: InvalidElement[]): { from?: number; to?: number } {
  const range: { from?: number; to?: number } = {};
  for (const [field, key] of [
    ["startDate", "from"],
    ["endDate", "to"],
  ] as const) {
    const raw = params.get(field);
    if (raw === null || raw === "") continue;
    const ms = parseIsoDate(raw);
    if (ms === null) problems.push({ field, reason: "must be an ISO 8601 date" });
    else range[key] = ms;
  }
  if (range.from !== undefined && range.to !== undefined && range.from > range.to) {
    problems.push({ field: "endDate", reason: "must not be before startDate" });
  }
  return range;
}
