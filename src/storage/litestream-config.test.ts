import { describe, expect, test } from "bun:test";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expandEnv, readLitestreamConfig } from "./litestream-config";

function file(text: string): string {
  const path = join(mkdtempSync(join(tmpdir(), "ls-config-")), "litestream.yml");
  writeFileSync(path, text);
  return path;
}

describe("readLitestreamConfig", () => {
  test("reads databases and the control socket, expanding environment references", () => {
    const config = readLitestreamConfig(
      file("socket:\n  enabled: true\n  path: ${SOCK}\ndbs:\n  - path: $DATA/shortener.db\n    replica:\n      type: s3\n"),
      { SOCK: "/run/ls.sock", DATA: "/var/lib/shortener" },
    );
    expect(config.socketPath).toBe("/run/ls.sock");
    expect(config.databases).toEqual(["/var/lib/shortener/shortener.db"]);
  });

  test("has no socket unless it is enabled", () => {
    expect(readLitestreamConfig(file("dbs:\n  - path: /a.db\n"), {}).socketPath).toBeNull();
  });

  test("fails with a hint for a missing file, bad YAML, or no databases", () => {
    expect(() => readLitestreamConfig("/nonexistent/litestream.yml", {})).toThrow(/--litestream-config/);
    expect(() => readLitestreamConfig(file("dbs: [\n"), {})).toThrow(/not valid YAML/);
    expect(() => readLitestreamConfig(file("socket: {}\n"), {})).toThrow(/lists no database/);
  });

  test("expands unset variables to empty strings", () => {
    expect(expandEnv("a${X}b$Y", {})).toBe("ab");
  });
});
