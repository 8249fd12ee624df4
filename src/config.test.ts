import { describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { writeMmdb } from "../test/support/mmdb";
import { loadConfig, unknownSettingVariables } from "./config";

const flags = (entries: Record<string, string>) => new Map(Object.entries(entries));

describe("loadConfig", () => {
  test("uses the documented defaults when nothing is set", () => {
    const config = loadConfig(new Map(), {});
    expect(config.listen).toEqual({ hostname: "0.0.0.0", port: 8080 });
    expect(config.opsListen).toEqual({ hostname: "127.0.0.1", port: 8081 });
    expect(config.databasePath.endsWith("/data/shortener.db")).toBe(true);
    expect(config.baseUrl).toBe("http://localhost:8080");
    expect(config.defaultDomain).toBe("localhost:8080");
    expect(config.redirectMaxAge).toBe(30);
    expect(config.shortCodeLength).toBe(7);
    expect(config.minDiskFreeBytes).toBe(512 * 2 ** 20);
    expect(Object.isFrozen(config)).toBe(true);
  });

  test("flags override environment variables which override defaults", () => {
    const env = { SHORTENER_LISTEN: "127.0.0.1:9000", SHORTENER_BASE_URL: "https://s.example.com/" };
    expect(loadConfig(new Map(), env).listen.port).toBe(9000);
    expect(loadConfig(flags({ listen: "127.0.0.1:9001" }), env).listen.port).toBe(9001);
    expect(loadConfig(new Map(), env).baseUrl).toBe("https://s.example.com");
  });

  test("the ops listener takes loopback addresses only: it answers without an API key", () => {
    for (const ok of ["127.0.0.1:8081", "127.0.0.2:9", "localhost:8081", "[::1]:8081"]) {
      expect(loadConfig(flags({ "ops-listen": ok }), {}).opsListen.port, ok).toBeGreaterThan(0);
    }
    for (const bad of ["0.0.0.0:8081", ":8081", "10.0.0.5:8081", "[::]:8081", "ops.example.com:8081", "127.0.0.1.example.com:1"]) {
      expect(() => loadConfig(flags({ "ops-listen": bad }), {}), bad).toThrow(/--ops-listen: .* is not a loopback address/);
    }
    expect(() => loadConfig(new Map(), { SHORTENER_OPS_LISTEN: "0.0.0.0:8081" })).toThrow(
      /SHORTENER_OPS_LISTEN: .* not a loopback address/,
    );
  });

  test("SHORTENER_* variables no setting reads are listed, each with the setting variable it likely misspells", () => {
    const env = { SHORTENER_LISTEN: "127.0.0.1:1", SHORTENER_LISTN: "x", SHORTENER_DATADIR: "/d", SHORTENER_COLOUR: "blue", PATH: "/bin" };
    expect(unknownSettingVariables(env)).toEqual([
      { name: "SHORTENER_COLOUR", closest: null },
      { name: "SHORTENER_DATADIR", closest: "SHORTENER_DATA_DIR" },
      { name: "SHORTENER_LISTN", closest: "SHORTENER_LISTEN" },
    ]);
    expect(unknownSettingVariables({ SHORTENER_LISTEN: "x", SHORTENER_VISITS_RETENTION: "30d", OTEL_SERVICE_NAME: "s" })).toEqual([]);
  });

  test("the not-found redirects are none by default, and kept as given (placeholders readable)", () => {
    expect(loadConfig(new Map(), {})).toMatchObject({ baseUrlRedirect: null, regular404Redirect: null, invalidShortUrlRedirect: null });
    const given = "https://example.com/missing{ORIGINAL_PATH}?from={DOMAIN}";
    expect(loadConfig(flags({ "regular-404-redirect": given }), {}).regular404Redirect).toBe(given);
  });

  test.each([
    [{ listen: "nonsense" }, {}, "--listen"],
    [{ listen: "1.2.3.4:70000" }, {}, "--listen"],
    [{}, { SHORTENER_OPS_LISTEN: "localhost" }, "SHORTENER_OPS_LISTEN"],
    [{ "base-url": "ftp://x" }, {}, "--base-url"],
    [{}, { SHORTENER_BASE_URL: "not a url" }, "SHORTENER_BASE_URL"],
    [{ "redirect-status": "303" }, {}, "--redirect-status"],
    [{ "short-code-length": "2" }, {}, "--short-code-length"],
    [{ role: "leader" }, {}, "--role"],
    [{ "visit-flush-interval": "5s" }, {}, "--visit-flush-interval"],
    [{}, { SHORTENER_MIN_DISK_FREE: "lots" }, "SHORTENER_MIN_DISK_FREE"],
    [{ "base-url-redirect": "javascript:alert(1)" }, {}, "--base-url-redirect"],
    [{ "regular-404-redirect": "/relative" }, {}, "--regular-404-redirect"],
    [{ "regular-404-redirect": "https://example.com{ORIGINAL_PATH}" }, {}, "--regular-404-redirect"],
    [{}, { SHORTENER_INVALID_SHORT_URL_REDIRECT: "https://example.com/a b" }, "SHORTENER_INVALID_SHORT_URL_REDIRECT"],
  ])("rejects a bad value with an error naming the setting (%p %p)", (f, env, name) => {
    expect(() => loadConfig(flags(f as Record<string, string>), env)).toThrow(`invalid setting ${name}:`);
  });
});

describe("tracing settings (OTEL_*)", () => {
  test("tracing is off without an endpoint, whatever else is set", () => {
    const config = loadConfig(new Map(), { OTEL_TRACES_SAMPLER: "nonsense", OTEL_BSP_SCHEDULE_DELAY: "soon" });
    expect(config.otlpEndpoint).toBeNull();
  });

  test("OTEL_EXPORTER_OTLP_ENDPOINT gets /v1/traces; OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is used as given and wins", () => {
    expect(loadConfig(new Map(), { OTEL_EXPORTER_OTLP_ENDPOINT: "http://collector:4318/" }).otlpEndpoint).toBe(
      "http://collector:4318/v1/traces",
    );
    const both = { OTEL_EXPORTER_OTLP_ENDPOINT: "http://a:4318", OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: "https://b/otlp/traces" };
    expect(loadConfig(new Map(), both).otlpEndpoint).toBe("https://b/otlp/traces");
  });

  test("OTEL_SDK_DISABLED=true turns tracing off even with an endpoint", () => {
    expect(loadConfig(new Map(), { OTEL_EXPORTER_OTLP_ENDPOINT: "http://a:4318", OTEL_SDK_DISABLED: "true" }).otlpEndpoint).toBeNull();
  });

  test("reads the sampler, its ratio and the batch processor settings", () => {
    const config = loadConfig(new Map(), {
      OTEL_EXPORTER_OTLP_ENDPOINT: "http://a:4318",
      OTEL_TRACES_SAMPLER: "parentbased_traceidratio",
      OTEL_TRACES_SAMPLER_ARG: "0.01",
      OTEL_BSP_SCHEDULE_DELAY: "250",
      OTEL_EXPORTER_OTLP_PROTOCOL: "http/json",
    });
    expect(config.tracing).toMatchObject({
      sampler: "parentbased_traceidratio",
      samplerRatio: 0.01,
      batchDelayMs: 250,
      maxQueueSize: 2048,
    });
  });

  test("defaults to parentbased_always_on, as the OpenTelemetry specification does", () => {
    expect(loadConfig(new Map(), { OTEL_EXPORTER_OTLP_ENDPOINT: "http://a:4318" }).tracing.sampler).toBe("parentbased_always_on");
  });

  test.each([
    ["OTEL_EXPORTER_OTLP_ENDPOINT", { OTEL_EXPORTER_OTLP_ENDPOINT: "collector:4318" }],
    ["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", { OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: "not a url" }],
    ["OTEL_EXPORTER_OTLP_PROTOCOL", { OTEL_EXPORTER_OTLP_ENDPOINT: "http://a:4318", OTEL_EXPORTER_OTLP_PROTOCOL: "http/protobuf" }],
    ["OTEL_TRACES_SAMPLER", { OTEL_EXPORTER_OTLP_ENDPOINT: "http://a:4318", OTEL_TRACES_SAMPLER: "xray" }],
    [
      "OTEL_TRACES_SAMPLER_ARG",
      { OTEL_EXPORTER_OTLP_ENDPOINT: "http://a:4318", OTEL_TRACES_SAMPLER: "traceidratio", OTEL_TRACES_SAMPLER_ARG: "x" },
    ],
    ["OTEL_BSP_MAX_EXPORT_BATCH_SIZE", { OTEL_EXPORTER_OTLP_ENDPOINT: "http://a:4318", OTEL_BSP_MAX_EXPORT_BATCH_SIZE: "5000" }],
  ])("rejects a bad %s with an error naming it", (name, env) => {
    expect(() => loadConfig(new Map(), env)).toThrow(`invalid setting ${name}:`);
  });
});

describe("replication settings", () => {
  test("replication is off, the lag limit 30 s and durability local unless set", () => {
    const config = loadConfig(new Map(), {});
    expect([config.replication, config.maxReplicationLagMs, config.durability]).toEqual(["off", 30_000, "local"]);
  });

  test.each([
    [{ replication: "s3" }, {}, "--replication"],
    [{}, { SHORTENER_MAX_REPLICATION_LAG: "500ms" }, "SHORTENER_MAX_REPLICATION_LAG"],
    [{ durability: "paranoid" }, {}, "--durability"],
  ])("rejects a bad value with an error naming the setting (%p %p)", (f, env, name) => {
    expect(() => loadConfig(flags(f as Record<string, string>), env)).toThrow(`invalid setting ${name}:`);
  });

  test("replicated durability needs Litestream replication, and says so naming the setting as given", () => {
    expect(() => loadConfig(new Map(), { SHORTENER_DURABILITY: "replicated" })).toThrow(
      "invalid setting SHORTENER_DURABILITY: replicated needs --replication litestream",
    );
    const config = loadConfig(flags({ durability: "replicated", replication: "litestream" }), {});
    expect([config.replication, config.durability]).toEqual(["litestream", "replicated"]);
  });
});

describe("visit tracking settings", () => {
  test("track everything, anonymise addresses, keep raw visits 90 days, no location, unless set", () => {
    const config = loadConfig(new Map(), {});
    expect([config.anonymizeRemoteAddr, config.trackRemoteAddr, config.trackReferrer, config.trackUserAgent]).toEqual([
      true,
      true,
      true,
      true,
    ]);
    expect([config.skipTrackingFrom, config.visitsRetentionMs, config.geoipDb]).toEqual([[], 90 * 86_400_000, null]);
  });

  test("reads the switches, skipped ranges and retention from flags and SHORTENER_* variables", () => {
    const config = loadConfig(flags({ "track-referrer": "false", "visits-retention": "12h" }), {
      SHORTENER_ANONYMIZE_REMOTE_ADDR: "false",
      SHORTENER_TRACK_USER_AGENT: "0",
      SHORTENER_SKIP_TRACKING_FROM: "10.0.0.0/8, 192.0.2.7",
    });
    expect([config.anonymizeRemoteAddr, config.trackRemoteAddr, config.trackReferrer, config.trackUserAgent]).toEqual([
      false,
      true,
      false,
      false,
    ]);
    expect(config.skipTrackingFrom).toHaveLength(2);
    expect(config.visitsRetentionMs).toBe(12 * 3_600_000);
  });

  test("off or 0 keeps raw visits forever", () => {
    expect(loadConfig(flags({ "visits-retention": "off" }), {}).visitsRetentionMs).toBeNull();
    expect(loadConfig(new Map(), { SHORTENER_VISITS_RETENTION: "0" }).visitsRetentionMs).toBeNull();
  });

  test("--geoip-db names a readable MaxMind-format database, stored as an absolute path", () => {
    const dir = mkdtempSync(join(tmpdir(), "config-geoip-"));
    try {
      writeMmdb(join(dir, "city.mmdb"), [{ network: "203.0.113.0/24", data: { country: { iso_code: "DE" } } }]);
      expect(loadConfig(flags({ "geoip-db": join(dir, "city.mmdb") }), {}).geoipDb).toBe(join(dir, "city.mmdb"));
      writeFileSync(join(dir, "garbage.mmdb"), "not a database");
      expect(() => loadConfig(new Map(), { SHORTENER_GEOIP_DB: join(dir, "garbage.mmdb") })).toThrow(
        "invalid setting SHORTENER_GEOIP_DB: ",
      );
      expect(() => loadConfig(flags({ "geoip-db": join(dir, "missing.mmdb") }), {})).toThrow(
        `invalid setting --geoip-db: cannot read ${join(dir, "missing.mmdb")}: no such file`,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test.each([
    [{ "anonymize-remote-addr": "no" }, {}, "--anonymize-remote-addr"],
    [{}, { SHORTENER_TRACK_REMOTE_ADDR: "yes please" }, "SHORTENER_TRACK_REMOTE_ADDR"],
    [{ "skip-tracking-from": "10.0.0.0/33" }, {}, "--skip-tracking-from"],
    [{}, { SHORTENER_VISITS_RETENTION: "forever" }, "SHORTENER_VISITS_RETENTION"],
    [{ "visits-retention": "500ms" }, {}, "--visits-retention"],
  ])("rejects a bad value with an error naming the setting (%p %p)", (f, env, name) => {
    expect(() => loadConfig(flags(f as Record<string, string>), env)).toThrow(`invalid setting ${name}:`);
  });
});
