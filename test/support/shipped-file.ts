/** The repository's deploy files as a test runs them: shipped text with a few strings put in place of the VM's. */
import { readFileSync } from "node:fs";
import { resolve } from "node:path";

const ROOT = resolve(import.meta.dir, "../..");

/** `text` (from `where`) with each `from` replaced by its `to`; a `from` it lacks fails, so the test follows the file. */
export function substituted(text: string, where: string, substitutions: readonly (readonly [string, string])[]): string {
  let result = text;
  for (const [from, to] of substitutions) {
    if (!result.includes(from)) throw new Error(`${where} no longer has ${JSON.stringify(from)}: update this test`);
    result = result.replace(from, to);
  }
  return result;
}

/** A file of the repository (`deploy/Caddyfile`, …) read and substituted. */
export function shippedFile(path: string, substitutions: readonly (readonly [string, string])[]): string {
  return substituted(readFileSync(resolve(ROOT, path), "utf8"), path, substitutions);
}
