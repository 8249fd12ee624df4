/** Byte sizes as people write them: SI (100MB) and binary (512MiB) units, or a bare number of bytes. */

const UNITS: Record<string, number> = {
  b: 1,
  kb: 1e3,
  mb: 1e6,
  gb: 1e9,
  tb: 1e12,
  kib: 2 ** 10,
  mib: 2 ** 20,
  gib: 2 ** 30,
  tib: 2 ** 40,
};

/** Parses "512MiB", "1GiB", "100MB", "1.5TB" or "1048576" (bytes) into bytes; null if malformed or too large. */
export function parseSize(text: string): number | null {
  const match = /^(\d+(?:\.\d+)?)\s*([kmgt]i?b|b)?$/i.exec(text.trim());
  if (!match) return null;
  const bytes = Math.round(Number(match[1]) * (UNITS[(match[2] ?? "b").toLowerCase()] as number));
  return Number.isSafeInteger(bytes) ? bytes : null;
}

const BINARY_UNITS = ["TiB", "GiB", "MiB", "KiB"] as const;

/** Formats bytes with binary units and at most one decimal: "12 MiB", "79.4 GiB", "512 B". */
export function formatSize(bytes: number): string {
  for (const [i, unit] of BINARY_UNITS.entries()) {
    const size = 2 ** (10 * (BINARY_UNITS.length - i));
    if (bytes >= size) return `${Number((bytes / size).toFixed(1))} ${unit}`;
  }
  return `${bytes} B`;
}
