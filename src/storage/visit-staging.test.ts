import { afterEach, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { VisitStaging } from "./visit-staging";

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

test("lives in a directory of its own, removed when disposed of, and removes those a killed import left", () => {
  const parent = mkdtempSync(join(tmpdir(), "staging-test-"));
  dirs.push(parent);
  // pid_max is at most 2^22: no process has this pid. This process's own directory (another import in it) stays.
  mkdirSync(join(parent, ".import-999999999-left"));
  mkdirSync(join(parent, `.import-${process.pid}-running`));
  mkdirSync(join(parent, "unrelated"));
  {
    using staging = new VisitStaging(parent);
    staging.add(1, [[1000, 0, null, null, null, null, null, null, null, null, null, null, null, null]]);
    const own = readdirSync(parent).filter((n) => n.startsWith(`.import-${process.pid}-`) && n !== `.import-${process.pid}-running`);
    expect(own).toHaveLength(1);
    expect(readdirSync(join(parent, own[0] as string))).toContain("visits.db");
    expect([...staging.rows(1, 42)]).toEqual([[42, null, 1000, 0, null, null, null, null, null]]);
  }
  expect(readdirSync(parent).sort()).toEqual([`.import-${process.pid}-running`, "unrelated"]);
});
