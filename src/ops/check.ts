/**
 * `shortener check`: builds the app the way `serve` does, without listening and without changing the database
 * (like Caddy's `validate`), and checks what a node needs to run. Exit 0 only if every check passes, else 1.
 *
 * 1. Settings load (a bad one is the failed `settings` check).
 * 2. `createApp` opens the database as found: not created, not switched to WAL, not migrated.
 * 3. The database, data dir, disk, SQLite and ops-port checks run in order; each failure carries a hint. With
 *    --replication litestream, the replication checks follow (src/ops/checks/replica-checks.ts).
 * 4. The app is disposed (the database closed) before the report is printed.
 */
import { existsSync } from "node:fs";
import { type AppContext, createApp } from "../app";
import type { Command } from "../commands/command";
import { isOutOfSpace } from "../commands/disk-wait";
import { type Config, loadConfig, unknownSettingVariables } from "../config";
import { spoolDir } from "../domain/visit-spool";
import { IO_ERROR_HINT, SettingError } from "../errors";
import { sqliteVersionString } from "../version";
import { type Check, type CheckResult, fail, pass, runCheck } from "./checks/check-result";
import { databaseChecks } from "./checks/database-checks";
import { dataDirWritableCheck, diskFreeCheck } from "./checks/filesystem-checks";
import { leaseChecks } from "./checks/lease-check";
import { opsPortCheck } from "./checks/ops-port-check";
import { replicaChecks } from "./checks/replica-checks";
import { sqliteVersionCheck } from "./checks/sqlite-version";
import { standbyCopyCheck, standbyVisitsCheck } from "./checks/standby-checks";

function openFailure(config: Readonly<Config>, error: unknown): CheckResult {
  if (!existsSync(config.databasePath)) {
    return fail(
      "database.open",
      `no database at ${config.databasePath}`,
      "start `shortener serve` once (it creates the database), or check --data-dir",
    );
  }
  const code = (error as { code?: string }).code ?? "";
  const hint = isOutOfSpace(error, config.dataDir)
    ? `the disk of ${config.dataDir} is full: SQLite needs room beside the file to open it, and the file is not damaged by that. Free space (runbooks/disk-filling.md); do not restore`
    : /^SQLITE_(READONLY|CANTOPEN|PERM)/.test(code)
      ? `the service user must be able to read and write the file and create files beside it (chown -R shortener: ${config.dataDir})`
      : code.startsWith("SQLITE_IOERR")
        ? `${IO_ERROR_HINT}; nothing says the file is damaged: run check again once the disk works, before restoring anything`
        : "is it a shortener database? If it is damaged, keep a copy and restore it from the replica or a backup";
  return fail("database.open", `cannot open ${config.databasePath}: ${error instanceof Error ? error.message : String(error)}`, hint);
}

async function runChecks(config: Readonly<Config>): Promise<CheckResult[]> {
  // A variable close to a setting's is a typo that leaves the setting at its default; others (a script's own
  // SHORTENER_* variable) are only named.
  const unknown = unknownSettingVariables(process.env);
  const typos = unknown.filter((u) => u.closest !== null);
  const ignored = unknown.filter((u) => u.closest === null).map((u) => u.name);
  const results: CheckResult[] = [
    typos.length > 0
      ? fail(
          "settings",
          typos.map((u) => `${u.name} is not a setting (did you mean ${u.closest}?)`).join("; "),
          "a misspelt variable is ignored and its setting keeps its default: fix the env file; `shortener help` lists the settings",
        )
      : pass("settings", ignored.length === 0 ? "valid" : `valid (not settings, ignored: ${ignored.join(", ")})`),
  ];
  let app: AppContext | undefined;
  try {
    app = createApp(config, { migrate: false });
    results.push(pass("database.open", config.databasePath));
  } catch (error) {
    // The other database checks need an open database; the failure above names the cause.
    results.push(openFailure(config, error));
  }
  const checks: Check[] = [
    ...(app === undefined ? [] : databaseChecks(app.db, config.role)),
    ...(app === undefined || config.role !== "standby" ? [] : [standbyCopyCheck(app.heartbeat, config.maxReplicationLagMs)]),
    ...(config.role === "standby" ? [standbyVisitsCheck(spoolDir(config.dataDir))] : []),
    dataDirWritableCheck(config.dataDir),
    diskFreeCheck(config.dataDir, config.minDiskFreeBytes),
    sqliteVersionCheck(sqliteVersionString()),
    opsPortCheck(config.opsListen),
    ...(config.replication === "litestream" ? [...replicaChecks(config, process.env), ...leaseChecks(config, process.env)] : []),
  ];
  try {
    for (const check of checks) results.push(await runCheck(check));
  } finally {
    await app?.[Symbol.asyncDispose]();
  }
  return results;
}

function report(results: readonly CheckResult[], json: boolean): number {
  const ok = results.every((r) => r.ok);
  if (json) {
    process.stdout.write(`${JSON.stringify({ ok, checks: results })}\n`);
  } else {
    const width = Math.max(...results.map((r) => r.name.length));
    for (const r of results) {
      const hint = r.hint === undefined ? "" : `  (hint: ${r.hint})`;
      process.stdout.write(`${r.ok ? "ok  " : "FAIL"} ${r.name.padEnd(width)}  ${r.detail}${hint}\n`);
    }
    const failed = results.filter((r) => !r.ok).length;
    process.stdout.write(failed === 0 ? `all ${results.length} checks passed\n` : `${failed} of ${results.length} checks failed\n`);
  }
  return ok ? 0 : 1;
}

export const check: Command = {
  name: "check",
  usage: "shortener check [--json] [--data-dir DIR] [--ops-listen HOST:PORT] [--min-disk-free SIZE] [--replication litestream]",
  summary:
    "self-check without listening: settings, database, data dir, disk, SQLite, ops port, with replication Litestream the replica and the clock, and on a standby its copy's age; exit 0 only if all pass",
  booleans: ["json"],
  async run(args) {
    const json = args.flags.has("json");
    let config: Readonly<Config>;
    try {
      config = loadConfig(args.flags, process.env);
    } catch (error) {
      if (!(error instanceof SettingError)) throw error;
      return report([fail("settings", error.message, "fix the setting it names; `shortener help` lists them all")], json);
    }
    return report(await runChecks(config), json);
  },
};
