import { afterAll, describe, expect, test } from "bun:test";
import { rmSync } from "node:fs";
import { LATEST_VERSION } from "../src/storage/migrations";
import { eventLines, freePort, runCli, startServer, TestServer, tempDir } from "./support/binary";

const dirs: string[] = [];
const dir = () => {
  const d = tempDir();
  dirs.push(d);
  return d;
};
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe("shortener version", () => {
  test("prints version, commit, Bun and SQLite versions", async () => {
    const result = await runCli(["version", "--json"]);
    expect(result.exitCode).toBe(0);
    const facts = JSON.parse(result.stdout) as Record<string, string>;
    expect(facts.version).toMatch(/^\d+\.\d+\.\d+/);
    expect(facts.commit).toMatch(/^[0-9a-f]{12}(-dirty)?$|^unknown$/);
    expect(facts.bun).toBe("1.4.5");
    expect(facts.sqlite).toMatch(/^3\.\d+\.\d+$/);
  });
});

describe("settings", () => {
  test.each([
    [["serve", "--listen", "nowhere"], {}, "--listen"],
    [["serve", "--base-url", "mailto:x@example.com"], {}, "--base-url"],
    [["serve"], { SHORTENER_LISTEN: "127.0.0.1:99999" }, "SHORTENER_LISTEN"],
    [["serve"], { SHORTENER_OPS_LISTEN: "8081" }, "SHORTENER_OPS_LISTEN"],
    [["serve", "--ops-listen", "0.0.0.0:8081"], {}, "--ops-listen"],
    [["keys", "list", "--redirect-max-age", "-5"], {}, "--redirect-max-age"],
    [["serve", "--cors-allow-origin", "https://admin.example.com/"], {}, "--cors-allow-origin"],
    [["serve"], { SHORTENER_CORS_ALLOW_ORIGIN: "admin.example.com" }, "SHORTENER_CORS_ALLOW_ORIGIN"],
  ])("%p with %p exits 1 with one line naming the setting", async (args, env, name) => {
    const result = await runCli([...args, "--data-dir", dir()], env as Record<string, string>);
    expect(result.exitCode).toBe(1);
    expect(result.stderr.trim().split("\n")).toHaveLength(1);
    expect(result.stderr).toContain(`invalid setting ${name}:`);
  });

  test("a port already in use exits 70 (restartable, unlike a bad setting) and names --listen", async () => {
    await using server = await startServer();
    const result = await runCli([
      "serve",
      "--data-dir",
      dir(),
      "--listen",
      `127.0.0.1:${server.port}`,
      "--ops-listen",
      `127.0.0.1:${freePort()}`,
    ]);
    expect(result.exitCode).toBe(70);
    expect(result.stderr).toContain(`cannot listen on 127.0.0.1:${server.port} (--listen): address already in use`);
  });

  test("an unknown command exits 2 with a hint", async () => {
    const result = await runCli(["frobnicate"]);
    expect(result.exitCode).toBe(2);
    expect(result.stderr).toContain("Try: shortener help");
  });
});

describe("shortener keys", () => {
  test("create prints only a prefixed key of at least 128 random bits, once", async () => {
    const dataDir = dir();
    const result = await runCli(["keys", "create", "--name", "ci", "--data-dir", dataDir]);
    expect(result.exitCode).toBe(0);
    expect(result.stdout).toMatch(/^shk_[0-9A-Za-z]{32}\n$/);
    const again = await runCli(["keys", "create", "--name", "ci", "--data-dir", dataDir]);
    expect(again.exitCode).toBe(2);
    expect(again.stderr).toContain('a key named "ci" already exists');
    expect(again.stdout).toBe("");
  });

  test("list shows names and roles but never a secret or its hash", async () => {
    const dataDir = dir();
    const secret = (
      await runCli(["keys", "create", "--name", "reader", "--role", "read-only", "--expires", "30d", "--data-dir", dataDir])
    ).stdout.trim();
    const hash = new Bun.CryptoHasher("sha256").update(secret).digest("hex");
    for (const args of [
      ["keys", "list"],
      ["keys", "list", "--json"],
    ]) {
      const result = await runCli([...args, "--data-dir", dataDir]);
      expect(result.exitCode).toBe(0);
      expect(result.stdout).toContain("reader");
      expect(result.stdout).toContain("read-only");
      expect(result.stdout).not.toContain(secret);
      expect(result.stdout).not.toContain(secret.slice(4, 20));
      expect(result.stdout).not.toContain(hash);
    }
  });

  test("rejects a bad role, a past expiry and a missing name with usage hints", async () => {
    const dataDir = dir();
    for (const args of [
      ["keys", "create", "--name", "x", "--role", "root"],
      ["keys", "create", "--name", "x", "--expires", "2001-01-01T00:00:00Z"],
      ["keys", "create"],
      ["keys", "revoke", "nobody"],
      ["keys"],
    ]) {
      const result = await runCli([...args, "--data-dir", dataDir]);
      expect(result.exitCode).toBe(2);
      expect(result.stderr).toContain("usage: shortener keys");
    }
  });

  test("a revoked key gets 401 invalid-api-key and no key 401 missing-authentication while the server runs", async () => {
    await using server = await startServer();
    const spare = await server.createKey("spare");
    expect((await server.api("/rest/v3/short-urls", { headers: { "X-Api-Key": spare } })).status).toBe(200);
    expect((await runCli(["keys", "revoke", "spare", "--data-dir", server.dataDir])).exitCode).toBe(0);
    const revoked = await server.api("/rest/v3/short-urls", { headers: { "X-Api-Key": spare } });
    expect(revoked.status).toBe(401);
    expect(((await revoked.json()) as { type: string }).type).toBe("https://shlink.io/api/error/invalid-api-key");
    const missing = await fetch(`${server.baseUrl}/rest/v3/short-urls`);
    expect(missing.status).toBe(401);
    expect(((await missing.json()) as { type: string }).type).toBe("https://shlink.io/api/error/missing-authentication");
  });
});

describe("first start", () => {
  test("with no keys, the server says how to create one", async () => {
    await using server = await new TestServer().start();
    expect(server.stdout + server.stderr).toContain("shortener keys create --name admin");
  });

  test("warns of a SHORTENER_* variable no setting reads, naming the one it likely misspells, and starts", async () => {
    await using server = await new TestServer({ env: { SHORTENER_DRAIN_GRCE: "30s" } }).start();
    const warnings = eventLines(server.stderr, "unknown_setting_variable").map((line) => JSON.parse(line));
    expect(warnings).toEqual([
      expect.objectContaining({
        level: "warn",
        name: "SHORTENER_DRAIN_GRCE",
        hint: expect.stringContaining("did you mean SHORTENER_DRAIN_GRACE?"),
      }),
    ]);
    expect(eventLines(server.stdout + server.stderr, "unknown_setting_variable")).toHaveLength(1);
  });

  test("logs each schema migration before and after applying it, with how long it took; a restart applies none", async () => {
    const migrations = (stdout: string) =>
      stdout
        .split("\n")
        .filter((line) => line.includes('"schema_migrat'))
        .map((line) => JSON.parse(line) as { level: string; event: string; version: number; duration_ms?: number });
    const dataDir = dir();
    {
      await using server = await new TestServer({ dataDir }).start();
      const events = migrations(server.stdout);
      const versions = Array.from({ length: LATEST_VERSION }, (_, i) => i + 1);
      expect(events.map((e) => `${e.event} ${e.version}`)).toEqual(
        versions.flatMap((v) => [`schema_migrating ${v}`, `schema_migrated ${v}`]),
      );
      for (const e of events) expect(e.level).toBe("info");
      for (const e of events.filter((e) => e.event === "schema_migrated")) expect(Number.isInteger(e.duration_ms)).toBe(true);
    }
    await using again = await new TestServer({ dataDir }).start();
    expect(migrations(again.stdout)).toEqual([]);
  });
});

describe("flags", () => {
  test.each([
    [["serve", "--bogus", "x"], "--bogus"],
    [["check", "--min-disk-fre", "2GiB"], "--min-disk-fre"],
    [["keys", "list", "--nme", "x"], "--nme"],
    [["drain", "--timout", "5s"], "--timout"],
    [["version", "--jsn"], "--jsn"],
  ] as [string[], string][])("a misspelt flag (%p) exits 2 naming it, instead of running on a default", async (args, flag) => {
    const result = await runCli([...args, "--data-dir", dir()]);
    expect(result.exitCode).toBe(2);
    expect(result.stderr).toContain(`unknown flag ${flag}`);
  });
});
