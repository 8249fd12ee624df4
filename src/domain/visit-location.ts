/**
 * Where a visit came from, looked up in a local MaxMind-format database (GeoLite2-City or another of that shape)
 * at flush time, never on the redirect path. Fields map as Shlink maps them: country ISO code and English name,
 * the first subdivision's name as the region, the city, coordinates and time zone.
 */
import type { CityResponse, Reader, Response } from "maxmind";
import { openMaxmindDb } from "../lib/maxmind-db";
import type { VisitLocation } from "./visit-recorder";

/** A location lookup; null when the address is unknown to the database or is not an address. */
export type Locate = (ip: string) => VisitLocation | null;

const MAPPED_V4 = /^::ffff:(\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3})$/i;

/** A GeoLite2-City-shaped record as a visit location; null when it says nothing useful. */
export function toVisitLocation(record: CityResponse | null): VisitLocation | null {
  if (record === null || record === undefined) return null;
  const location: VisitLocation = {
    countryCode: record.country?.iso_code ?? null,
    countryName: record.country?.names?.en ?? null,
    regionName: record.subdivisions?.[0]?.names?.en ?? null,
    cityName: record.city?.names?.en ?? null,
    latitude: record.location?.latitude ?? null,
    longitude: record.location?.longitude ?? null,
    timezone: record.location?.time_zone ?? null,
  };
  return Object.values(location).every((v) => v === null) ? null : location;
}

/**
 * Lookups in `reader`, memoised per address until the current task ends: the visit flush writes a batch
 * synchronously, so a batch's repeat visitors cost one lookup each, and nothing is held between batches.
 */
export function locator(reader: Reader<Response>): Locate {
  const memo = new Map<string, VisitLocation | null>();
  let clearScheduled = false;
  return (ip) => {
    const known = memo.get(ip);
    if (known !== undefined) return known;
    if (!clearScheduled) {
      clearScheduled = true;
      queueMicrotask(() => {
        memo.clear();
        clearScheduled = false;
      });
    }
    let location: VisitLocation | null = null;
    try {
      // IPv4 in an IPv6 tree sits at ::/96, where the reader looks for a dotted quad: unwrap ::ffff:a.b.c.d first.
      location = toVisitLocation(reader.get(MAPPED_V4.exec(ip)?.[1] ?? ip) as CityResponse | null);
    } catch {
      // Not an address the reader can parse: the visit is stored without a location, never rolled back.
    }
    memo.set(ip, location);
    return location;
  };
}

/** The lookup for --geoip-db, or null when none is configured (the path was checked when settings were read). */
export function visitLocator(geoipDb: string | null): Locate | null {
  return geoipDb === null ? null : locator(openMaxmindDb(geoipDb));
}
