/**
 * Runs one runbook's steps against dist/shortener, as runbooks/README.md describes: each colour of
 * deploy/systemd/*.env.example is a node started with that file's settings, on free ports and a temp data dir
 * shared by the colours; the addresses the env files name are mapped to those ports in every command and
 * expectation; `systemctl start|stop|restart shortener@COLOUR` starts the colour's node or stops it with SIGTERM.
 */
import { readdirSync, readFileSync, rmSync } from "node:fs";
import { join, resolve } from "node:path";
import type { Subprocess } from "bun";
import { collectText, freePort, requireBinary, tempDir, waitFor } from "./binary";
import { escapeRegExp, parseRunbook, runShell, type ShellResult, type Step, unitColour } from "./runbook-steps";

const SYSTEMD = resolve(import.meta.dir, "../../deploy/systemd");
/** The colour whose settings the runbooks' preamble loads, and whose node runs unless a runbook starts it. */
const PREAMBLE_COLOUR = "blue";
const STEP_TIMEOUT_MS = 30_000;
/** Runbook runs stop nodes often; the drain grace itself is tested in test/drain.test.ts. */
const TEST_DRAIN_GRACE = "250ms";

/** `KEY=value` lines of an env file. */
function envFile(path: string): Record<string, string> {
  const lines = readFileSync(path, "utf8").split("\n");
  const pairs = lines.map((l) => /^\s*([A-Z_][A-Z0-9_]*)=(.*)$/.exec(l)).filter((m) => m !== null);
  return Object.fromEntries(pairs.map((m) => [m[1] as string, (m[2] as string).trim()]));
}

/** One colour's `shortener serve`, as systemd runs it with the colour's env file. */
class Node {
  proc: Subprocess<"ignore", "pipe", "pipe"> | null = null;
  output = "";

  constructor(
    readonly colour: string,
    readonly env: Record<string, string>,
  ) {}

  get running(): boolean {
    return this.proc !== null;
  }

  async start(where: string): Promise<void> {
    if (this.proc !== null) throw new Error(`${where}: shortener@${this.colour} is already running`);
    const proc = Bun.spawn([requireBinary(), "serve"], { env: this.env, stdout: "pipe", stderr: "pipe", stdin: "ignore" });
    this.proc = proc;
    void this.#collect(proc.stdout);
    void this.#collect(proc.stderr);
    await waitFor(`${where}: the readiness of shortener@${this.colour}`, async () => {
      if (proc.exitCode !== null) throw new Error(`${where}: shortener@${this.colour} exited (${proc.exitCode}): ${this.output}`);
      return this.ready();
    });
  }

  /** Whether its /readyz answers 200 now. */
  async ready(): Promise<boolean> {
    try {
      return (await fetch(`http://${this.env.SHORTENER_LISTEN}/readyz`)).status === 200;
    } catch {
      return false;
    }
  }

  /** SIGTERM, as systemd stops the unit, or no signal when it is to exit by itself; the exit status. */
  async stop(signal: "SIGTERM" | null = "SIGTERM"): Promise<number> {
    const proc = this.proc;
    if (proc === null) throw new Error(`shortener@${this.colour} is not running`);
    this.proc = null;
    if (signal !== null) proc.kill(signal);
    const timer = setTimeout(() => proc.kill("SIGKILL"), 20_000);
    const code = await proc.exited;
    clearTimeout(timer);
    return code;
  }

  #collect(stream: ReadableStream<Uint8Array>): Promise<void> {
    return collectText(stream, (text) => {
      this.output += text;
    });
  }
}

/** The nodes of every colour, and the env-file addresses mapped to their test addresses. */
function nodesFor(dataDir: string): { nodes: Map<string, Node>; addresses: [string, string][] } {
  const nodes = new Map<string, Node>();
  const addresses: [string, string][] = [];
  for (const file of readdirSync(SYSTEMD).filter((f) => f.endsWith(".env.example"))) {
    const colour = file.replace(/\.env\.example$/, "");
    const env: Record<string, string> = { ...envFile(join(SYSTEMD, file)) };
    for (const key of ["SHORTENER_LISTEN", "SHORTENER_OPS_LISTEN"]) {
      const address = `127.0.0.1:${freePort()}`;
      if (env[key] === undefined) throw new Error(`deploy/systemd/${file} does not set ${key}`);
      addresses.push([env[key] as string, address]);
      env[key] = address;
    }
    // The machine's paths, and no replication: no Litestream runs beside the runbooks (its tests have their own).
    env.SHORTENER_DATA_DIR = dataDir;
    env.SHORTENER_LITESTREAM_CONFIG = join(dataDir, "litestream.yml");
    env.SHORTENER_REPLICATION = "off";
    env.SHORTENER_DURABILITY = "local";
    env.SHORTENER_DRAIN_GRACE = TEST_DRAIN_GRACE;
    nodes.set(colour, new Node(colour, { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: process.env.HOME ?? "/tmp", ...env }));
  }
  return { nodes, addresses };
}

function checkOutcome(step: Step, command: string, result: ShellResult, map: (text: string) => string): void {
  const output = result.stdout + result.stderr;
  const problems: string[] = [];
  if (result.timedOut) problems.push(`did not finish within ${STEP_TIMEOUT_MS / 1000} s`);
  if (result.exitCode !== step.exit) problems.push(`exited ${result.exitCode}, the runbook says ${step.exit}`);
  for (const text of step.prints.map(map)) if (!output.includes(text)) problems.push(`does not print ${JSON.stringify(text)}`);
  for (const re of step.matches.map((m) => new RegExp(map(m)))) if (!re.test(output)) problems.push(`output does not match ${re}`);
  if (problems.length > 0) {
    throw new Error(`${step.where}: ${command}\n  ${problems.join("\n  ")}\n  output: ${output.trim() || "(none)"}`);
  }
}

/** The ops address a `shortener drain` step talks to: its --ops-listen, its SHORTENER_OPS_LISTEN, or the shell's. */
function drainTarget(command: string, assignments: string, env: Record<string, string>): string | undefined {
  return /--ops-listen[= ](\S+)/.exec(command)?.[1] ?? /SHORTENER_OPS_LISTEN=(\S+)/.exec(assignments)?.[1] ?? env.SHORTENER_OPS_LISTEN;
}

/**
 * A colour's node runs when the runbook begins if the runbook's first systemctl line for it stops or restarts it,
 * or, for the preamble's colour, if the runbook has no systemctl line for it.
 */
function runningAtStart(colour: string, steps: Step[]): boolean {
  const first = steps.find((s) => s.kind === "unit" && s.colour === colour);
  return first === undefined ? colour === PREAMBLE_COLOUR : first.unit !== "start";
}

async function runUnitStep(step: Step, node: Node): Promise<void> {
  if (step.unit !== "start" && node.running) {
    const code = await node.stop();
    if (code !== step.exit) throw new Error(`${step.where}: shortener@${node.colour} stopped with ${code}, the runbook says ${step.exit}`);
  }
  if (step.unit !== "stop") await node.start(step.where);
}

/** The address map of a run: every env-file address, as written and regex-escaped, to its test address. */
function addressMapper(addresses: [string, string][]): (text: string) => string {
  const spellings = new Map(addresses.flatMap(([from, to]) => [[from, to] as const, [escapeRegExp(from), escapeRegExp(to)] as const]));
  const anyAddress = new RegExp(`(${[...spellings.keys()].map(escapeRegExp).join("|")})(?!\\d)`, "g");
  return (text) => text.replace(anyAddress, (found) => spellings.get(found) as string);
}

/** Runs a `shortener` or `curl` step in the shell; after a drain, waits for the drained node to exit 0. */
async function runCommandStep(step: Step, env: Record<string, string>, map: (text: string) => string, nodes: Node[]): Promise<void> {
  const command = map(step.command);
  const assignments = map(step.assignments);
  const shell = step.kind === "shortener" ? `${assignments}"$SHORTENER_BIN"${command.slice("shortener".length)}` : command;
  const result = await runShell(shell, env, STEP_TIMEOUT_MS);
  checkOutcome(step, command, result, map);
  if (step.capture !== undefined) env[step.capture] = result.stdout.trim();
  if (step.subcommand === "drain" && step.exit === 0) {
    const target = drainTarget(command, assignments, env);
    const node = nodes.find((n) => n.running && n.env.SHORTENER_OPS_LISTEN === target);
    if (node === undefined) throw new Error(`${step.where}: drained ${target}, which is no running node of this runbook`);
    const code = await node.stop(null);
    if (code !== 0) throw new Error(`${step.where}: shortener@${node.colour} exited ${code} after draining, not 0:\n${node.output}`);
  }
}

/** Runs one runbook's steps in order against a fresh data dir and free ports. */
export async function runRunbook(file: string): Promise<void> {
  const steps = parseRunbook(file);
  const dataDir = tempDir("shortener-runbook-");
  const { nodes: byColour, addresses } = nodesFor(dataDir);
  const nodes = [...byColour.values()];
  const map = addressMapper(addresses);
  const preamble = byColour.get(PREAMBLE_COLOUR);
  if (preamble === undefined) throw new Error(`deploy/systemd/${PREAMBLE_COLOUR}.env.example is missing`);
  const env: Record<string, string> = { ...preamble.env, SHORTENER_BIN: requireBinary(), NODE: `http://${preamble.env.SHORTENER_LISTEN}` };
  try {
    const unknown = steps.find((s) => s.colour !== undefined && !byColour.has(s.colour));
    if (unknown) throw new Error(`${unknown.where}: shortener@${unknown.colour} has no deploy/systemd/${unknown.colour}.env.example`);
    const replica = steps.find((s) => s.litestream);
    if (replica) throw new Error(`${replica.where}: no Litestream runs here; see RUN_WITH_A_REPLICA in test/runbooks.test.ts`);
    for (const node of nodes) if (runningAtStart(node.colour, steps)) await node.start(`runbooks/${file} (already running)`);
    for (const step of steps) {
      if (step.kind === "unit") {
        const colour = unitColour(step, env) as string;
        const node = byColour.get(colour);
        if (node === undefined) throw new Error(`${step.where}: shortener@${colour} has no deploy/systemd/${colour}.env.example`);
        await runUnitStep(step, node);
      } else await runCommandStep(step, env, map, nodes);
      for (const node of nodes) {
        if (node.running && !(await node.ready())) {
          throw new Error(
            `${step.where}: shortener@${node.colour} is no longer ready, though no step stopped or drained it:\n${node.output}`,
          );
        }
      }
    }
    for (const node of nodes.filter((n) => n.running)) {
      const code = await node.stop();
      if (code !== 0)
        throw new Error(`runbooks/${file}: shortener@${node.colour} exited ${code} on SIGTERM at the end, not 0:\n${node.output}`);
    }
  } finally {
    for (const node of nodes) if (node.running) await node.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}
