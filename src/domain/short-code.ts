import { randomString } from "../lib/random";

/** Path words the server owns; never short codes, compared case-insensitively. */
export const RESERVED_WORDS: ReadonlySet<string> = new Set([
  "rest",
  "api",
  "admin",
  "healthz",
  "readyz",
  "livez",
  "metrics",
  "control",
  "robots.txt",
  "favicon.ico",
  ".well-known",
  "mercure-info",
  "static",
  "assets",
]);

export const MIN_GENERATED_LENGTH = 4;
export const MAX_CODE_LENGTH = 64;
const SLUG = /^[A-Za-z0-9_-]+$/;

/** Why `slug` cannot be a custom short code, or null when it can. */
export function slugProblem(slug: string): string | null {
  if (slug.length === 0) return "must not be empty";
  if (slug.length > MAX_CODE_LENGTH) return `must be at most ${MAX_CODE_LENGTH} characters`;
  if (!SLUG.test(slug)) return "may contain only letters, digits, '-' and '_'";
  if (RESERVED_WORDS.has(slug.toLowerCase())) return `"${slug}" is reserved`;
  return null;
}

/** A fresh code: CSPRNG with rejection sampling over base62. */
export function generateShortCode(length: number): string {
  for (;;) {
    const code = randomString(length);
    if (!RESERVED_WORDS.has(code.toLowerCase())) return code;
  }
}
