/**
 * The one quality gate (`npm test`): install the pinned external tools (Litestream, the S3 test server, promtool)
 * when missing, typecheck, lint and format check, build the binary, then every test.
 * Each step stops the run on failure with the step's name; the last line is the plain test tally.
 */
import { $ } from "bun";

async function runTests(): Promise<{ exitCode: number }> {
  const proc = Bun.spawn([process.execPath, "test", "--timeout", "120000"], { stdout: "inherit", stderr: "pipe", stdin: "ignore" });
  let output = "";
  const decoder = new TextDecoder();
  const reader = proc.stderr.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    process.stderr.write(value);
    output += decoder.decode(value, { stream: true });
  }
  const exitCode = await proc.exited;
  const passed = /^\s*(\d+) pass$/m.exec(output)?.[1] ?? "0";
  const failed = /^\s*(\d+) fail$/m.exec(output)?.[1] ?? "0";
  console.log(`\ntests: ${passed} passed, ${failed} failed`);
  return { exitCode: exitCode === 0 && passed === "0" ? 1 : exitCode };
}

const steps: [string, () => Promise<{ exitCode: number }>][] = [
  ["install pinned tools (.tools/bin)", () => $`${process.execPath} scripts/setup-tools.ts`.nothrow()],
  ["typecheck (tsc)", () => $`node_modules/.bin/tsc --noEmit -p .`.nothrow()],
  ["lint and format (biome)", () => $`node_modules/.bin/biome check .`.nothrow()],
  ["build dist/shortener", () => $`${process.execPath} scripts/build.ts`.nothrow()],
  ["tests (bun test)", runTests],
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
