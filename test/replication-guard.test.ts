/**
 * The RPO guard, black-box: dist/shortener with --replication litestream, a real `litestream replicate` and a real
 * S3-compatible server on loopback. An S3 outage (the server paused) makes the replica fall behind; past
 * --max-replication-lag, link writes are refused with 503 + Retry-After while redirects go on and /readyz tells
 * why; when S3 returns they recover, and the replica ends up holding every link that was acknowledged.
 */
import { describe, expect, test } from "bun:test";
import { readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { BINARY, TestServer, tempDir, waitFor } from "./support/binary";
import { cleanEnv, LitestreamProcess, writeLitestreamConfig } from "./support/litestream";
import { restoreReplica, shortCodesIn, syncReplica } from "./support/replica";
import { parseRunbook, RUNBOOKS, runShell, type Step } from "./support/runbook-steps";
import { S3Server } from "./support/s3";

const MAX_LAG_SECONDS = 3;
const RUNBOOK = "replication-lag.md";

/** The runbook's steps, split at its "## 4." heading: what an operator runs during the outage, and after it. */
function runbookSteps(): { during: Step[]; after: Step[] } {
  const steps = parseRunbook(RUNBOOK);
  const verifyLine = readFileSync(join(RUNBOOKS, RUNBOOK), "utf8")
    .split("\n")
    .findIndex((l) => l.startsWith("## 4."));
  if (verifyLine < 0) throw new Error(`runbooks/${RUNBOOK} has no "## 4." section to run after the outage`);
  const lineOf = (step: Step) => Number(step.where.split(":").at(-1));
  return { during: steps.filter((st) => lineOf(st) <= verifyLine), after: steps.filter((st) => lineOf(st) > verifyLine) };
}

/**
 * Runs runbook steps as runbooks/README.md says, on this test's node: the addresses and socket the runbook names
 * (blue's, and litestream.yml's) stand for the test's. Returns every step that did not run as documented.
 */
async function runSteps(steps: Step[], env: Record<string, string>, replacements: [string, string][]): Promise<string[]> {
  const map = (text: string) => replacements.reduce((t, [from, to]) => t.replaceAll(from, to), text);
  const problems: string[] = [];
  for (const step of steps) {
    if (step.kind === "unit") throw new Error(`${step.where}: this runbook starts or stops no unit`);
    const command = map(step.command);
    const shell = step.kind === "shortener" ? `${step.assignments}"$SHORTENER_BIN"${command.slice("shortener".length)}` : command;
    const { stdout, stderr, exitCode } = await runShell(shell, env);
    const output = stdout + stderr;
    const wrong = [
      ...(exitCode === step.exit ? [] : [`exited ${exitCode}, the runbook says ${step.exit}`]),
      ...step.prints.filter((text) => !output.includes(map(text))).map((text) => `does not print ${JSON.stringify(text)}`),
      ...step.matches.filter((re) => !new RegExp(map(re)).test(output)).map((re) => `output does not match /${re}/`),
    ];
    if (wrong.length > 0) problems.push(`${step.where}: ${command}\n  ${wrong.join("\n  ")}\n  output: ${output.trim() || "(none)"}`);
  }
  return problems;
}

interface Readiness {
  status: string;
  reasons: string[];
  replication?: { lagSeconds: number; maxLagSeconds: number; ok: boolean };
}

async function readiness(server: TestServer): Promise<{ status: number; body: Readiness }> {
  const response = await fetch(`${server.baseUrl}/readyz`);
  return { status: response.status, body: (await response.json()) as Readiness };
}

/** Litestream's own account of its last upload of the database (GET /list on its control socket). */
async function lastUpload(socketPath: string): Promise<string | null> {
  const response = await fetch("http://localhost/list", { unix: socketPath, signal: AbortSignal.timeout(5000) } as RequestInit);
  const { databases } = (await response.json()) as { databases: { last_sync_at?: string }[] };
  return databases[0]?.last_sync_at ?? null;
}

function create(server: TestServer, n: number): Promise<Response> {
  return server.api("/rest/v3/short-urls", { method: "POST", body: JSON.stringify({ longUrl: `https://example.com/guard/${n}` }) });
}

describe("the replication-lag guard (real Litestream, real S3 on loopback)", () => {
  test("with S3 unreachable past --max-replication-lag, link writes get 503 + Retry-After while redirects go on; after S3 returns they recover and the replica holds every acknowledged link", async () => {
    const dir = tempDir("shortener-guard-");
    await using _dir = { [Symbol.asyncDispose]: async () => rmSync(dir, { recursive: true, force: true }) };
    await using s3 = await S3Server.start();
    const configPath = join(dir, "litestream.yml");
    await using server = new TestServer({
      args: ["--replication", "litestream", "--litestream-config", configPath, "--max-replication-lag", `${MAX_LAG_SECONDS}s`],
    });
    const databasePath = join(server.dataDir, "shortener.db");
    const { socketPath } = writeLitestreamConfig({ dir, databasePath, s3, prefix: "guard" });
    await server.createKey();
    await using _litestream = await new LitestreamProcess(configPath, socketPath).start();
    await server.start();
    const runbook = runbookSteps();
    const runbookEnv = cleanEnv({
      SHORTENER_BIN: BINARY,
      SHORTENER_DATA_DIR: server.dataDir,
      SHORTENER_LISTEN: `127.0.0.1:${server.port}`,
      SHORTENER_OPS_LISTEN: `127.0.0.1:${server.opsPort}`,
      SHORTENER_BASE_URL: server.baseUrl,
      SHORTENER_LITESTREAM_CONFIG: configPath,
      SHORTENER_REPLICATION: "litestream",
      SHORTENER_MAX_REPLICATION_LAG: `${MAX_LAG_SECONDS}s`,
      NODE: server.baseUrl,
      LITESTREAM_S3_ENDPOINT: s3.endpoint,
    });
    const replacements: [string, string][] = [
      ["127.0.0.1:8081", `127.0.0.1:${server.opsPort}`],
      ["127.0.0.1:8080", `127.0.0.1:${server.port}`],
      ["/run/litestream/litestream.sock", socketPath],
    ];
    const acknowledged: string[] = [];
    let n = 0;
    // 1. Healthy: Litestream has uploaded (the heartbeat gives it an upload every second) and creates succeed.
    await waitFor("Litestream's first upload", async () => (await lastUpload(socketPath)) !== null, 30_000);
    await waitFor("a replica less than 1.5 s behind", async () => {
      const { body } = await readiness(server);
      return body.replication?.ok === true && body.replication.lagSeconds < 1.5;
    });
    for (let i = 0; i < 5; i++) {
      const response = await create(server, n++);
      expect(response.status).toBe(200);
      acknowledged.push(((await response.json()) as { shortCode: string }).shortCode);
    }
    const ready = await readiness(server);
    expect(ready).toMatchObject({ status: 200, body: { status: "ready", reasons: [], replication: { ok: true, maxLagSeconds: 3 } } });

    // 2. S3 goes away. Just before, the replica was < 1.5 s behind, so no write can be refused for 1.5 s more.
    await waitFor("a replica less than 1.5 s behind", async () => ((await readiness(server)).body.replication?.lagSeconds ?? 99) < 1.5);
    const pausedAt = performance.now();
    s3.pause();
    let refusal: Response | null = null;
    const deadline = Date.now() + 60_000;
    for (let attempt = 0; refusal === null && Date.now() < deadline && attempt < 2000; attempt++) {
      const response = await create(server, n++);
      if (response.status === 200) acknowledged.push(((await response.json()) as { shortCode: string }).shortCode);
      else refusal = response;
      if (refusal === null) await Bun.sleep(100);
    }
    const refusedAfterMs = performance.now() - pausedAt;
    if (refusal === null) throw new Error("creates were never refused while S3 was unreachable");
    expect(refusal.status).toBe(503);
    expect(refusal.headers.get("content-type")).toContain("application/problem+json");
    expect(Number(refusal.headers.get("retry-after"))).toBeGreaterThan(0);
    const problem = (await refusal.json()) as { type: string; status: number; lagSeconds: number; maxLagSeconds: number };
    expect(problem).toMatchObject({ type: expect.stringMatching(/\/replication-lagging$/), status: 503, maxLagSeconds: 3 });
    expect(problem.lagSeconds).toBeGreaterThan(MAX_LAG_SECONDS);
    expect(refusedAfterMs).toBeGreaterThan(1400);

    // 3. While it lags: every link write is refused, redirects still answer, readiness holds but says why.
    const edit = await server.api(`/rest/v3/short-urls/${acknowledged[0]}`, { method: "PATCH", body: JSON.stringify({ title: "x" }) });
    expect(edit.status).toBe(503);
    expect(((await edit.json()) as { type: string }).type).toMatch(/\/replication-lagging$/);
    const redirect = await fetch(`${server.baseUrl}/${acknowledged[0]}`, { redirect: "manual" });
    expect([redirect.status, redirect.headers.get("location")]).toEqual([302, "https://example.com/guard/0"]);
    const degraded = await readiness(server);
    expect(degraded).toMatchObject({
      status: 200,
      body: { status: "degraded", reasons: ["replication lagging: link writes refused"], replication: { ok: false, maxLagSeconds: 3 } },
    });
    expect(degraded.body.replication?.lagSeconds).toBeGreaterThan(MAX_LAG_SECONDS);
    expect(await server.metric("shortener_replication_lag_seconds")).toBeGreaterThan(MAX_LAG_SECONDS);
    // The runbook's checks, as an operator runs them now: each shows what it documents.
    expect(await runSteps(runbook.during, runbookEnv, replacements)).toEqual([]);

    // 4. S3 returns: Litestream catches up and creates are accepted again.
    s3.resume();
    const resumedAt = performance.now();
    let recovered: Response | null = null;
    const recoveryDeadline = Date.now() + 90_000;
    for (let attempt = 0; recovered === null && Date.now() < recoveryDeadline && attempt < 2000; attempt++) {
      const response = await create(server, n++);
      if (response.status === 200) recovered = response;
      else {
        expect(response.status).toBe(503);
        await Bun.sleep(200);
      }
    }
    if (recovered === null) throw new Error("creates were still refused 90 s after S3 came back");
    acknowledged.push(((await recovered.json()) as { shortCode: string }).shortCode);
    console.log(
      `replication guard: first refusal ${(refusedAfterMs / 1000).toFixed(1)} s after S3 paused; creates accepted again ${((performance.now() - resumedAt) / 1000).toFixed(1)} s after it resumed`,
    );
    expect((await readiness(server)).body).toMatchObject({ status: "ready", reasons: [], replication: { ok: true } });
    expect(await server.metric("shortener_replication_lag_seconds")).toBeLessThanOrEqual(MAX_LAG_SECONDS);
    expect(await runSteps(runbook.after, runbookEnv, replacements)).toEqual([]);

    // 5. Nothing acknowledged is lost: a restore of the replica holds every acknowledged link.
    await syncReplica(socketPath, databasePath);
    const restored = join(dir, "restored.db");
    await restoreReplica(configPath, databasePath, restored);
    const codes = shortCodesIn(restored);
    expect(acknowledged.filter((code) => !codes.has(code))).toEqual([]);
    expect(acknowledged.length).toBeGreaterThanOrEqual(6);
  }, 240_000);
});
