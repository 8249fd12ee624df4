import { describe, expect, test } from "bun:test";
import { type Cidr, parseCidr } from "../lib/cidr";
import { trackingFilter } from "./tracking-filter";

const ranges = (...texts: string[]) => texts.map((t) => parseCidr(t) as Cidr);

describe("trackingFilter (--skip-tracking-from)", () => {
  test("skips addresses inside any configured range, IPv4, IPv4-mapped and IPv6", () => {
    const skipped = trackingFilter(ranges("192.0.2.0/24", "2001:db8::/32", "198.51.100.7"));
    expect(skipped("192.0.2.200")).toBe(true);
    expect(skipped("::ffff:192.0.2.1")).toBe(true);
    expect(skipped("2001:db8:5::1")).toBe(true);
    expect(skipped("198.51.100.7")).toBe(true);
    expect(skipped("198.51.100.8")).toBe(false);
    expect(skipped("203.0.113.1")).toBe(false);
  });

  test("an unknown or malformed address is tracked", () => {
    const skipped = trackingFilter(ranges("0.0.0.0/0"));
    expect(skipped(null)).toBe(false);
    expect(skipped("garbage")).toBe(false);
    expect(skipped("10.1.2.3")).toBe(true);
  });

  test("with no range configured nothing is skipped, and every call returns the same constant function", () => {
    expect(trackingFilter([])("192.0.2.1")).toBe(false);
    expect(trackingFilter([])).toBe(trackingFilter([]));
  });

  test("answers stay right past the memo's bound", () => {
    const skipped = trackingFilter(ranges("10.0.0.0/8"));
    for (let i = 0; i < 10_000; i++) {
      expect(skipped(`10.0.${i >> 8}.${i & 255}`)).toBe(true);
      expect(skipped(`11.0.${i >> 8}.${i & 255}`)).toBe(false);
    }
  });
});
