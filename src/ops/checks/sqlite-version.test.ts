import { describe, expect, test } from "bun:test";
import { hasWalResetBug, sqliteVersionCheck } from "./sqlite-version";

describe("hasWalResetBug", () => {
  test.each([
    ["3.6.23", false],
    ["3.7.0", true],
    ["3.44.5", true],
    ["3.44.6", false],
    ["3.45.1", true],
    ["3.50.6", true],
    ["3.50.7", false],
    ["3.51.2", true],
    ["3.51.3", false],
    ["3.52.0", true],
    ["3.53.0", false],
    ["3.54.1", false],
    ["not a version", true],
  ])("SQLite %p is affected: %p", (version, affected) => {
    expect(hasWalResetBug(version)).toBe(affected);
  });
});

describe("sqliteVersionCheck", () => {
  test("fails sqlite.version with a hint for an affected release", async () => {
    const result = await sqliteVersionCheck("3.51.2").run();
    expect(result).toMatchObject({ name: "sqlite.version", ok: false });
    expect(result.hint).toContain("3.51.3");
  });

  test("passes sqlite.version for a fixed release", async () => {
    expect(await sqliteVersionCheck("3.51.3").run()).toMatchObject({ name: "sqlite.version", ok: true });
  });
});
