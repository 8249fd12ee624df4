import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { buildMmdb, cityRecord, writeMmdb } from "../../test/support/mmdb";
import { MaxmindDbError, openMaxmindDb } from "../lib/maxmind-db";
import { locator, visitLocator } from "./visit-location";

const BERLIN = { countryCode: "DE", country: "Germany", region: "Land Berlin", city: "Berlin", latitude: 52.5244, longitude: 13.4105 };
const dir = mkdtempSync(join(tmpdir(), "visit-location-"));
const path = writeMmdb(join(dir, "city.mmdb"), [
  { network: "203.0.113.0/24", data: cityRecord({ ...BERLIN, timezone: "Europe/Berlin" }) },
  {
    network: "198.51.100.0/25",
    data: cityRecord({ countryCode: "FR", country: "France", latitude: 46, longitude: 2, timezone: "Europe/Paris" }),
  },
  {
    network: "2001:db8:1::/48",
    data: cityRecord({ countryCode: "US", country: "United States", latitude: 37.751, longitude: -97.822, timezone: "America/Chicago" }),
  },
]);

describe("visit location from a MaxMind-format database", () => {
  const locate = locator(openMaxmindDb(path));

  test("maps a GeoLite2-City record the way Shlink does (English names, first subdivision as region)", () => {
    expect(locate("203.0.113.77")).toEqual({
      countryCode: "DE",
      countryName: "Germany",
      regionName: "Land Berlin",
      cityName: "Berlin",
      latitude: 52.5244,
      longitude: 13.4105,
      timezone: "Europe/Berlin",
    });
  });

  test("a record without city or region leaves those null", () => {
    expect(locate("198.51.100.9")).toMatchObject({ countryCode: "FR", regionName: null, cityName: null, latitude: 46 });
  });

  test("finds IPv6 networks, and IPv4-mapped IPv6 addresses in the IPv4 space", () => {
    expect(locate("2001:db8:1:2::5")?.longitude).toBe(-97.822);
    expect(locate("::ffff:203.0.113.1")?.cityName).toBe("Berlin");
  });

  test("an unknown or malformed address has no location and never throws", () => {
    expect(locate("198.51.100.200")).toBeNull();
    expect(locate("192.0.2.1")).toBeNull();
    expect(locate("not-an-ip")).toBeNull();
    expect(locate("")).toBeNull();
  });

  test("within one task a repeat address is answered from the memo; the memo is gone once the task ends", async () => {
    const reader = openMaxmindDb(path);
    let lookups = 0;
    const get = (ip: string) => {
      lookups++;
      return reader.get(ip);
    };
    const counting = locator({ get } as typeof reader);
    for (let i = 0; i < 100; i++) counting("203.0.113.5");
    expect(lookups).toBe(1);
    await Promise.resolve();
    counting("203.0.113.5");
    expect(lookups).toBe(2);
  });

  test("no --geoip-db means no lookup at all", () => {
    expect(visitLocator(null)).toBeNull();
    expect(visitLocator(path)?.("203.0.113.1")?.countryCode).toBe("DE");
  });
});

describe("opening a .mmdb file", () => {
  test.each([
    ["missing", join(dir, "nope.mmdb"), "no such file"],
    ["a directory", dir, "is not a file"],
    ["not an mmdb file", writeText("text.mmdb", "hello, this is not a database"), "not a MaxMind DB (.mmdb) file"],
    ["truncated", writeBytes("cut.mmdb", buildMmdb([{ network: "203.0.113.0/24", data: { a: 1 } }]).subarray(20)), "not a MaxMind DB"],
  ])("refuses a file that is %s, saying why", (_what, file, message) => {
    expect(() => openMaxmindDb(file)).toThrow(MaxmindDbError);
    expect(() => openMaxmindDb(file)).toThrow(message);
  });
});

function writeText(name: string, text: string): string {
  writeFileSync(join(dir, name), text);
  return join(dir, name);
}

function writeBytes(name: string, bytes: Uint8Array): string {
  writeFileSync(join(dir, name), bytes);
  return join(dir, name);
}

afterAll(() => rmSync(dir, { recursive: true, force: true }));
