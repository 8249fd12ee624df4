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
import type { CheckResult } from "./check-result";
import { databaseChecks } from "./database-checks";

const dirs: string[] = [];
function dbPath(): string {
  const dir = mkdtempSync(join(tmpdir(), "shortener-checks-"));
  dirs.push(dir);
  return join(dir, "shortener.db");
}
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

async function results(db: Database): Promise<Map<string, CheckResult>> {
  const all = await Promise.all(databaseChecks(db).map((c) => c.run()));
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
});
