/**
 * `shortener check` against the compiled binary: every check passes on a healthy data dir (made by a real
 * server, started once and stopped), and each one, broken on purpose, fails by name with a hint and exit 1.
 * synchronous and busy_timeout cannot be broken from outside the binary: src/ops/checks/database-checks.test.ts
 * covers their failures; the SQLite version logic is in src/ops/checks/sqlite-version.test.ts.
 */

import { Database } from "bun:sqlite";
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, closeSync, cpSync, existsSync, openSync, rmSync, writeSync } from "node:fs";
import { join } from "node:path";
import { BINARY, freePort, type RunResult, runCli, startServer, tempDir } from "./support/binary";

interface CheckResult {
  name: string;
  ok: boolean;
  detail: string;
  hint?: string;
}
interface Report {
  ok: boolean;
  checks: CheckResult[];
}

const ALL_CHECKS = [
  "settings",
  "database.open",
  "database.quick_check",
  "database.journal_mode",
  "database.synchronous",
  "database.busy_timeout",
  "database.migrations",
  "data_dir.writable",
  "disk.free",
  "sqlite.version",
  "ops_listen.port",
];

const dirs: string[] = [];
let healthy = "";

beforeAll(async () => {
  healthy = tempDir();
  dirs.push(healthy);
  const server = await startServer({ dataDir: healthy });
  const created = await server.api("/rest/v3/short-urls", {
    method: "POST",
    body: JSON.stringify({ longUrl: "https://example.com/docs", customSlug: "docs", tags: ["ops"] }),
  });
  expect(created.status).toBe(200);
  expect(await server.stop()).toBe(0);
});

afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** A fresh copy of the healthy data dir, so each test breaks its own. */
function healthyCopy(): string {
  const dir = tempDir();
  dirs.push(dir);
  cpSync(healthy, dir, { recursive: true });
  return dir;
}

const dbFile = (dataDir: string) => join(dataDir, "shortener.db");

/** Runs `check --json` on a data dir with a free ops port; extra args come last and so win. */
async function check(dataDir: string, ...extra: string[]): Promise<RunResult & { report: Report }> {
  const result = await runCli(["check", "--json", "--data-dir", dataDir, "--ops-listen", `127.0.0.1:${freePort()}`, ...extra]);
  return { ...result, report: JSON.parse(result.stdout) as Report };
}

const failed = (report: Report) => report.checks.filter((c) => !c.ok).map((c) => c.name);
const named = (report: Report, name: string) => report.checks.find((c) => c.name === name);

function withDatabase<T>(dataDir: string, fn: (db: Database) => T): T {
  const db = new Database(dbFile(dataDir));
  try {
    return fn(db);
  } finally {
    db.close();
  }
}

describe("shortener check", () => {
  test("passes every check on a healthy data dir with exit 0, --json ok: true", async () => {
    const { exitCode, report } = await check(healthyCopy());
    expect(report.checks.map((c) => c.name)).toEqual(ALL_CHECKS);
    expect(failed(report)).toEqual([]);
    expect(report.ok).toBe(true);
    expect(exitCode).toBe(0);
  });

  test("prints one ok line per check in the human form", async () => {
    const result = await runCli(["check", "--data-dir", healthyCopy(), "--ops-listen", `127.0.0.1:${freePort()}`]);
    expect(result.exitCode).toBe(0);
    const lines = result.stdout.trim().split("\n");
    for (const name of ALL_CHECKS) expect(lines).toContainEqual(expect.stringMatching(new RegExp(`^ok {3}${name.replace(".", "\\.")} `)));
    expect(lines.at(-1)).toBe(`all ${ALL_CHECKS.length} checks passed`);
  });

  test("reports settings when a setting is bad", async () => {
    const { exitCode, report } = await check(healthyCopy(), "--ops-listen", "8081");
    expect(exitCode).toBe(1);
    expect(report.ok).toBe(false);
    expect(report.checks).toEqual([
      expect.objectContaining({ name: "settings", ok: false, detail: expect.stringContaining("invalid setting --ops-listen") }),
    ]);
  });

  test("fails settings on a misspelt SHORTENER_* variable, and still runs every other check", async () => {
    const dataDir = healthyCopy();
    const result = await runCli(["check", "--json", "--data-dir", dataDir, "--ops-listen", `127.0.0.1:${freePort()}`], {
      SHORTENER_MIN_DISK_FRE: "2GiB",
      SHORTENER_BIN: "/usr/local/bin/shortener",
    });
    const report = JSON.parse(result.stdout) as Report;
    expect(result.exitCode).toBe(1);
    expect(report.checks.map((c) => c.name)).toEqual(ALL_CHECKS);
    expect(failed(report)).toEqual(["settings"]);
    expect(named(report, "settings")).toEqual({
      name: "settings",
      ok: false,
      detail: "SHORTENER_MIN_DISK_FRE is not a setting (did you mean SHORTENER_MIN_DISK_FREE?)",
      hint: expect.stringContaining("its setting keeps its default"),
    });
  });

  test("passes settings beside a SHORTENER_* variable unlike any setting's (a script's own), naming it", async () => {
    const result = await runCli(["check", "--json", "--data-dir", healthyCopy(), "--ops-listen", `127.0.0.1:${freePort()}`], {
      SHORTENER_BIN: "/usr/local/bin/shortener",
    });
    const report = JSON.parse(result.stdout) as Report;
    expect(result.exitCode).toBe(0);
    expect(named(report, "settings")).toEqual({ name: "settings", ok: true, detail: "valid (not settings, ignored: SHORTENER_BIN)" });
  });

  test("reports database.open when there is no database, and does not create one", async () => {
    const dataDir = tempDir();
    dirs.push(dataDir);
    const { exitCode, report } = await check(dataDir);
    expect(exitCode).toBe(1);
    expect(failed(report)).toEqual(["database.open"]);
    expect(named(report, "database.open")?.detail).toBe(`no database at ${dbFile(dataDir)}`);
    expect(named(report, "database.open")?.hint).toContain("shortener serve");
    expect(existsSync(dbFile(dataDir))).toBe(false);
  });

  test("reports database.quick_check when a page in the middle of the database is garbage", async () => {
    const dataDir = healthyCopy();
    // The tags table's root page: not read while the app is built, so the file opens and quick_check finds it.
    const { page, pageSize, pageCount } = withDatabase(dataDir, (db) => ({
      page: (db.query("SELECT rootpage FROM sqlite_schema WHERE name = 'tags'").get() as { rootpage: number }).rootpage,
      pageSize: (db.query("PRAGMA page_size").get() as { page_size: number }).page_size,
      pageCount: (db.query("PRAGMA page_count").get() as { page_count: number }).page_count,
    }));
    expect(page).toBeGreaterThan(1);
    expect(page).toBeLessThan(pageCount);
    const fd = openSync(dbFile(dataDir), "r+");
    writeSync(fd, Buffer.alloc(pageSize, 0xa5), 0, pageSize, (page - 1) * pageSize);
    closeSync(fd);

    const { exitCode, report } = await check(dataDir);
    expect(exitCode).toBe(1);
    expect(failed(report)).toEqual(["database.quick_check"]);
    expect(named(report, "database.quick_check")?.hint).toContain("restore");
  });

  test("reports database.journal_mode when the database is not in WAL mode, and leaves it so", async () => {
    const dataDir = healthyCopy();
    withDatabase(dataDir, (db) => db.exec("PRAGMA journal_mode = DELETE"));
    const { exitCode, report } = await check(dataDir);
    expect(exitCode).toBe(1);
    expect(failed(report)).toEqual(["database.journal_mode"]);
    expect(named(report, "database.journal_mode")?.detail).toBe("delete, want wal");
    expect(withDatabase(dataDir, (db) => db.query("PRAGMA journal_mode").get())).toEqual({ journal_mode: "delete" });
  });

  test("reports database.migrations when a migration is pending, and does not apply it", async () => {
    const dataDir = healthyCopy();
    withDatabase(dataDir, (db) => db.exec("PRAGMA user_version = 0"));
    const { exitCode, report } = await check(dataDir);
    expect(exitCode).toBe(1);
    expect(failed(report)).toEqual(["database.migrations"]);
    expect(named(report, "database.migrations")?.detail).toContain("pending");
    expect(named(report, "database.migrations")?.hint).toContain("shortener serve");
    expect(withDatabase(dataDir, (db) => db.query("PRAGMA user_version").get())).toEqual({ user_version: 0 });
  });

  test("reports database.migrations when the schema is newer than the binary", async () => {
    const dataDir = healthyCopy();
    withDatabase(dataDir, (db) => db.exec("PRAGMA user_version = 999"));
    const { exitCode, report } = await check(dataDir);
    expect(exitCode).toBe(1);
    expect(failed(report)).toEqual(["database.migrations"]);
    expect(named(report, "database.migrations")?.detail).toContain("newer than this binary");
    expect(named(report, "database.migrations")?.hint).toContain("newer shortener binary");
  });

  test("reports data_dir.writable when the service user cannot write the data dir", async () => {
    const dataDir = healthyCopy();
    chmodSync(dataDir, 0o555);
    // Root ignores mode bits (CAP_DAC_OVERRIDE), so as root the check runs as nobody, as a service user would.
    const asServiceUser = process.getuid?.() === 0 ? ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"] : [];
    const proc = Bun.spawn(
      [...asServiceUser, BINARY, "check", "--json", "--data-dir", dataDir, "--ops-listen", `127.0.0.1:${freePort()}`],
      {
        env: { PATH: process.env.PATH ?? "" },
        stdout: "pipe",
        stderr: "pipe",
      },
    );
    const [stdout, exitCode] = await Promise.all([new Response(proc.stdout).text(), proc.exited]);
    chmodSync(dataDir, 0o700);
    const report = JSON.parse(stdout) as Report;
    expect(exitCode).toBe(1);
    expect(failed(report)).toContain("data_dir.writable");
    expect(named(report, "data_dir.writable")?.detail).toContain("EACCES");
    expect(named(report, "data_dir.writable")?.hint).toContain(`chown shortener: ${dataDir}`);
  });

  test("reports disk.free when free space is below --min-disk-free, with the hint in the human form", async () => {
    const dataDir = healthyCopy();
    const { exitCode, report } = await check(dataDir, "--min-disk-free", "1000TiB");
    expect(exitCode).toBe(1);
    expect(failed(report)).toEqual(["disk.free"]);
    expect(named(report, "disk.free")?.detail).toMatch(/ free < 1000 TiB$/);

    const human = await runCli(["check", "--data-dir", dataDir, "--ops-listen", `127.0.0.1:${freePort()}`, "--min-disk-free", "1000TiB"]);
    expect(human.exitCode).toBe(1);
    expect(human.stdout).toMatch(/^FAIL disk\.free +.* free < 1000 TiB {2}\(hint: free space on .* or lower --min-disk-free\)$/m);
    expect(human.stdout).toContain(`1 of ${ALL_CHECKS.length} checks failed`);
  });

  test("reports ops_listen.port when something other than shortener holds the ops port", async () => {
    using other = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Response("not here", { status: 404 }) });
    const { exitCode, report } = await check(healthyCopy(), "--ops-listen", `127.0.0.1:${other.port}`);
    expect(exitCode).toBe(1);
    expect(failed(report)).toEqual(["ops_listen.port"]);
    expect(named(report, "ops_listen.port")?.detail).toBe(`127.0.0.1:${other.port} is in use by something else`);
    expect(named(report, "ops_listen.port")?.hint).toContain("--ops-listen");
  });

  test("passes ops_listen.port when a running shortener owns the ops port", async () => {
    // A stand-in for the real ops listener's GET /control/status (same JSON shape) until that listener lands.
    using owner = Bun.serve({
      hostname: "127.0.0.1",
      port: 0,
      fetch: (request) =>
        new URL(request.url).pathname === "/control/status"
          ? Response.json({ service: "shortener", version: "0.1.0", role: "primary", draining: false, pid: 4242, dataDir: "/x" })
          : new Response("not found", { status: 404 }),
    });
    const { exitCode, report } = await check(healthyCopy(), "--ops-listen", `127.0.0.1:${owner.port}`);
    expect(failed(report)).toEqual([]);
    expect(exitCode).toBe(0);
    expect(named(report, "ops_listen.port")?.detail).toBe(`127.0.0.1:${owner.port} is owned by a running shortener (pid 4242)`);
  });
});
