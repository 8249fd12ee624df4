/** Formats epoch milliseconds as ISO 8601 with an explicit offset, as Shlink does: 2026-11-22T10:15:00+00:00. */
export function formatIsoDate(ms: number): string {
  return `${new Date(ms).toISOString().slice(0, 19)}+00:00`;
}

const ISO_DATE = /^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}:?\d{2})?)?$/i;

/** Parses an ISO 8601 date or date-time (as Shlink accepts) into epoch milliseconds; null if malformed. */
export function parseIsoDate(text: string): number | null {
  if (!ISO_DATE.test(text)) return null;
  const ms = Date.parse(text);
  return Number.isNaN(ms) ? null : ms;
}
