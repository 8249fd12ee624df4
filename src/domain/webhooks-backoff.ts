/**
 * When to try a failed webhook delivery again: exponential backoff with full jitter (a uniformly random delay
 * between 0 and min(max, base * 2^(attempt - 1))), so receivers recovering from an outage are not hit by every
 * sender at once. A Retry-After from the receiver is a floor, still capped by max.
 */

export interface BackoffPolicy {
  baseMs: number;
  maxMs: number;
}

/** The delay before the attempt after `attempt` failed attempts (1 = the first try failed). */
export function retryDelayMs(policy: BackoffPolicy, attempt: number, random: () => number = Math.random, retryAfterMs = 0): number {
  const exponent = Math.min(Math.max(attempt - 1, 0), 52);
  const ceiling = Math.min(policy.maxMs, policy.baseMs * 2 ** exponent);
  const jittered = Math.floor(random() * ceiling);
  return Math.min(policy.maxMs, Math.max(jittered, retryAfterMs));
}

/** Milliseconds from a Retry-After header (delta-seconds or an HTTP date), or 0 when absent or unreadable. */
export function retryAfterMs(header: string | null, now: number): number {
  if (header === null || header.trim() === "") return 0;
  const value = header.trim();
  if (/^\d+$/.test(value)) return Number(value) * 1000;
  const at = Date.parse(value);
  return Number.isNaN(at) ? 0 : Math.max(0, at - now);
}
