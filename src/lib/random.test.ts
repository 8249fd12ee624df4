import { describe, expect, test } from "bun:test";
import { BASE62, randomString } from "./random";

describe("randomString", () => {
  test("returns exactly the requested length over the alphabet", () => {
    for (const length of [1, 7, 22, 64]) {
      const value = randomString(length);
      expect(value).toHaveLength(length);
      expect([...value].every((c) => BASE62.includes(c))).toBe(true);
    }
  });

  test("uses every base62 character with no strong bias over many draws", () => {
    const counts = new Map<string, number>();
    const draws = 62_000;
    for (const c of randomString(draws)) counts.set(c, (counts.get(c) ?? 0) + 1);
    expect(counts.size).toBe(62);
    for (const n of counts.values()) {
      expect(n).toBeGreaterThan(700);
      expect(n).toBeLessThan(1300);
    }
  });
});
