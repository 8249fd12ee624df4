const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** Parses "250ms", "30s", "5m", "2h", "1d" (or a bare number of seconds) into milliseconds; null if malformed. */
export function parseDuration(text: string): number | null {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$/.exec(text.trim());
  if (!match) return null;
  const value = Number(match[1]) * (UNITS[match[2] ?? "s"] as number);
  return Number.isFinite(value) ? Math.round(value) : null;
}
