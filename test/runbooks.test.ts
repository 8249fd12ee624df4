/**
 * Runbooks are documentation that runs: every command in runbooks/*.md is run against dist/shortener, in
 * order, on a temp data dir and free ports, following the conventions in runbooks/README.md. A runbook that
 * names a subcommand that does not exist, or whose documented output or exit status no longer holds, fails.
 */
import { describe, expect, test } from "bun:test";
import { readdirSync, readFileSync, rmSync } from "node:fs";
import { join, resolve } from "node:path";
import type { Subprocess } from "bun";
import { COMMANDS } from "../src/cli/commands";
import { freePort, requireBinary, tempDir, waitFor } from "./support/binary";

const RUNBOOKS = resolve(import.meta.dir, "../runbooks");

/** Values for the CAPITALISED placeholders of runbook commands; an unknown one fails the runbook. */
const PLACEHOLDERS: Record<string, string> = { NAME: "ci-deploy-2026-11", NEW_NAME: "ci-deploy-2026-11-b" };
const STEP_TIMEOUT_MS = 30_000;

// ---------------------------------------------------------------------------------------------------------
// Runbook parsing

interface Step {
  where: string;
  kind: "shortener" | "curl" | "unit";
  /** The line as the shell runs it, placeholders filled in. */
  command: string;
  /** For `VAR=$(shortener …)`: the variable that receives stdout. */
  capture?: string;
  unit?: "start" | "stop" | "restart";
  exit: number;
  prints: string[];
  matches: RegExp[];
}

const CAPTURE = /^([A-Za-z_][A-Za-z0-9_]*)=\$\((shortener\s.*)\)$/;
const UNIT_LINE = /^(?:sudo\s+)?systemctl\s+(start|stop|restart|enable\s+--now)\s+shortener@[a-z]+(?:\.service)?$/;
/** `shortener` in command position anywhere in a line: after a separator, a pipe or a command substitution. */
const SHORTENER_ANYWHERE = /(^|[;&|`(])\s*shortener\s/;
const PLACEHOLDER = /(?<![$\w{-])([A-Z][A-Z0-9_]+)(?![\w-])/g;
const escapeRegExp = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

function fill(text: string, where: string, strict: boolean, forRegExp = false): string {
  return text.replace(PLACEHOLDER, (word: string) => {
    const value = PLACEHOLDERS[word];
    if (value !== undefined) return forRegExp ? escapeRegExp(value) : value;
    if (strict) throw new Error(`${where}: unknown placeholder ${word}; add it to PLACEHOLDERS in test/runbooks.test.ts`);
    return word;
  });
}

/** The logical lines of every ```sh block: continuation lines joined, with the line number they start on. */
function shellLines(markdown: string): { line: number; text: string }[] {
  const out: { line: number; text: string }[] = [];
  let fence: string | null = null;
  let pending: { line: number; text: string } | null = null;
  markdown.split("\n").forEach((raw, index) => {
    const trimmed = raw.trim();
    const opener = /^```(\S*)\s*$/.exec(trimmed);
    if (opener) {
      fence = fence === null ? (opener[1] as string) : null;
      return;
    }
    if (fence !== "sh") return;
    const text = pending ? `${pending.text} ${trimmed}` : trimmed;
    const start = pending?.line ?? index + 1;
    if (text.endsWith("\\")) {
      pending = { line: start, text: text.slice(0, -1).trimEnd() };
      return;
    }
    pending = null;
    out.push({ line: start, text });
  });
  if (fence !== null) throw new Error(`an unclosed \`\`\`${fence} block`);
  return out;
}

/** The steps the test runs from one runbook, with what each must print and exit with. */
function parseRunbook(file: string): Step[] {
  const steps: Step[] = [];
  let last: Step | null = null;
  for (const { line, text } of shellLines(readFileSync(join(RUNBOOKS, file), "utf8"))) {
    const where = `runbooks/${file}:${line}`;
    if (text === "") {
      last = null;
      continue;
    }
    const annotation = /^#\s*(prints|matches|exits):\s?(.*)$/.exec(text);
    if (annotation) {
      if (last === null) throw new Error(`${where}: "${text}" does not follow a command the test runs`);
      const [, kind, value] = annotation as unknown as [string, string, string];
      if (kind === "prints") last.prints.push(fill(value, where, false));
      else if (kind === "matches") last.matches.push(new RegExp(fill(value, where, false, true)));
      else last.exit = Number(value);
      continue;
    }
    if (text.startsWith("#")) continue;
    const capture = CAPTURE.exec(text);
    const step: Step = { where, kind: "shortener", command: text, exit: 0, prints: [], matches: [] };
    if (capture) {
      step.capture = capture[1];
      step.command = fill(capture[2] as string, where, true);
    } else if (/^shortener\s/.test(text)) {
      step.command = fill(text, where, true);
    } else if (/^curl\s/.test(text)) {
      step.kind = "curl";
      step.command = fill(text, where, false);
    } else if (UNIT_LINE.test(text)) {
      step.kind = "unit";
      const action = (UNIT_LINE.exec(text) as RegExpExecArray)[1] as string;
      step.unit = action === "stop" ? "stop" : action === "restart" ? "restart" : "start";
    } else if (SHORTENER_ANYWHERE.test(text)) {
      throw new Error(`${where}: "${text}" runs shortener in a form the test cannot run (see runbooks/README.md)`);
    } else {
      last = null;
      continue;
    }
    if (step.kind === "shortener" && step.command.split(/\s+/)[1] === "serve") {
      step.kind = "unit";
      step.unit = "start";
    }
    steps.push(step);
    last = step;
  }
  return steps;
}

const runbookFiles = readdirSync(RUNBOOKS)
  .filter((f) => f.endsWith(".md") && f !== "README.md")
  .sort();

// ---------------------------------------------------------------------------------------------------------
// Running a runbook

/** The node a runbook talks to: `shortener serve` with the settings of an env file, as systemd runs it. */
class Node {
  proc: Subprocess<"ignore", "pipe", "pipe"> | null = null;
  output = "";

  constructor(private readonly env: Record<string, string>) {}

  async start(where: string): Promise<void> {
    if (this.proc !== null) throw new Error(`${where}: the node is already running`);
    const proc = Bun.spawn([requireBinary(), "serve"], { env: this.env, stdout: "pipe", stderr: "pipe", stdin: "ignore" });
    this.proc = proc;
    void this.#collect(proc.stdout);
    void this.#collect(proc.stderr);
    await waitFor(`${where}: the node's readiness`, async () => {
      if (proc.exitCode !== null) throw new Error(`${where}: the node exited (${proc.exitCode}): ${this.output}`);
      try {
        return (await fetch(`${this.env.NODE}/readyz`)).status === 200;
      } catch {
        return false;
      }
    });
  }

  /** SIGTERM, as systemd stops the unit; the exit status. */
  async stop(): Promise<number> {
    const proc = this.proc;
    if (proc === null) throw new Error("the node is not running");
    this.proc = null;
    proc.kill("SIGTERM");
    const timer = setTimeout(() => proc.kill("SIGKILL"), 20_000);
    const code = await proc.exited;
    clearTimeout(timer);
    return code;
  }

  async #collect(stream: ReadableStream<Uint8Array>): Promise<void> {
    const decoder = new TextDecoder();
    const reader = stream.getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      this.output += decoder.decode(value, { stream: true });
    }
  }
}

async function runShell(command: string, env: Record<string, string>): Promise<{ exitCode: number; stdout: string; stderr: string }> {
  const proc = Bun.spawn(["bash", "--noprofile", "--norc", "-o", "nounset", "-o", "pipefail", "-c", command], {
    env,
    stdout: "pipe",
    stderr: "pipe",
    stdin: "ignore",
  });
  const timer = setTimeout(() => proc.kill("SIGKILL"), STEP_TIMEOUT_MS);
  const [stdout, stderr, exitCode] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  clearTimeout(timer);
  return { exitCode, stdout, stderr };
}

function checkOutcome(step: Step, result: { exitCode: number; stdout: string; stderr: string }): void {
  const output = result.stdout + result.stderr;
  const problems: string[] = [];
  if (result.exitCode !== step.exit) problems.push(`exited ${result.exitCode}, the runbook says ${step.exit}`);
  for (const text of step.prints) if (!output.includes(text)) problems.push(`does not print ${JSON.stringify(text)}`);
  for (const re of step.matches) if (!re.test(output)) problems.push(`output does not match ${re}`);
  if (problems.length > 0) {
    throw new Error(`${step.where}: ${step.command}\n  ${problems.join("\n  ")}\n  output: ${output.trim() || "(none)"}`);
  }
}

/** Runs one runbook's steps in order against a fresh data dir and free ports. */
async function runRunbook(file: string): Promise<void> {
  const steps = parseRunbook(file);
  const binary = requireBinary();
  const dataDir = tempDir("shortener-runbook-");
  const port = freePort();
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? "/usr/bin:/bin",
    HOME: process.env.HOME ?? "/tmp",
    SHORTENER_BIN: binary,
    SHORTENER_DATA_DIR: dataDir,
    SHORTENER_LISTEN: `127.0.0.1:${port}`,
    SHORTENER_OPS_LISTEN: `127.0.0.1:${freePort()}`,
    SHORTENER_BASE_URL: `http://127.0.0.1:${port}`,
    SHORTENER_LITESTREAM_CONFIG: join(dataDir, "litestream.yml"),
    NODE: `http://127.0.0.1:${port}`,
  };
  const node = new Node(env);
  try {
    if (!steps.some((s) => s.unit === "start" || s.unit === "restart")) await node.start(`runbooks/${file} (already running)`);
    for (const step of steps) {
      if (step.kind === "unit") {
        if (step.unit !== "start") {
          const code = await node.stop();
          if (code !== step.exit) throw new Error(`${step.where}: the node stopped with ${code}, the runbook says ${step.exit}`);
        }
        if (step.unit !== "stop") await node.start(step.where);
        continue;
      }
      const command = step.kind === "shortener" ? step.command.replace(/^shortener/, '"$SHORTENER_BIN"') : step.command;
      const result = await runShell(command, env);
      checkOutcome(step, result);
      if (step.capture !== undefined) env[step.capture] = result.stdout.trim();
    }
    if (node.proc !== null) {
      const code = await node.stop();
      if (code !== 0) throw new Error(`runbooks/${file}: the node exited ${code} on SIGTERM at the end, not 0:\n${node.output}`);
    }
  } finally {
    if (node.proc !== null) await node.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

describe("runbooks", () => {
  test("runbooks/README.md links every runbook, and every link points at one", () => {
    const index = readFileSync(join(RUNBOOKS, "README.md"), "utf8");
    const linked = [...index.matchAll(/\]\(([\w-]+\.md)\)/g)].map((m) => m[1] as string);
    expect([...new Set(linked)].sort()).toEqual(runbookFiles);
  });

  test("every shortener command in a runbook names a subcommand that exists", () => {
    const known = new Set(COMMANDS.map((c) => c.name));
    const unknown: string[] = [];
    for (const file of runbookFiles) {
      for (const step of parseRunbook(file)) {
        if (step.kind !== "shortener") continue;
        const sub = step.command.split(/\s+/)[1] ?? "";
        if (!known.has(sub)) unknown.push(`${step.where}: shortener ${sub}`);
      }
    }
    expect(unknown).toEqual([]);
  });

  test.each(runbookFiles)("runbooks/%s has shortener commands the test runs", (file) => {
    expect(parseRunbook(file).filter((s) => s.kind === "shortener").length).toBeGreaterThan(0);
  });

  test.each(runbookFiles)("every command in runbooks/%s runs, exits and prints as documented", async (file) => {
    await runRunbook(file);
  });
});
