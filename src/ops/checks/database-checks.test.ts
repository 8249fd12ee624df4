/**
 * synchronous and busy_timeout are set by the app on its own connection, so the binary cannot be made to fail
 * them from outside: these tests hand the checks a raw connection that lacks the settings instead.
 */

import { Database } from "bun:sqlite";
import { afterEach, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openDatabase } from "../../storage/database";
import type { HeartbeatStore } from "../../storage/heartbeat-store";
import { LATEST_VERSION } from "../../storage/migrations";
import { useRollbackJournal } from "../../storage/replica-copy";
import type { CheckResult } from "./check-result";
import { databaseChecks } from "./database-checks";
import { standbyCopyCheck } from "./standby-checks";

const dirs: string[] = [];
function dbPath(): string {
  const dir = mkdtempSync(join(tmpdir(), "shortener-checks-"));
  dirs.push(dir);
  return join(dir, "shortener.db");
}
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

async function results(db: Database, role: "primary" | "standby" = "primary"): Promise<Map<string, CheckResult>> {
  const all = await Promise.all(databaseChecks(db, role).map((c) => c.run()));
  return new Map(all.map((r) => [r.name, r]));
}

describe("databaseChecks", () => {
  test("all pass on a connection opened by openDatabase", async () => {
    const db = openDatabase(dbPath());
    expect([...(await results(db)).values()].filter((r) => !r.ok)).toEqual([]);
    db.close();
  });

  test("fail database.synchronous and database.busy_timeout on a connection left at bun:sqlite's defaults", async () => {
    const path = dbPath();
    openDatabase(path).close();
    const raw = new Database(path, { readwrite: true });
    raw.exec("PRAGMA synchronous = NORMAL");
    const found = await results(raw);
    expect(found.get("database.synchronous")).toMatchObject({ ok: false, detail: expect.stringContaining("NORMAL (1)") });
    expect(found.get("database.busy_timeout")).toMatchObject({ ok: false, detail: expect.stringContaining("0 ms") });
    expect(found.get("database.journal_mode")?.ok).toBe(true);
    raw.close();
  });

  test("on a standby, want its copy in rollback-journal mode and name the primary in the migration hints", async () => {
    const path = dbPath();
    openDatabase(path).close();
    const wal = openDatabase(path, { readonly: true });
    const walFound = await results(wal, "standby");
    expect(walFound.get("database.journal_mode")).toMatchObject({ ok: false, detail: "wal, want delete on a standby" });
    expect(walFound.get("database.journal_mode")?.hint).toContain("SHORTENER_ROLE=standby");
    wal.close();
    await useRollbackJournal(path);
    const copy = new Database(path, { readwrite: true });
    copy.exec(`PRAGMA user_version = ${LATEST_VERSION - 1}`);
    copy.close();
    const standby = openDatabase(path, { readonly: true, pageCache: false });
    const found = await results(standby, "standby");
    expect(found.get("database.journal_mode")).toMatchObject({ ok: true, detail: expect.stringMatching(/^delete /) });
    expect(found.get("database.migrations")).toMatchObject({ ok: false, hint: expect.stringContaining("the primary runs an older build") });
    expect(found.get("database.synchronous")?.ok).toBe(true);
    // The same copy fails a primary's check: a primary replicates only WAL databases.
    expect((await results(standby)).get("database.journal_mode")?.ok).toBe(false);
    standby.close();
  });
});

describe("standbyCopyCheck", () => {
  const heartbeatAt = (at: number | null) => ({ latest: () => at }) as unknown as HeartbeatStore;
  const now = () => 1_000_000;

  test("passes a copy whose newest heartbeat is within the lag, saying how old it is", async () => {
    expect(await standbyCopyCheck(heartbeatAt(998_500), 30_000, now).run()).toEqual({
      name: "standby.copy",
      ok: true,
      detail: "the primary's newest heartbeat in the copy is 1.5 s old",
    });
  });

  test("fails a copy older than the lag, and one with no heartbeat, pointing at the runbook", async () => {
    const old = await standbyCopyCheck(heartbeatAt(900_000), 30_000, now).run();
    expect(old).toMatchObject({
      ok: false,
      detail: "the primary's newest heartbeat in the copy is 100.0 s old, more than --max-replication-lag (30 s)",
      hint: expect.stringContaining("runbooks/standby-behind.md"),
    });
    const none = await standbyCopyCheck(heartbeatAt(null), 30_000, now).run();
    expect(none).toMatchObject({
      ok: false,
      detail: "the copy holds no heartbeat of the primary",
      hint: expect.stringContaining("litestream-follow"),
    });
  });
});
