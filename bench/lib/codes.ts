/**
 * The benchmark's short codes: random, unique, 7 base62 characters like generated ones. The code on line i of a
 * codes file redirects to `targetFor(i)`; workloads treat the first lines as the hot set.
 */
import { readFileSync, writeFileSync } from "node:fs";

const ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
// Never a code (the server reserves them); 7 random characters will not hit these, but a benchmark must not guess.
const RESERVED = new Set(["rest", "api", "admin", "healthz", "readyz", "metrics", "robots.txt", "favicon.ico"]);

/** `count` distinct random codes of `length` characters. */
export function generateCodes(count: number, length = 7): string[] {
  const codes = new Set<string>();
  const bytes = new Uint8Array(length * 64);
  for (let round = 0; codes.size < count && round < count * 2; round++) {
    crypto.getRandomValues(bytes);
    for (let start = 0; start + length <= bytes.length && codes.size < count; start += length) {
      let code = "";
      // 62 * 4 = 248: rejecting bytes >= 248 keeps every character equally likely.
      for (let i = start; i < start + length; i++) code += (bytes[i] ?? 255) < 248 ? ALPHABET[(bytes[i] ?? 0) % 62] : "";
      if (code.length === length && !RESERVED.has(code)) codes.add(code);
    }
  }
  if (codes.size < count) throw new Error(`generated only ${codes.size} of ${count} codes`);
  return [...codes];
}

/** HOT_SHARE of the hot workload's requests go to its hot set, the first lines; the rest spread over the others. */
export const HOT_SHARE = 0.9;

/** A link index in [0, links) as the workloads draw one: from the first `hotCount` HOT_SHARE of the time, else from the rest; uniform when `hotCount` is 0. */
export function drawIndex(links: number, hotCount: number): number {
  if (hotCount === 0) return Math.floor(Math.random() * links);
  return Math.random() < HOT_SHARE ? Math.floor(Math.random() * hotCount) : hotCount + Math.floor(Math.random() * (links - hotCount));
}

export function targetFor(index: number): string {
  return `https://example.com/page/${index}`;
}

export function writeCodes(path: string, codes: readonly string[]): void {
  writeFileSync(path, `${codes.join("\n")}\n`);
}

export function readCodes(path: string): string[] {
  return readFileSync(path, "utf8")
    .split("\n")
    .filter((line) => line !== "");
}
