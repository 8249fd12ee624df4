/** Paths of the pinned external tools that scripts/setup-tools.ts installs into .tools/bin (npm test's first step). */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { TOOLS, TOOLS_BIN } from "../../scripts/setup-tools";

/** The path of a pinned tool; throws with the fix when it is not in the table or not installed. */
export function toolPath(name: string): string {
  if (!TOOLS.some((tool) => tool.name === name)) throw new Error(`${name} is not a pinned tool: add it to TOOLS in scripts/setup-tools.ts`);
  const path = join(TOOLS_BIN, name);
  if (!existsSync(path)) throw new Error(`${path} is missing: run \`bun scripts/setup-tools.ts\` (npm test runs it first)`);
  return path;
}
