import { describe, expect, test } from "bun:test";
import { cidrContains, parseCidr, parseIp } from "./cidr";

describe("cidr", () => {
  test("matches IPv4, IPv4-mapped IPv6 and IPv6 ranges", () => {
    const loopback = parseCidr("127.0.0.0/8");
    const private10 = parseCidr("10.0.0.0/8");
    const v6 = parseCidr("fd00::/8");
    if (!loopback || !private10 || !v6) throw new Error("parse failed");
    expect(cidrContains(loopback, "127.0.0.1")).toBe(true);
    expect(cidrContains(loopback, "::ffff:127.0.0.1")).toBe(true);
    expect(cidrContains(loopback, "128.0.0.1")).toBe(false);
    expect(cidrContains(private10, "10.255.1.2")).toBe(true);
    expect(cidrContains(v6, "fd12:3456::1")).toBe(true);
    expect(cidrContains(v6, "fe80::1")).toBe(false);
    expect(cidrContains(parseCidr("::1") as NonNullable<ReturnType<typeof parseCidr>>, "::1")).toBe(true);
  });

  test("rejects malformed input", () => {
    for (const bad of ["", "1.2.3", "1.2.3.256", "10.0.0.0/33", "::1/129", "zz::1", "1::2::3", "a/b"]) expect(parseCidr(bad)).toBeNull();
    expect(parseIp("not an ip")).toBeNull();
  });
});
