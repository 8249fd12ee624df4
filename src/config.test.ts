import { describe, expect, test } from "bun:test";
import { loadConfig } from "./config";

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
  ])("rejects a bad value with an error naming the setting (%p %p)", (f, env, name) => {
    expect(() => loadConfig(flags(f as Record<string, string>), env)).toThrow(`invalid setting ${name}:`);
  });
});
