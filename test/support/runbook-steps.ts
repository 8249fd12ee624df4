/**
 * Reads runbooks/*.md into the steps test/runbooks.test.ts runs, following the conventions in runbooks/README.md:
 * `shortener` and `curl` lines of ```sh blocks (also `VAR=$(shortener …)` and `NAME=value shortener …`), the
 * imitated `systemctl start|stop|restart shortener@COLOUR` (or `shortener@$VAR`, the colour a shell variable names), and the `# prints:`, `# matches:` and `# exits:`
 * comments under them. A line that runs shortener in any other form is an error, never skipped.
 */
import { expect } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";

export const RUNBOOKS = resolve(import.meta.dir, "../../runbooks");

/** Values for the CAPITALISED placeholders of runbook commands; an unknown one fails the runbook. */
export const PLACEHOLDERS: Record<string, string> = {
  NAME: "ci-deploy-2026-11",
  NEW_NAME: "ci-deploy-2026-11-b",
  // webhook-failures.md, run by test/webhooks-admin.test.ts on a node whose first webhook has its first delivery dead.
  WEBHOOK_ID: "1",
  DELIVERY_ID: "1",
};

export interface Step {
  where: string;
  kind: "shortener" | "curl" | "unit";
  /** The line as the shell runs it, placeholders filled in; for a shortener step, from `shortener` on. */
  command: string;
  /** `NAME=value ` assignments before `shortener`, as written. */
  assignments: string;
  /** For a shortener step: the subcommand (`check`, `drain`, …). */
  subcommand?: string;
  /** For `VAR=$(shortener …)`: the variable that receives stdout. */
  capture?: string;
  unit?: "start" | "stop" | "restart";
  /** For a unit step: the colour of `shortener@COLOUR`; undefined for `litestream` and `shortener@$VAR`. */
  colour?: string;
  /** For a `shortener@$VAR` unit step: the shell variable that names the colour (see unitColour). */
  colourVariable?: string;
  /** For a unit step of Litestream's own unit (runbooks that need a replica, run by their feature's test). */
  litestream?: true;
  exit: number;
  prints: string[];
  /** Regular expressions, as written (addresses are mapped before they are compiled). */
  matches: string[];
}

const CAPTURE = /^([A-Za-z_][A-Za-z0-9_]*)=\$\((shortener\s.*)\)$/;
const ASSIGNED = /^((?:[A-Z_][A-Z0-9_]*=[^\s'"$`\\;|&()]*\s+)*)(shortener\s.*)$/;
const UNIT_LINE =
  /^(?:sudo\s+)?systemctl\s+(start|stop|restart|enable\s+--now)\s+(?:shortener@(?:([a-z]+)|\$([A-Z_][A-Z0-9_]*))|(litestream))(?:\.service)?$/;
/** `shortener` in command position anywhere in a line: after a separator, a pipe, a substitution or an assignment. */
const SHORTENER_ANYWHERE = /(^|[;&|`('"])\s*shortener\s|=\S*\s+shortener\s/;
const PLACEHOLDER = /(?<![$\w{-])([A-Z][A-Z0-9_]+)(?![\w-])/g;
export const escapeRegExp = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

function fill(text: string, where: string, strict: boolean, forRegExp = false): string {
  return text.replace(PLACEHOLDER, (word: string) => {
    const value = PLACEHOLDERS[word];
    if (value !== undefined) return forRegExp ? escapeRegExp(value) : value;
    if (strict) throw new Error(`${where}: unknown placeholder ${word}; add it to PLACEHOLDERS in test/support/runbook-steps.ts`);
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

/** The step a line of a ```sh block is, or null for a line people run (sudo, journalctl, jq, editing files). */
function stepOf(text: string, where: string): Step | null {
  const step: Step = { where, kind: "shortener", command: text, assignments: "", exit: 0, prints: [], matches: [] };
  const capture = CAPTURE.exec(text);
  const assigned = ASSIGNED.exec(text);
  const unit = UNIT_LINE.exec(text);
  if (capture) {
    step.capture = capture[1];
    step.command = fill(capture[2] as string, where, true);
  } else if (assigned) {
    step.assignments = assigned[1] as string;
    step.command = fill(assigned[2] as string, where, true);
  } else if (/^curl\s/.test(text)) {
    step.kind = "curl";
    step.command = fill(text, where, false);
  } else if (unit) {
    step.kind = "unit";
    step.unit = unit[1] === "stop" ? "stop" : unit[1] === "restart" ? "restart" : "start";
    if (unit[4] !== undefined) step.litestream = true;
    else if (unit[3] !== undefined) step.colourVariable = unit[3];
    else step.colour = unit[2];
  } else if (SHORTENER_ANYWHERE.test(text)) {
    throw new Error(`${where}: "${text}" runs shortener in a form the test cannot run (see runbooks/README.md)`);
  } else {
    return null;
  }
  if (step.kind === "shortener") step.subcommand = step.command.split(/\s+/)[1] ?? "";
  return step;
}

/** The colour a `shortener@…` unit step acts on: as written, or the value its variable has in the runbook's shell. */
export function unitColour(step: Step, env: Record<string, string | undefined>): string | undefined {
  if (step.colourVariable === undefined) return step.colour;
  const colour = env[step.colourVariable];
  if (colour === undefined || colour === "") {
    throw new Error(`${step.where}: $${step.colourVariable} is not set; the test sets it as the runbook tells the operator to`);
  }
  return colour;
}

/** The steps of one runbook's text, with what each must print and exit with. */
export function parseRunbookText(markdown: string, file: string): Step[] {
  const steps: Step[] = [];
  let last: Step | null = null;
  for (const { line, text } of shellLines(markdown)) {
    const where = `runbooks/${file}:${line}`;
    const annotation = /^#\s*(prints|matches|exits):\s?(.*)$/.exec(text);
    if (annotation) {
      if (last === null) throw new Error(`${where}: "${text}" does not follow a command the test runs`);
      const [, kind, value] = annotation as unknown as [string, string, string];
      if (kind === "prints") last.prints.push(fill(value, where, false));
      else if (kind === "matches") last.matches.push(new RegExp(fill(value, where, false, true)).source);
      else last.exit = Number(value);
      continue;
    }
    if (text.startsWith("#")) continue;
    last = text === "" ? null : stepOf(text, where);
    if (last !== null) steps.push(last);
  }
  return steps;
}

export function parseRunbook(file: string): Step[] {
  return parseRunbookText(readFileSync(join(RUNBOOKS, file), "utf8"), file);
}

export const runbookFiles = readdirSync(RUNBOOKS)
  .filter((f) => f.endsWith(".md") && f !== "README.md")
  .sort();

export interface ShellResult {
  exitCode: number;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

/** Runs one runbook line under bash (strict, no profile), killed after `timeoutMs`. */
export async function runShell(command: string, env: Record<string, string>, timeoutMs = 60_000): Promise<ShellResult> {
  const proc = Bun.spawn(["bash", "--noprofile", "--norc", "-o", "nounset", "-o", "pipefail", "-c", command], {
    env,
    stdout: "pipe",
    stderr: "pipe",
    stdin: "ignore",
  });
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    proc.kill("SIGKILL");
  }, timeoutMs);
  const [stdout, stderr, exitCode] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  clearTimeout(timer);
  return { exitCode, stdout, stderr, timedOut };
}

/**
 * Runs one `shortener` or shell step of a runbook and asserts what the runbook says of it: its exit code, and every
 * text it prints or pattern its output matches. `map` rewrites the runbook's addresses into the test's.
 */
export async function expectStepPasses(
  step: Step,
  env: Record<string, string>,
  map: (text: string) => string = (text) => text,
): Promise<void> {
  const command = map(step.command);
  const shell = step.kind === "shortener" ? `${step.assignments}"$SHORTENER_BIN"${command.slice("shortener".length)}` : command;
  const result = await runShell(shell, env);
  const output = result.stdout + result.stderr;
  const problems = [
    ...(result.exitCode === step.exit ? [] : [`exited ${result.exitCode}, the runbook says ${step.exit}`]),
    ...step.prints.filter((text) => !output.includes(map(text))).map((text) => `does not print ${JSON.stringify(text)}`),
    ...step.matches.filter((re) => !new RegExp(map(re)).test(output)).map((re) => `output does not match /${re}/`),
  ];
  expect({ step: `${step.where}: ${command}`, problems, output: problems.length > 0 ? output : "" }).toEqual({
    step: `${step.where}: ${command}`,
    problems: [],
    output: "",
  });
}
