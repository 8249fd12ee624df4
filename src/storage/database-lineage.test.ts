import { Database } from "bun:sqlite";
import { expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { LINEAGE_VERSION, lineageOf, renewLineage } from "./database-lineage";
import { MIGRATIONS, runMigrations } from "./migrations";

const HEX_128_BITS = /^[0-9a-f]{32}$/;

function migrated(path: string, upTo = Number.POSITIVE_INFINITY): Database {
  const db = new Database(path, { strict: true });
  if (upTo === Number.POSITIVE_INFINITY) runMigrations(db, path);
  else {
    for (const migration of MIGRATIONS.filter((m) => m.version <= upTo && m.sql !== "")) db.exec(migration.sql);
    db.exec(`PRAGMA user_version = ${upTo}`);
  }
  return db;
}

test("each database gets a lineage of its own when it migrates", () => {
  const a = migrated(":memory:");
  const b = migrated(":memory:");
  expect(lineageOf(a)).toMatch(HEX_128_BITS);
  expect(lineageOf(b)).toMatch(HEX_128_BITS);
  expect(lineageOf(a)).not.toBe(lineageOf(b));
  expect(a.query("SELECT count(*) AS n FROM database_lineage").get()).toEqual({ n: 1 });
});

test("a file gets a new lineage when renewed; one older than lineages is left alone, and gets its first when it migrates", () => {
  const dir = mkdtempSync(join(tmpdir(), "lineage-"));
  try {
    const path = join(dir, "shortener.db");
    const db = migrated(path);
    const before = lineageOf(db);
    db.close();
    const renewed = renewLineage(path);
    expect(renewed).toMatch(HEX_128_BITS);
    expect(renewed).not.toBe(before);
    const reopened = new Database(path, { readonly: true });
    expect(lineageOf(reopened)).toBe(renewed);
    reopened.close();

    const olderPath = join(dir, "older.db");
    migrated(olderPath, LINEAGE_VERSION - 1).close();
    expect(renewLineage(olderPath)).toBeNull();
    const older = new Database(olderPath, { strict: true });
    expect(lineageOf(older)).toBeNull();
    runMigrations(older, olderPath);
    expect(lineageOf(older)).toMatch(HEX_128_BITS);
    older.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
