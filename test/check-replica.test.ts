/**
 * `shortener check` with --replication litestream, against the compiled binary, a real `litestream replicate` and a
 * real S3-compatible server on loopback: the replication checks pass on a replicating node, and each one, broken on
 * purpose (Litestream stopped, S3 not answering, the config, the binary, the clock), fails by name with a hint.
 */
import { Database } from "bun:sqlite";
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { freePort, type RunResult, runCli, startServer, tempDir } from "./support/binary";
import { cleanEnv, LitestreamProcess, writeLitestreamConfig } from "./support/litestream";
import { restoreReplica, shortCodesIn } from "./support/replica";
import { S3Server } from "./support/s3";

interface CheckResult {
  name: string;
  ok: boolean;
  detail: string;
  hint?: string;
}

const REPLICA_CHECKS = ["litestream.config", "litestream.binary", "replica.sync", "clock"];

const dirs: string[] = [];
let s3: S3Server;
let litestream: LitestreamProcess;
let dataDir = "";
let configPath = "";

beforeAll(async () => {
  dataDir = tempDir();
  dirs.push(dataDir);
  const server = await startServer({ dataDir });
  const created = await server.api("/rest/v3/short-urls", {
    method: "POST",
    body: JSON.stringify({ longUrl: "https://example.com/docs", customSlug: "docs" }),
  });
  expect(created.status).toBe(200);
  expect(await server.stop()).toBe(0);
  s3 = await S3Server.start();
  const config = writeLitestreamConfig({ dir: dataDir, databasePath: join(dataDir, "shortener.db"), s3, prefix: "check" });
  configPath = config.configPath;
  litestream = await new LitestreamProcess(config.configPath, config.socketPath).start();
});

afterAll(async () => {
  await litestream?.stop();
  await s3?.[Symbol.asyncDispose]();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** `check --json` of the node with replication on, Litestream's config `config`, and `env` over a clean one. */
async function check(config = configPath, env: Record<string, string> = {}): Promise<RunResult & { checks: Map<string, CheckResult> }> {
  const result = await runCli(
    ["check", "--json", "--data-dir", dataDir, "--ops-listen", `127.0.0.1:${freePort()}`],
    cleanEnv({ SHORTENER_REPLICATION: "litestream", SHORTENER_LITESTREAM_CONFIG: config, ...env }),
    60_000,
  );
  const report = JSON.parse(result.stdout) as { checks: CheckResult[] };
  return { ...result, checks: new Map(report.checks.map((c) => [c.name, c])) };
}

const failures = (checks: Map<string, CheckResult>) => [...checks.values()].filter((c) => !c.ok).map((c) => c.name);

/** A temp dir that goes when the tests end. */
function scratchDir(prefix?: string): string {
  const dir = tempDir(prefix);
  dirs.push(dir);
  return dir;
}

/** A directory holding only an executable `litestream` that runs `script`. */
function fakeLitestream(script: string): string {
  const dir = scratchDir("shortener-fake-litestream-");
  writeFileSync(join(dir, "litestream"), `#!/bin/sh\n${script}\n`);
  chmodSync(join(dir, "litestream"), 0o755);
  return dir;
}

describe("shortener check with --replication litestream (real Litestream, real S3 on loopback)", () => {
  test("passes the replication checks on a replicating node, having made the replica hold everything", async () => {
    const { exitCode, checks } = await check();
    expect([...checks.keys()].slice(-REPLICA_CHECKS.length)).toEqual(REPLICA_CHECKS);
    expect(failures(checks)).toEqual([]);
    expect(exitCode).toBe(0);
    expect(checks.get("litestream.config")?.detail).toContain(s3.endpoint);
    expect(checks.get("litestream.binary")?.detail).toContain("v0.5.18");
    expect(checks.get("replica.sync")?.detail).toMatch(/holds every transaction \(txid \d+\)/);
    expect(checks.get("clock")?.detail).toMatch(new RegExp(`^\\d+\\.\\d s (behind|ahead of) ${s3.endpoint}$`));
    // What the replica holds is what the database holds.
    const restored = join(scratchDir(), "restored.db");
    await restoreReplica(configPath, join(dataDir, "shortener.db"), restored);
    expect(shortCodesIn(restored)).toEqual(new Set(["docs"]));
  });

  test("replica.sync fails when the replica's server does not answer and the database has a change it lacks", async () => {
    s3.pause();
    try {
      const db = new Database(join(dataDir, "shortener.db"));
      db.run("INSERT INTO tags (name) VALUES ('written-while-s3-was-away')");
      db.close();
      const { exitCode, checks } = await check();
      expect(exitCode).toBe(1);
      expect(failures(checks)).toEqual(["replica.sync", "clock"]);
      expect(checks.get("replica.sync")?.detail).toContain("no confirmation within 10 s");
      expect(checks.get("replica.sync")?.hint).toContain("cannot upload");
      expect(checks.get("clock")?.detail).toContain(`cannot read the time of ${s3.endpoint}`);
    } finally {
      s3.resume();
    }
    // Once it answers again, the same check passes.
    expect(failures((await check()).checks)).toEqual([]);
  }, 90_000);

  test("replica.sync fails, saying Litestream is not running, when nothing answers on its socket", async () => {
    const dir = scratchDir();
    const stopped = writeLitestreamConfig({ dir, databasePath: join(dataDir, "shortener.db"), s3, prefix: "check" });
    const { exitCode, checks } = await check(stopped.configPath);
    expect(exitCode).toBe(1);
    expect(failures(checks)).toEqual(["replica.sync"]);
    expect(checks.get("replica.sync")?.hint).toContain("Litestream is not running");
  });

  test("litestream.config fails when the config does not list this database, and the checks that need it are left out", async () => {
    const dir = scratchDir();
    const other = writeLitestreamConfig({ dir, databasePath: join(dir, "other.db"), s3, prefix: "check" });
    const { exitCode, checks } = await check(other.configPath);
    expect(exitCode).toBe(1);
    expect(failures(checks)).toEqual(["litestream.config"]);
    expect(checks.has("replica.sync")).toBe(false);
    expect(checks.has("clock")).toBe(false);
    expect(checks.get("litestream.config")?.hint).toContain("set dbs[].path to");
  });

  test("litestream.binary fails when litestream is not on PATH, or bundles the SQLite with the WAL-reset bug", async () => {
    const empty = scratchDir();
    const missing = await check(configPath, { PATH: empty });
    expect(failures(missing.checks)).toEqual(["litestream.binary"]);
    expect(missing.checks.get("litestream.binary")?.hint).toContain("install Litestream v0.5.18");
    const old = await check(configPath, { PATH: fakeLitestream('echo "v0.5.16"') });
    expect(failures(old.checks)).toEqual(["litestream.binary"]);
    expect(old.checks.get("litestream.binary")?.detail).toContain("v0.5.16, which bundles an SQLite with the WAL-reset bug");
    const newer = await check(configPath, { PATH: fakeLitestream('echo "v0.6.0"') });
    expect(failures(newer.checks)).toEqual([]);
  });

  test("clock is not compared, and says why, when the replica's server comes from a variable check's environment lacks", async () => {
    // As in production: litestream.yml names the endpoint by a variable from Litestream's own env file.
    const dir = scratchDir();
    const byVariable = join(dir, "litestream.yml");
    writeFileSync(byVariable, (await Bun.file(configPath).text()).replace(s3.endpoint, "${LITESTREAM_S3_ENDPOINT}"));
    const without = await check(byVariable);
    expect(failures(without.checks)).toEqual([]);
    expect(without.checks.get("clock")?.detail).toBe(
      "not compared: the replica's server is named by $LITESTREAM_S3_ENDPOINT, unset here (load /etc/litestream.env to compare)",
    );
    const loaded = await check(byVariable, { LITESTREAM_S3_ENDPOINT: s3.endpoint });
    expect(failures(loaded.checks)).toEqual([]);
    expect(loaded.checks.get("clock")?.detail).toMatch(new RegExp(` s (behind|ahead of) ${s3.endpoint}$`));
  });

  test("clock fails when this host's clock is more than a minute off the replica's server", async () => {
    // A server on loopback whose clock is an hour behind ours stands for the replica's S3 server.
    using lagging = Bun.serve({
      hostname: "127.0.0.1",
      port: 0,
      fetch: () => new Response(null, { status: 403, headers: { Date: new Date(Date.now() - 3_600_000).toUTCString() } }),
    });
    const dir = scratchDir();
    const skewed = writeLitestreamConfig({ dir, databasePath: join(dataDir, "shortener.db"), s3, prefix: "check" });
    const text = await Bun.file(skewed.configPath).text();
    writeFileSync(skewed.configPath, text.replace(s3.endpoint, `http://127.0.0.1:${lagging.port}`));
    const { checks } = await check(skewed.configPath);
    const clock = checks.get("clock");
    expect(clock?.ok).toBe(false);
    expect(clock?.detail).toMatch(/^(3599|3600)\.\d s ahead of http:\/\/127\.0\.0\.1:\d+$/);
    expect(clock?.hint).toContain("timedatectl set-ntp true");
  });
});
