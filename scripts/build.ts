/**
 * Builds the single executable dist/shortener. The binary must not read .env or bunfig.toml from its working
 * directory, and plain --minify is avoided because it renames functions (span names); whitespace and syntax
 * minification are safe.
 */
import { renameSync } from "node:fs";
import { $ } from "bun";
import pkg from "../package.json";

const commit = (await $`git rev-parse --short=12 HEAD`.nothrow().quiet().text()).trim() || "unknown";
const dirty = (await $`git status --porcelain --untracked-files=no`.nothrow().quiet().text()).trim() !== "";
const stamp = dirty ? `${commit}-dirty` : commit;

// Build beside the target and rename over it, so a running binary (a test's server) is never overwritten in place.
const partial = `dist/shortener.partial-${process.pid}`;
// The workers are extra entrypoints: a compiled binary can only start workers it was built with.
const entrypoints = [
  "src/main.ts",
  "src/storage/checkpoint-worker.ts",
  "src/storage/reader-worker.ts",
  "src/domain/visit-writer-worker.ts",
  "src/domain/visit-spill-worker.ts",
  "src/domain/visit-inbox-worker.ts",
];
const result = await $`${process.execPath} build ${entrypoints} --compile --outfile ${partial} \
  --no-compile-autoload-dotenv --no-compile-autoload-bunfig \
  --minify-whitespace --minify-syntax \
  --define __SHORTENER_VERSION__=${JSON.stringify(pkg.version)} \
  --define __SHORTENER_COMMIT__=${JSON.stringify(stamp)}`.nothrow();
if (result.exitCode !== 0) {
  await $`rm -f ${partial}`.nothrow();
  console.error("build failed");
  process.exit(result.exitCode);
}
renameSync(partial, "dist/shortener");
console.log(`built dist/shortener ${pkg.version} (${stamp})`);
