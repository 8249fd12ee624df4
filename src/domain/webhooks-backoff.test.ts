import { describe, expect, test } from "bun:test";
import { retryAfterMs, retryDelayMs } from "./webhooks-backoff";

const policy = { baseMs: 1000, maxMs: 60_000 };

describe("webhook retry backoff", () => {
  test("the ceiling doubles per failed attempt from the base (random at its top)", () => {
    const top = () => 0.999999;
    expect([1, 2, 3, 4, 5].map((attempt) => retryDelayMs(policy, attempt, top))).toEqual([999, 1999, 3999, 7999, 15999]);
  });

  test("never exceeds the maximum, however many attempts", () => {
    for (const attempt of [7, 10, 60, 1000]) expect(retryDelayMs(policy, attempt, () => 0.999999)).toBeLessThanOrEqual(60_000);
  });

  test("full jitter: any delay from 0 up to the ceiling, spread over the whole range", () => {
    const delays = Array.from({ length: 2000 }, () => retryDelayMs(policy, 4));
    expect(Math.min(...delays)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...delays)).toBeLessThan(8000);
    // Uniform over [0, 8000): each quarter gets about a quarter of the draws.
    for (let q = 0; q < 4; q++) {
      const share = delays.filter((d) => d >= q * 2000 && d < (q + 1) * 2000).length / delays.length;
      expect(share).toBeGreaterThan(0.18);
      expect(share).toBeLessThan(0.32);
    }
  });

  test("a receiver's Retry-After is a floor, still capped by the maximum", () => {
    expect(retryDelayMs(policy, 1, () => 0, 5000)).toBe(5000);
    expect(retryDelayMs(policy, 1, () => 0, 3_600_000)).toBe(60_000);
  });

  test("reads Retry-After as seconds or an HTTP date, and ignores anything else", () => {
    const now = Date.parse("2026-12-03T06:00:00Z");
    expect(retryAfterMs("7", now)).toBe(7000);
    expect(retryAfterMs("Thu, 03 Dec 2026 06:00:30 GMT", now)).toBe(30_000);
    expect(retryAfterMs("soon", now)).toBe(0);
    expect(retryAfterMs(null, now)).toBe(0);
  });
});
