/**
 * The visit-tracking settings of the settings table (src/config.ts spreads them in): privacy switches, addresses
 * never tracked, raw-row retention, the local location database and the visit buffer's limit. Kept here so
 * config.ts stays one screenful.
 */
import { resolve } from "node:path";
import type { Config, Setting } from "../config";
import { SettingError } from "../errors";
import { parseCidr } from "./cidr";
import { parseDuration } from "./duration";
import { MaxmindDbError, openMaxmindDb } from "./maxmind-db";
import { boolean } from "./setting-parsers";

type BooleanKey = "anonymizeRemoteAddr" | "trackRemoteAddr" | "trackReferrer" | "trackUserAgent" | "trackOrphanVisits";

function toggle<K extends BooleanKey>(key: K, flag: string, help: string): Setting<K> {
  const env = `SHORTENER_${flag.toUpperCase().replaceAll("-", "_")}`;
  return { key, flag, env, fallback: "true", help, parse: boolean as (raw: string, name: string) => Config[K] };
}

/** Comma-separated IPs or CIDR ranges; empty for none. */
export function parseCidrList(raw: string, name: string) {
  return raw
    .split(",")
    .map((part) => part.trim())
    .filter((part) => part !== "")
    .map((part) => {
      const cidr = parseCidr(part);
      if (cidr === null) throw new SettingError(name, `"${part}" is not an IP address or CIDR range`);
      return cidr;
    });
}

const HOUR_MS = 3_600_000;
const MAX_RETENTION_MS = 36_500 * 24 * HOUR_MS;

/** A duration of at least a second, or `off`/`0`: raw rows are kept forever (null). */
function parseRetention(raw: string, name: string): number | null {
  if (raw === "off" || raw === "0") return null;
  const ms = parseDuration(raw);
  if (ms === null || ms < 1000 || ms > MAX_RETENTION_MS) {
    throw new SettingError(name, `"${raw}" is not a duration from 1s to 36500d (e.g. 90d, 12h), or off to keep raw visits forever`);
  }
  return ms;
}

/** A readable MaxMind-format database, opened now so that a bad file stops the command before it starts. */
function parseGeoipDb(raw: string, name: string): string | null {
  if (raw.trim() === "") return null;
  const path = resolve(raw);
  try {
    openMaxmindDb(path);
  } catch (error) {
    if (error instanceof MaxmindDbError) throw new SettingError(name, error.message);
    throw error;
  }
  return path;
}

/** The most visits whose details wait in memory: at least 1 000 (two seconds of a busy node's redirects). */
function parseBufferLimit(raw: string, name: string): number {
  if (!/^\d+$/.test(raw) || Number(raw) < 1000 || Number(raw) > 100_000_000) {
    throw new SettingError(name, `"${raw}" is not a whole number from 1000 to 100000000`);
  }
  return Number(raw);
}

export const VISIT_SETTINGS = [
  toggle("anonymizeRemoteAddr", "anonymize-remote-addr", "store visitors' addresses with the host part zeroed (IPv4 /24, IPv6 /48)"),
  toggle("trackRemoteAddr", "track-remote-addr", "store visitors' addresses at all (Shlink: DISABLE_IP_TRACKING)"),
  toggle("trackReferrer", "track-referrer", "store visits' Referer (Shlink: DISABLE_REFERRER_TRACKING)"),
  toggle("trackUserAgent", "track-user-agent", "store visits' User-Agent (Shlink: DISABLE_UA_TRACKING)"),
  toggle(
    "trackOrphanVisits",
    "track-orphan-visits",
    "record visits to unknown codes, the base URL and other unknown paths (Shlink: TRACK_ORPHAN_VISITS)",
  ),
  {
    key: "skipTrackingFrom",
    flag: "skip-tracking-from",
    env: "SHORTENER_SKIP_TRACKING_FROM",
    fallback: "",
    help: "comma-separated CIDRs whose visits are neither recorded nor counted (Shlink: DISABLE_TRACKING_FROM)",
    parse: parseCidrList,
  } satisfies Setting<"skipTrackingFrom">,
  {
    key: "visitsRetentionMs",
    flag: "visits-retention",
    env: "SHORTENER_VISITS_RETENTION",
    fallback: "90d",
    help: "raw visit rows older than this are deleted (totals and per-day counts stay); off keeps them forever",
    parse: parseRetention,
  } satisfies Setting<"visitsRetentionMs">,
  {
    key: "geoipDb",
    flag: "geoip-db",
    env: "SHORTENER_GEOIP_DB",
    fallback: "",
    help: "local MaxMind-format database (e.g. GeoLite2-City.mmdb) to locate visits; none: no location",
    parse: parseGeoipDb,
  } satisfies Setting<"geoipDb">,
  {
    key: "visitBufferLimit",
    flag: "visit-buffer-limit",
    env: "SHORTENER_VISIT_BUFFER_LIMIT",
    fallback: "500000",
    help: "most visits held in memory with their details while writes fail (~300 bytes each, at most 600 a visit of the limit in all); past it visits are only counted",
    parse: parseBufferLimit,
  } satisfies Setting<"visitBufferLimit">,
] as const;
