/**
 * Settings: flags override SHORTENER_* environment variables override defaults. Read once, validated with errors
 * that name the setting, and frozen. Nothing else in the program reads the environment, except the OpenTelemetry
 * exporter and resource detector, which read their own standard OTEL_* variables (headers, timeout, service name).
 */
import { resolve } from "node:path";
import { SettingError } from "./errors";
import type { Cidr } from "./lib/cidr";
import { closestName } from "./lib/closest-name";
import { type CorsOrigins, parseCorsOrigins } from "./lib/cors-origins";
import { NOT_FOUND_SETTINGS } from "./lib/not-found-settings";
import { duration, hostPort, integer, loopbackHostPort, path, size } from "./lib/setting-parsers";
import { parseCidrList, VISIT_SETTINGS } from "./lib/visit-settings";
import { WEBHOOK_SETTINGS } from "./lib/webhook-settings";
import { loadTracing, type TracingConfig } from "./telemetry/tracing-settings";

export { TRACE_SAMPLERS, type TraceSampler, type TracingConfig } from "./telemetry/tracing-settings";

export interface HostPort {
  hostname: string;
  port: number;
}

export type Role = "primary" | "standby";

export interface Config {
  role: Role;
  listen: HostPort;
  opsListen: HostPort;
  dataDir: string;
  databasePath: string;
  /** `check` fails when the data dir's filesystem has less free space than this, in bytes. */
  minDiskFreeBytes: number;
  /** Public base URL without a trailing slash; its host is the default domain. */
  baseUrl: string;
  defaultDomain: string;
  litestreamConfig: string;
  /** `litestream`: a Litestream on this host replicates the database, and serve watches its lag; `off`: none does. */
  replication: Replication;
  /** Link writes are refused (503) while the replica trails the database by more than this, in ms. */
  maxReplicationLagMs: number;
  /** How long the replica lease a primary holds lasts unrenewed (it renews every quarter); `promote` waits this long. */
  leaseTermMs: number;
  /** `replicated`: a link write is acknowledged only once Litestream confirms the replica has it. */
  durability: Durability;
  /** `max-age` of `Cache-Control: private` on redirects, in seconds. */
  redirectMaxAge: number;
  /** Redirect status for links that do not set their own. */
  redirectStatus: RedirectStatus;
  /** Where visitors of /, of other unknown paths, and of unknown or unusable codes go when their domain sets none; null: 404. */
  baseUrlRedirect: string | null;
  regular404Redirect: string | null;
  invalidShortUrlRedirect: string | null;
  cacheSize: number;
  shortCodeLength: number;
  visitFlushMs: number;
  maxBodyBytes: number;
  /** How long in-flight requests may take to finish on shutdown. */
  shutdownTimeoutMs: number;
  /** How long a draining node keeps serving after readiness fails, so a proxy can move traffic away. */
  drainGraceMs: number;
  /** Proxies whose X-Forwarded-For is believed for the client IP. */
  trustedProxies: readonly Cidr[];
  /** Browser origins allowed to call the REST API (CORS), as Shlink's CORS_ALLOW_ORIGIN. */
  corsAllowOrigin: CorsOrigins;
  /** `drill` fails when the restored replica is further behind the live database than this, in ms. */
  drillMaxRpoMs: number;
  /** `drill` gives up on one `litestream restore` after this long, in ms. */
  drillTimeoutMs: number;
  /** A webhook delivery is dead (kept, no longer tried) after this many failed attempts. */
  webhookMaxAttempts: number;
  /** Webhook retries back off exponentially from this, with full jitter, up to webhookRetryMaxMs; in ms. */
  webhookRetryBaseMs: number;
  webhookRetryMaxMs: number;
  /** How long one webhook delivery may take before it counts as failed, in ms. */
  webhookTimeoutMs: number;
  /** Whether webhooks may be sent to this machine or link-local addresses (lib/internal-address.ts). */
  webhookAllowLoopback: boolean;
  /** Most concurrent subscribers of the real-time feed (/.well-known/mercure); 0 turns the feed off. */
  realtimeMaxSubscribers: number;
  /** Where spans are sent (an OTLP/HTTP traces URL), or null: tracing is off and costs nothing. */
  otlpEndpoint: string | null;
  /** How spans are sampled and batched; only read when otlpEndpoint is set. */
  tracing: TracingConfig;
  /** Privacy of raw visit rows (the visit flush's PrivacySettings); see src/lib/visit-settings.ts. */
  anonymizeRemoteAddr: boolean;
  trackRemoteAddr: boolean;
  trackReferrer: boolean;
  trackUserAgent: boolean;
  /** Orphan visits (unknown codes, the base URL, other unknown paths) are recorded. */
  trackOrphanVisits: boolean;
  /** Visits from these addresses are neither recorded nor counted. */
  skipTrackingFrom: readonly Cidr[];
  /** Raw visit rows older than this are purged (roll-ups stay); null keeps them forever. */
  visitsRetentionMs: number | null;
  /** A local MaxMind-format database (absolute path, checked readable) that locates visits, or null. */
  geoipDb: string | null;
  /** Most visits whose details wait in memory for a flush; past it, visits are only counted on their link. */
  visitBufferLimit: number;
}

export type Replication = "off" | "litestream";
export type Durability = "local" | "replicated";

export type RedirectStatus = 301 | 302 | 307 | 308;
export const REDIRECT_STATUSES: readonly RedirectStatus[] = [301, 302, 307, 308];

export interface Setting<K extends keyof Config> {
  key: K;
  flag: string;
  env: string;
  fallback: string;
  help: string;
  parse(raw: string, setting: string): Config[K];
}

function setting<K extends keyof Config>(s: Setting<K>): Setting<K> {
  return s;
}

export const SETTINGS = [
  setting({
    key: "role",
    flag: "role",
    env: "SHORTENER_ROLE",
    fallback: "primary",
    help: "primary (accepts writes) or standby (serves redirects from a replica)",
    parse: (raw, name) => {
      if (raw !== "primary" && raw !== "standby") throw new SettingError(name, `"${raw}" is not primary or standby`);
      return raw;
    },
  }),
  setting({
    key: "listen",
    flag: "listen",
    env: "SHORTENER_LISTEN",
    fallback: "0.0.0.0:8080",
    help: "public listener host:port",
    parse: hostPort,
  }),
  setting({
    key: "opsListen",
    flag: "ops-listen",
    env: "SHORTENER_OPS_LISTEN",
    fallback: "127.0.0.1:8081",
    help: "loopback ops listener host:port",
    parse: loopbackHostPort,
  }),
  setting({
    key: "dataDir",
    flag: "data-dir",
    env: "SHORTENER_DATA_DIR",
    fallback: "./data",
    help: "directory holding shortener.db",
    parse: path,
  }),
  setting({
    key: "minDiskFreeBytes",
    flag: "min-disk-free",
    env: "SHORTENER_MIN_DISK_FREE",
    fallback: "512MiB",
    help: "check fails below this much free space on the data dir's filesystem",
    parse: size,
  }),
  setting({
    key: "baseUrl",
    flag: "base-url",
    env: "SHORTENER_BASE_URL",
    fallback: "http://localhost:8080",
    help: "public base URL of short links",
    parse: (raw, name) => {
      let url: URL;
      try {
        url = new URL(raw);
      } catch {
        throw new SettingError(name, `"${raw}" is not an absolute URL (e.g. https://s.example.com)`);
      }
      if (url.protocol !== "http:" && url.protocol !== "https:") throw new SettingError(name, `"${raw}" must be http or https`);
      if (url.search || url.hash || url.username) throw new SettingError(name, `"${raw}" must not have a query, fragment or credentials`);
      return url.href.replace(/\/+$/, "");
    },
  }),
  setting({
    key: "litestreamConfig",
    flag: "litestream-config",
    env: "SHORTENER_LITESTREAM_CONFIG",
    fallback: "/etc/litestream.yml",
    help: "Litestream config: restore and drill read the replica, serve (--replication litestream) its socket",
    parse: path,
  }),
  setting({
    key: "replication",
    flag: "replication",
    env: "SHORTENER_REPLICATION",
    fallback: "off",
    help: "litestream (serve watches the replica's lag through Litestream's control socket) or off",
    parse: (raw, name) => {
      if (raw !== "off" && raw !== "litestream") throw new SettingError(name, `"${raw}" is not off or litestream`);
      return raw;
    },
  }),
  setting({
    key: "maxReplicationLagMs",
    flag: "max-replication-lag",
    env: "SHORTENER_MAX_REPLICATION_LAG",
    fallback: "30s",
    help: "link writes are refused with 503 while the replica is further behind than this",
    parse: duration(1000, 86_400_000),
  }),
  setting({
    key: "leaseTermMs",
    flag: "lease-term",
    env: "SHORTENER_LEASE_TERM",
    fallback: "30s",
    help: "a primary renews its replica lease every quarter of this and writes only within half of it",
    parse: duration(4000, 3_600_000),
  }),
  setting({
    key: "durability",
    flag: "durability",
    env: "SHORTENER_DURABILITY",
    fallback: "local",
    help: "local (acknowledge after the local commit) or replicated (after Litestream confirms the upload)",
    parse: (raw, name) => {
      if (raw !== "local" && raw !== "replicated") throw new SettingError(name, `"${raw}" is not local or replicated`);
      return raw;
    },
  }),
  setting({
    key: "redirectMaxAge",
    flag: "redirect-max-age",
    env: "SHORTENER_REDIRECT_MAX_AGE",
    fallback: "30",
    help: "Cache-Control max-age of redirects, seconds",
    parse: integer(0, 31_536_000),
  }),
  setting({
    key: "redirectStatus",
    flag: "redirect-status",
    env: "SHORTENER_REDIRECT_STATUS",
    fallback: "302",
    help: "default redirect status: 301, 302, 307 or 308",
    parse: (raw, name) => {
      const status = Number(raw) as RedirectStatus;
      if (!REDIRECT_STATUSES.includes(status) || !/^\d+$/.test(raw))
        throw new SettingError(name, `"${raw}" is not one of 301, 302, 307, 308`);
      return status;
    },
  }),
  setting({
    key: "cacheSize",
    flag: "cache-size",
    env: "SHORTENER_CACHE_SIZE",
    fallback: "100000",
    help: "links held in the redirect LRU",
    parse: integer(1, 50_000_000),
  }),
  setting({
    key: "shortCodeLength",
    flag: "short-code-length",
    env: "SHORTENER_SHORT_CODE_LENGTH",
    fallback: "7",
    help: "length of generated short codes",
    parse: integer(4, 64),
  }),
  setting({
    key: "visitFlushMs",
    flag: "visit-flush-interval",
    env: "SHORTENER_VISIT_FLUSH_INTERVAL",
    fallback: "1s",
    help: "longest a counted visit waits in memory before it is written (what a kill -9 may lose)",
    parse: duration(10, 1000),
  }),
  setting({
    key: "maxBodyBytes",
    flag: "max-body-bytes",
    env: "SHORTENER_MAX_BODY_BYTES",
    fallback: "65536",
    help: "largest accepted request body",
    parse: integer(1024, 16_777_216),
  }),
  setting({
    key: "drainGraceMs",
    flag: "drain-grace",
    env: "SHORTENER_DRAIN_GRACE",
    fallback: "5s",
    help: "how long a draining node keeps serving after /readyz fails",
    parse: duration(0, 600_000),
  }),
  setting({
    key: "trustedProxies",
    flag: "trusted-proxies",
    env: "SHORTENER_TRUSTED_PROXIES",
    fallback: "",
    help: "comma-separated CIDRs whose X-Forwarded-For gives the client IP",
    parse: parseCidrList,
  }),
  setting({
    key: "corsAllowOrigin",
    flag: "cors-allow-origin",
    env: "SHORTENER_CORS_ALLOW_ORIGIN",
    fallback: "*",
    help: "browser origins allowed to call the REST API: *, <origin> (any, echoed) or comma-separated origins",
    parse: parseCorsOrigins,
  }),
  setting({
    key: "shutdownTimeoutMs",
    flag: "shutdown-timeout",
    env: "SHORTENER_SHUTDOWN_TIMEOUT",
    fallback: "30s",
    help: "time allowed for in-flight requests on shutdown",
    parse: duration(100, 600_000),
  }),
  setting({
    key: "realtimeMaxSubscribers",
    flag: "realtime-max-subscribers",
    env: "SHORTENER_REALTIME_MAX_SUBSCRIBERS",
    fallback: "100",
    help: "most concurrent subscribers of the real-time feed (Mercure hub); 0 turns it off",
    parse: integer(0, 10_000),
  }),
  setting({
    key: "drillMaxRpoMs",
    flag: "drill-max-rpo",
    env: "SHORTENER_DRILL_MAX_RPO",
    fallback: "60s",
    help: "drill fails when the replica is further behind the live database than this",
    parse: duration(100, 86_400_000),
  }),
  setting({
    key: "drillTimeoutMs",
    flag: "drill-timeout",
    env: "SHORTENER_DRILL_TIMEOUT",
    fallback: "10m",
    help: "drill gives up on a restore that takes longer than this",
    parse: duration(1000, 86_400_000),
  }),
  ...NOT_FOUND_SETTINGS,
  ...VISIT_SETTINGS,
  ...WEBHOOK_SETTINGS,
] as const;

/** Flag names every command accepts. */
export const SETTING_FLAGS: ReadonlySet<string> = new Set(SETTINGS.map((s) => s.flag));

/** A SHORTENER_* variable no setting reads, and the setting variable it most likely misspells (null if none is close). */
export interface UnknownSettingVariable {
  name: string;
  closest: string | null;
}

/**
 * SHORTENER_* variables in `env` that no setting reads. A misspelt one in an env file is not an error (the variable
 * could be meant for something else), but its setting silently keeps its default: `serve` warns, `check` fails.
 */
export function unknownSettingVariables(env: Record<string, string | undefined>): UnknownSettingVariable[] {
  const known = new Set<string>(SETTINGS.map((s) => s.env));
  return Object.keys(env)
    .filter((name) => name.startsWith("SHORTENER_") && !known.has(name))
    .sort()
    .map((name) => ({ name, closest: closestName(name, known, 3) }));
}

/** How a setting was given, for errors: its flag, else its variable when set, else its flag. */
export function settingName(key: keyof Config, flags: ReadonlyMap<string, string | true>, env: Record<string, string | undefined>): string {
  const s = SETTINGS.find((candidate) => candidate.key === key);
  if (s === undefined) throw new Error(`${key} is not a setting`);
  return flags.get(s.flag) !== undefined ? `--${s.flag}` : env[s.env] !== undefined ? s.env : `--${s.flag}`;
}

/** Builds the frozen Config from flags and an environment (process.env in production, a literal in tests). */
export function loadConfig(flags: ReadonlyMap<string, string | true>, env: Record<string, string | undefined>): Readonly<Config> {
  const values: Record<string, unknown> = {};
  for (const s of SETTINGS) {
    const flag = flags.get(s.flag);
    const name = settingName(s.key, flags, env);
    if (flag === true) throw new SettingError(name, "needs a value");
    const raw = flag ?? env[s.env] ?? s.fallback;
    values[s.key] = s.parse(raw, name);
  }
  const config = values as unknown as Config;
  config.databasePath = resolve(config.dataDir, "shortener.db");
  config.defaultDomain = new URL(config.baseUrl).host;
  // Only Litestream's control socket can confirm an upload (serve checks that the config file names one).
  if (config.durability === "replicated" && config.replication !== "litestream") {
    throw new SettingError(
      settingName("durability", flags, env),
      "replicated needs --replication litestream (SHORTENER_REPLICATION=litestream)",
    );
  }
  Object.assign(config, loadTracing(env));
  return Object.freeze(config);
}
