/**
 * What `npm install` installs is decided here and in the lock: dependencies pinned to exact versions (the project's
 * rules), and every dependency whose install script must run approved in `allowScripts`. npm 11 only warns about an
 * unreviewed install script; npm 12 skips it, and Bun's is what puts the `bun` binary in place, so without the
 * approval the README's `npm install && npm start` would stop working on the next npm.
 */
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { resolve } from "node:path";

const ROOT = resolve(import.meta.dir, "..");
const manifest = JSON.parse(readFileSync(resolve(ROOT, "package.json"), "utf8")) as {
  dependencies: Record<string, string>;
  devDependencies: Record<string, string>;
  allowScripts?: Record<string, boolean>;
};
const lock = JSON.parse(readFileSync(resolve(ROOT, "package-lock.json"), "utf8")) as {
  packages: Record<string, { version?: string; hasInstallScript?: boolean }>;
};

/** The package name of a lock entry's path (`node_modules/a/node_modules/@b/c` → `@b/c`). */
const nameOf = (path: string) => path.slice(path.lastIndexOf("node_modules/") + "node_modules/".length);

describe("package.json", () => {
  test("pins every dependency to an exact version", () => {
    const all = { ...manifest.dependencies, ...manifest.devDependencies };
    expect(Object.keys(all).length).toBeGreaterThan(0);
    const loose = Object.entries(all).filter(([, version]) => !/^\d+\.\d+\.\d+$/.test(version));
    expect(loose).toEqual([]);
  });

  test("approves the install script of every locked package that has one, and nothing else", () => {
    const scripted = Object.entries(lock.packages)
      .filter(([path, entry]) => path !== "" && entry.hasInstallScript === true)
      .map(([path]) => nameOf(path));
    expect(scripted).toContain("bun");
    const approved = Object.entries(manifest.allowScripts ?? {})
      .filter(([, allowed]) => allowed)
      .map(([name]) => name);
    expect([...new Set(scripted)].sort()).toEqual(approved.sort());
  });
});
