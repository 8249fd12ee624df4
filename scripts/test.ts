/**
 * The one quality gate (`npm test`): typecheck, lint and format check, build the binary, then every test.
 * Each step stops the run on failure with the step's name.
 */
import { $ } from "bun";

const steps: [string, () => Promise<{ exitCode: number }>][] = [
  ["typecheck (tsc)", () => $`node_modules/.bin/tsc --noEmit -p .`.nothrow()],
  ["lint and format (biome)", () => $`node_modules/.bin/biome check .`.nothrow()],
  ["build dist/shortener", () => $`${process.execPath} scripts/build.ts`.nothrow()],
  ["tests (bun test)", () => $`${process.execPath} test --timeout 120000`.nothrow()],
];

for (const [name, run] of steps) {
  console.log(`\n== ${name}`);
  const started = performance.now();
  const { exitCode } = await run();
  if (exitCode !== 0) {
    console.error(`\nnpm test: step "${name}" failed (exit ${exitCode})`);
    process.exit(exitCode);
  }
  console.log(`== ${name}: ok in ${((performance.now() - started) / 1000).toFixed(1)}s`);
}
