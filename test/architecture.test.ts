/**
 * The folder tree is the architecture (STYLE.md): imports point one way, from the entry and commands down
 * through app, http, domain and storage to lib. config, errors, version and telemetry are importable from
 * anywhere and import only lib (and each other's leaves).
 */
import { expect, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";

const SRC = resolve(import.meta.dir, "../src");

/** Layer of a file under src/, from the top (0) down. */
const LAYERS: [RegExp, number, string][] = [
  [/^(main\.ts|cli\/)/, 0, "entry"],
  [/^(commands|ops)\//, 1, "commands"],
  [/^app\.ts$/, 2, "app"],
  [/^http\//, 3, "http"],
  [/^domain\//, 4, "domain"],
  [/^storage\//, 5, "storage"],
  [/^lib\//, 7, "lib"],
];
const SHARED = /^(config|errors|version)\.ts$|^telemetry\//;

function layerOf(path: string): { rank: number; name: string } | null {
  for (const [pattern, rank, name] of LAYERS) if (pattern.test(path)) return { rank, name };
  return null;
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(path);
    return entry.name.endsWith(".ts") && !entry.name.endsWith(".test.ts") ? [path] : [];
  });
}

function importsOf(file: string): string[] {
  const text = readFileSync(file, "utf8");
  return [...text.matchAll(/^\s*import\s[^;]*?from\s+"([^"]+)"/gm)].map((m) => m[1] as string);
}

test("imports point one way: entry → commands → app → http → domain → storage → lib", () => {
  const violations: string[] = [];
  for (const file of sourceFiles(SRC)) {
    const from = relative(SRC, file);
    for (const spec of importsOf(file)) {
      if (!spec.startsWith(".")) {
        if (spec === "elysia" && !from.startsWith("http/")) violations.push(`${from} imports elysia outside http/`);
        continue;
      }
      const to = relative(SRC, resolve(dirname(file), spec)).replace(/(\.ts)?$/, ".ts");
      if (SHARED.test(from)) {
        if (!SHARED.test(to) && !to.startsWith("lib/")) violations.push(`${from} (shared) imports ${to}`);
        continue;
      }
      if (SHARED.test(to)) continue;
      const a = layerOf(from);
      const b = layerOf(to);
      if (a === null || b === null) violations.push(`${from} → ${to}: file outside the known layers`);
      else if (b.rank < a.rank) violations.push(`${from} (${a.name}) imports ${to} (${b.name}), a higher layer`);
    }
  }
  expect(violations).toEqual([]);
});

test("files stay small (under 400 lines)", () => {
  const long = sourceFiles(SRC)
    .map((file) => [relative(SRC, file), readFileSync(file, "utf8").split("\n").length] as const)
    .filter(([, lines]) => lines > 400);
  expect(long).toEqual([]);
});
