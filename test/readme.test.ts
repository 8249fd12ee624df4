/**
 * The README's tables are checked against the program's own (SETTINGS, COMMANDS, RESERVED_WORDS) so the docs
 * cannot drift from the code, and its promise about bad settings is checked against the binary.
 */
import { describe, expect, test } from "bun:test";
import { readFileSync, rmSync } from "node:fs";
import { resolve } from "node:path";
import { COMMANDS } from "../src/cli/commands";
import { SETTINGS } from "../src/config";
import { RESERVED_WORDS } from "../src/domain/short-code";
import { runCli, tempDir } from "./support/binary";

describe("README.md", () => {
  const readme = readFileSync(resolve(import.meta.dir, "../README.md"), "utf8");
  const rows = readme.split("\n").filter((l) => l.startsWith("| `"));

  test("the settings table lists every setting with its flag, variable and default", () => {
    const shown = (fallback: string) => (fallback === "" ? "(none)" : `\`${fallback}\``);
    const missing = SETTINGS.filter(
      (s) => !rows.some((r) => r.startsWith(`| \`--${s.flag}\` | \`${s.env}\` | ${shown(s.fallback)} |`)),
    ).map((s) => `--${s.flag}`);
    expect(missing).toEqual([]);
  });

  test("the settings table lists no setting the program lacks", () => {
    const flags = new Set(SETTINGS.map((s) => `--${s.flag}`));
    const documented = rows.map((r) => /^\| `(--[a-z-]+)` \| `SHORTENER_/.exec(r)?.[1]).filter((f) => f !== undefined);
    expect(documented.length).toBeGreaterThan(0);
    expect(documented.filter((f) => !flags.has(f))).toEqual([]);
  });

  test("the commands table documents exactly the commands the binary has", () => {
    const documented = new Set(rows.map((r) => /^\| `shortener ([a-z]+)/.exec(r)?.[1]).filter((c) => c !== undefined));
    expect([...documented].sort()).toEqual([...COMMANDS.map((c) => c.name), "help"].sort());
  });

  test("lists every reserved word", () => {
    expect([...RESERVED_WORDS].filter((w) => !readme.includes(`\`${w}\``))).toEqual([]);
  });

  // Settings whose default is empty (e.g. no trusted proxies) accept an empty value by definition.
  const nonEmptyDefaults = SETTINGS.filter((s) => s.fallback !== "");
  test.each(nonEmptyDefaults.map((s) => [s.env]))("an empty %s exits 1 with one line naming it, as documented", async (env) => {
    const dataDir = tempDir();
    try {
      const values: Record<string, string> = { SHORTENER_DATA_DIR: dataDir };
      values[env] = "";
      const result = await runCli(["keys", "list"], values);
      expect(result.exitCode).toBe(1);
      expect(result.stderr.trim().split("\n")).toEqual([expect.stringContaining(`invalid setting ${env}:`)]);
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
