/**
 * The one quality gate (`npm test`): install the pinned external tools (Litestream, the S3 test server, promtool)
 * when missing, typecheck, lint and format check, build the binary, then every test.
 * Each step stops the run on failure with the step's name; the last line is the plain test tally.
 */
import { $ } from "bun";

/**
 * Each failed test's error block again, at the end: a CI log shown by its tail would otherwise end in the bare
 * names of the failures, far below the reasons bun printed where they happened.
 */
function failureDigest(output: string): string {
  const lines = output.split("\n");
  const blocks: string[] = [];
  lines.forEach((line, i) => {
    if (!line.startsWith("(fail)") || blocks.length >= 10) return;
    let start = i;
    while (start > 0 && i - start < 60 && !/^\((pass|fail|skip)\)|^\S.*\.test\.ts:$/.test(lines[start - 1] as string)) start--;
    blocks.push(lines.slice(start, i + 1).join("\n"));
  });
  return `\n== why the failed tests failed (repeated from above)\n${blocks.join("\n\n")}`;
}

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
  if (failed !== "0") console.error(failureDigest(output));
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
