/** Formats epoch milliseconds as ISO 8601 with an explicit offset, as Shlink does: 2026-11-22T10:15:00+00:00. */
export function formatIsoDate(ms: number): string {
  return `${new Date(ms).toISOString().slice(0, 19)}+00:00`;
}

const ISO_DATE = /^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}:?\d{2})?)?$/i;

/**
 * Parses an ISO 8601 date or date-time (as Shlink accepts) into epoch milliseconds; null if malformed or if the
 * day does not exist (Date.parse would quietly turn 2030-02-30 into March 2nd).
 */
export function parseIsoDate(text: string): number | null {
  if (!ISO_DATE.test(text)) return null;
  const ms = Date.parse(text);
  if (Number.isNaN(ms)) return null;
  const [year, month, day] = text.slice(0, 10).split("-").map(Number) as [number, number, number];
  const leap = year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
  const daysInMonth = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1] ?? 0;
  return day <= daysInMonth ? ms : null;
}
