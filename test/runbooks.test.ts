/**
 * Runbooks are documentation that runs: every command in runbooks/*.md is run against dist/shortener, in
 * order, on a temp data dir and free ports, following the conventions in runbooks/README.md. A runbook that
 * names a subcommand that does not exist, or whose documented output or exit status no longer holds, fails.
 */
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { COMMANDS } from "../src/cli/commands";
import { runRunbook } from "./support/runbook-harness";
import { parseRunbook, parseRunbookText, RUNBOOKS, runbookFiles, unitColour } from "./support/runbook-steps";

/** Runbooks whose commands need Litestream and an S3 server, which this harness does not run: the named test runs them. */
const RUN_WITH_A_REPLICA: Record<string, string> = {
  "failed-restore-drill.md": "test/drill.test.ts",
  "lease-not-renewed.md": "test/promote.test.ts",
  "promote-standby.md": "test/promote.test.ts",
  "replication-lag.md": "test/replication-guard.test.ts",
  "restore-point-in-time.md": "test/restore.test.ts",
  "standby-behind.md": "test/standby-follow.test.ts",
  // Not a replica: it needs a webhook with a dead delivery, which that test sets up.
  "webhook-failures.md": "test/webhooks-admin.test.ts",
};

describe("the runbook parser", () => {
  const parse = (...lines: string[]) => parseRunbookText(["```sh", ...lines, "```"].join("\n"), "example.md");

  test("runs a shortener line with NAME=value assignments before it, not skipping it", () => {
    const [step] = parse("SHORTENER_LISTEN=nowhere shortener serve", "# exits: 1");
    expect(step).toMatchObject({ kind: "shortener", subcommand: "serve", assignments: "SHORTENER_LISTEN=nowhere ", exit: 1 });
  });

  test("refuses a line that runs shortener in a form it cannot run", () => {
    expect(() => parse("FOO='a b' shortener check")).toThrow("runs shortener in a form the test cannot run");
    expect(() => parse("true && shortener check")).toThrow("runs shortener in a form the test cannot run");
  });

  test("refuses an unknown placeholder in a shortener command", () => {
    expect(() => parse("shortener keys revoke SOME_KEY")).toThrow("unknown placeholder SOME_KEY");
  });

  test("reads the colour of shortener@$VAR from the variable when the step runs, and refuses it unset", () => {
    const [step] = parse("sudo systemctl start shortener@$COLOUR");
    expect(step).toMatchObject({ kind: "unit", unit: "start", colourVariable: "COLOUR" });
    expect(step?.colour).toBeUndefined();
    expect(unitColour(step as NonNullable<typeof step>, { COLOUR: "green" })).toBe("green");
    expect(() => unitColour(step as NonNullable<typeof step>, {})).toThrow("$COLOUR is not set");
  });

  test("reads the colour of a systemctl line and leaves people's lines alone", () => {
    const steps = parse("sudo systemctl start shortener@green", "sudo journalctl -u shortener@blue -o cat | jq -c .");
    expect(steps).toEqual([expect.objectContaining({ kind: "unit", unit: "start", colour: "green" })]);
  });
});

describe("runbooks", () => {
  test("runbooks/README.md links every runbook, and every link points at one", () => {
    const index = readFileSync(join(RUNBOOKS, "README.md"), "utf8");
    const linked = [...index.matchAll(/\]\(([\w-]+\.md)\)/g)].map((m) => m[1] as string);
    expect([...new Set(linked)].sort()).toEqual(runbookFiles);
  });

  test("every shortener command in a runbook names a subcommand that exists", () => {
    const known = new Set(COMMANDS.map((c) => c.name));
    const unknown = runbookFiles
      .flatMap((file) => parseRunbook(file))
      .filter((step) => step.kind === "shortener" && !known.has(step.subcommand ?? ""))
      .map((step) => `${step.where}: shortener ${step.subcommand}`);
    expect(unknown).toEqual([]);
  });

  test("restore-point-in-time.md starts again the colour that was enabled, not always blue", () => {
    const starts = parseRunbook("restore-point-in-time.md").filter((s) => s.kind === "unit" && !s.litestream && s.unit !== "stop");
    expect(starts.map((s) => s.colour ?? `$${s.colourVariable}`)).toEqual(["$COLOUR"]);
  });

  test("draining-a-node.md moves the scrape target off a colour before draining it, so a swap does not page ShortenerDown", () => {
    const lines = readFileSync(join(RUNBOOKS, "draining-a-node.md"), "utf8").split("\n");
    const lineOf = (pattern: RegExp) => lines.findIndex((l) => pattern.test(l)) + 1;
    const drains = parseRunbook("draining-a-node.md")
      .filter((s) => s.subcommand === "drain")
      .map((s) => ({ line: Number(s.where.split(":").at(-1)), green: s.command.includes("127.0.0.1:8091") }));
    const blueDrain = drains.find((d) => !d.green);
    const greenDrain = drains.find((d) => d.green);
    const blueTargetOut = lineOf(/^### \d+\. Move Prometheus's scrape target from blue to green$/);
    const greenTargetOut = lineOf(/move the scrape target back as in step \d+: blue's ops listener in, green's out/);
    expect(blueTargetOut).toBeGreaterThan(0);
    expect(greenTargetOut).toBeGreaterThan(0);
    expect(blueTargetOut).toBeLessThan(blueDrain?.line ?? 0);
    expect(greenTargetOut).toBeLessThan(greenDrain?.line ?? 0);
  });

  test.each(runbookFiles)("runbooks/%s has shortener commands the test runs", (file) => {
    expect(parseRunbook(file).filter((s) => s.kind === "shortener").length).toBeGreaterThan(0);
  });

  test.each(runbookFiles.filter((f) => !(f in RUN_WITH_A_REPLICA)))(
    "every command in runbooks/%s runs, exits and prints as documented",
    async (file) => {
      await runRunbook(file);
    },
  );

  test.each(Object.entries(RUN_WITH_A_REPLICA))("runbooks/%s, which needs a replica, is run by %s", (file, by) => {
    expect(runbookFiles).toContain(file);
    expect(readFileSync(join(import.meta.dir, "..", by), "utf8")).toContain(`"${file}"`);
  });
});
