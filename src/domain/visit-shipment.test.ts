import { describe, expect, test } from "bun:test";
import { SHIPMENT_NAME, shipmentName } from "../storage/shipment-store";
import { decodeShipment, encodeShipment, ShipmentError, type ShippedVisit } from "./visit-shipment";

const VISIT: ShippedVisit = {
  link: { id: 7, shortCode: "abc", domain: "" },
  orphanType: null,
  at: Date.UTC(2026, 11, 6),
  bot: false,
  referer: "https://ref.example/",
  userAgent: "Mozilla/5.0",
  remoteAddr: "203.0.113.0",
  visitedUrl: "https://s.test/abc",
  redirectUrl: "https://example.com/",
  location: { countryCode: "DE", countryName: "Germany", regionName: null, cityName: null, latitude: 51, longitude: 9, timezone: null },
  visitor: "0123456789abcdef0123456789abcdef",
};

describe("shipments of a standby's visits", () => {
  test("carry each visit whole, in order, and their names sort by when they were written", () => {
    const orphan: ShippedVisit = { ...VISIT, link: null, orphanType: "regular_404", redirectUrl: null, location: null };
    expect(decodeShipment(encodeShipment([VISIT, orphan]))).toEqual([VISIT, orphan]);
    const names = [shipmentName(2_000), shipmentName(1_000), shipmentName(1_700_000_000_000)];
    for (const name of names) expect(name).toMatch(SHIPMENT_NAME);
    expect(names.toSorted().map((name) => Number(name.slice(0, 14)))).toEqual([1_000, 2_000, 1_700_000_000_000]);
  });

  test("a field longer than a visit keeps is cut as a redirect's is", () => {
    const [visit] = decodeShipment(encodeShipment([{ ...VISIT, userAgent: "x".repeat(5000) }]));
    expect(visit?.userAgent).toHaveLength(512);
  });

  test.each([
    ["a shipment cut short", '{"format":1,"visits":[', /not JSON/],
    ["another format", '{"format":2,"visits":[]}', /not a shipment of format 1/],
    ["a visit without a visitor hash", JSON.stringify({ format: 1, visits: [{ ...VISIT, visitor: "x" }] }), /visitor/],
    ["a visit with neither link nor orphan type", JSON.stringify({ format: 1, visits: [{ ...VISIT, link: null }] }), /neither/],
    ["a visit to a link with an orphan type too", JSON.stringify({ format: 1, visits: [{ ...VISIT, orphanType: "base_url" }] }), /neither/],
    ["a visit without a time", JSON.stringify({ format: 1, visits: [{ ...VISIT, at: "yesterday" }] }), /time/],
    ["a link without an id", JSON.stringify({ format: 1, visits: [{ ...VISIT, link: { shortCode: "abc", domain: "" } }] }), /id/],
    ["a location that is not a place", JSON.stringify({ format: 1, visits: [{ ...VISIT, location: { latitude: "north" } }] }), /latitude/],
  ])("refuses %s, saying what is wrong", (_, body, reason) => {
    expect(() => decodeShipment(body)).toThrow(ShipmentError);
    expect(() => decodeShipment(body)).toThrow(reason);
  });
});
