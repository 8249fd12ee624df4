import { Database } from "bun:sqlite";
import { afterEach, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runMigrations } from "./migrations";
import { VisitStaging } from "./visit-staging";

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

const DAY = 86_400_000;
/** A staged visit: at, bot, referer, then nothing else known. */
const staged = (at: number, bot: number, referer: string) => [
  at,
  bot,
  referer,
  null,
  null,
  null,
  null,
  null,
  null,
  null,
  null,
  null,
  null,
  null,
];

test("copies a link's visits oldest first (the order pages came in, newest first, reversed), from a given moment", () => {
  const main = new Database(":memory:", { strict: true });
  runMigrations(main, ":memory:");
  const parent = mkdtempSync(join(tmpdir(), "staging-test-"));
  dirs.push(parent);
  {
    using staging = new VisitStaging(main, parent);
    // Page 1 (newest first): two visits in the same millisecond, then page 2: an older one. Link 2's are apart.
    staging.add(1, [staged(5 * DAY, 0, "b"), staged(5 * DAY, 1, "a")]);
    staging.add(1, [staged(2 * DAY + 7, 0, "old")]);
    staging.add(2, [staged(3 * DAY, 0, "other")]);
    expect(staging.days(1)).toEqual([
      { day: 2, total: 1, bots: 0 },
      { day: 5, total: 2, bots: 1 },
    ]);
    main.transaction(() => expect(staging.copyInto(1, 42, Number.MIN_SAFE_INTEGER)).toBe(3))();
    expect(main.query("SELECT short_url_id, at, potential_bot, referer FROM visits ORDER BY id").all()).toEqual([
      { short_url_id: 42, at: 2 * DAY + 7, potential_bot: 0, referer: "old" },
      { short_url_id: 42, at: 5 * DAY, potential_bot: 1, referer: "a" },
      { short_url_id: 42, at: 5 * DAY, potential_bot: 0, referer: "b" },
    ]);
    // From a moment on: what is older stays out.
    expect(staging.copyInto(1, 43, 3 * DAY)).toBe(2);
  }
  // Detached again when disposed of.
  const schemas = main.query("PRAGMA database_list").all() as { name: string }[];
  expect(schemas.map((d) => d.name)).not.toContain("import_staging");
  main.close();
});

test("lives in a directory of its own, removed when disposed of, and removes those a killed import left", () => {
  const main = new Database(":memory:");
  const parent = mkdtempSync(join(tmpdir(), "staging-test-"));
  dirs.push(parent);
  // pid_max is at most 2^22: no process has this pid. This process's own directory (another import in it) stays.
  mkdirSync(join(parent, ".import-999999999-left"));
  mkdirSync(join(parent, `.import-${process.pid}-running`));
  mkdirSync(join(parent, "unrelated"));
  {
    using _staging = new VisitStaging(main, parent);
    const own = readdirSync(parent).filter((n) => n.startsWith(`.import-${process.pid}-`) && n !== `.import-${process.pid}-running`);
    expect(own).toHaveLength(1);
    expect(readdirSync(join(parent, own[0] as string))).toContain("visits.db");
  }
  expect(readdirSync(parent).sort()).toEqual([`.import-${process.pid}-running`, "unrelated"]);
  main.close();
});
