/**
 * `shortener drill` against the compiled binary, a running server (it writes the heartbeat), real Litestream
 * replicating to a real S3 server (moto) on loopback: a healthy drill, an unreachable S3, a wrong bucket, a stale
 * replica, the metrics the server reports from the drill's record, and the runbook for a failed drill.
 */

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { runCli, startServer, type TestServer, waitFor } from "./support/binary";
import { cleanEnv, LitestreamProcess, writeLitestreamConfig } from "./support/litestream";
import { newestHeartbeat, syncReplica } from "./support/replica";
import { expectStepPasses, parseRunbook } from "./support/runbook-steps";
import { S3Server } from "./support/s3";

const DRILL_METRICS = [
  "shortener_drill_last_run_timestamp_seconds",
  "shortener_drill_last_success_timestamp_seconds",
  "shortener_drill_last_ok",
  "shortener_drill_last_rpo_seconds",
  "shortener_drill_last_restore_duration_seconds",
];
const STEPS = [
  "litestream.config",
  "live.database",
  "restore.latest",
  "integrity.latest",
  "rpo",
  "links",
  "restore.past",
  "integrity.past",
  "past.heartbeat",
];

interface Step {
  name: string;
  ok: boolean;
  detail: string;
  hint?: string;
}

interface Report {
  ok: boolean;
  startedAt: string;
  finishedAt: string;
  rpoSeconds: number | null;
  replicaAgeSeconds: number | null;
  restoreSeconds: number | null;
  live: { links: number; heartbeatAt: string | null } | null;
  latest: { links: number; integrity: string[]; heartbeatAt: string | null } | null;
  links: { liveLinks: number; restoredLinks: number; missingFromCopy: number } | null;
  past: { at: string; why: string; integrity: string[]; heartbeatAt: string | null } | null;
  steps: Step[];
}

let s3: S3Server;
let prefixes = 0;

beforeAll(async () => {
  s3 = await S3Server.start();
});

afterAll(async () => {
  await s3?.[Symbol.asyncDispose]();
});

/** A primary with its own data dir, replicated by its own Litestream to its own prefix of the shared S3 server. */
class ReplicatedNode implements AsyncDisposable {
  readonly databasePath: string;
  readonly configPath: string;
  readonly socketPath: string;
  /** Where drills put their temp dirs (TMPDIR), so a test can see that they remove them. */
  readonly tmp: string;
  litestream: LitestreamProcess;

  private constructor(readonly server: TestServer) {
    this.databasePath = join(server.dataDir, "shortener.db");
    const config = writeLitestreamConfig({ dir: server.dataDir, databasePath: this.databasePath, s3, prefix: `node-${++prefixes}` });
    this.configPath = config.configPath;
    this.socketPath = config.socketPath;
    this.litestream = new LitestreamProcess(this.configPath, this.socketPath);
    this.tmp = join(server.dataDir, "tmp");
    mkdirSync(this.tmp);
  }

  static async start(): Promise<ReplicatedNode> {
    const node = new ReplicatedNode(await startServer());
    await node.litestream.start();
    // The primary writes its first heartbeat a second after it starts; a drill needs one to measure the RPO.
    await waitFor("the first heartbeat", () => node.liveHeartbeat() > 0, 10_000, 50);
    return node;
  }

  /** Creates `count` links through the API. */
  async createLinks(count: number, prefix = "link"): Promise<void> {
    for (let i = 0; i < count; i++) {
      const response = await this.server.api("/rest/v3/short-urls", {
        method: "POST",
        body: JSON.stringify({ longUrl: `https://example.com/${prefix}/${i}`, customSlug: `${prefix}-${i}` }),
      });
      expect(response.status).toBe(200);
    }
  }

  /** Returns once the replica holds everything committed so far. */
  synced(): Promise<void> {
    return syncReplica(this.socketPath, this.databasePath);
  }

  /** The settings every command needs to find this node and its replica. */
  get settings(): string[] {
    return [...this.server.settings, "--litestream-config", this.configPath];
  }

  async drill(...args: string[]): Promise<{ exitCode: number; stdout: string; stderr: string; report: Report | null }> {
    const result = await runCli(["drill", ...this.settings, ...args], cleanEnv({ TMPDIR: this.tmp }), 120_000);
    let report: Report | null = null;
    if (args.includes("--json")) report = JSON.parse(result.stdout) as Report;
    return { ...result, report };
  }

  /** The drill metrics in a scrape of the server's /metrics: name → value, for those with a sample. */
  async drillMetrics(): Promise<Map<string, number>> {
    const text = await (await fetch(`http://127.0.0.1:${this.server.opsPort}/metrics`)).text();
    for (const name of DRILL_METRICS) expect(text).toContain(`# TYPE ${name} gauge`);
    const samples = text.split("\n").map((l) => /^(shortener_drill_\w+) (\S+)$/.exec(l));
    return new Map(samples.filter((m) => m !== null).map((m) => [m[1] as string, Number(m[2])]));
  }

  /** The live database's newest heartbeat (epoch ms). */
  liveHeartbeat(): number {
    return newestHeartbeat(this.databasePath);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.litestream.proc?.kill("SIGCONT");
    await this.litestream.stop();
    await this.server[Symbol.asyncDispose]();
  }
}

const epochSeconds = (iso: string) => Date.parse(iso) / 1000;
const failed = (report: Report | null) => report?.steps.filter((s) => !s.ok).map((s) => s.name);

describe("shortener drill", () => {
  test("before any drill, /metrics declares the drill gauges without a sample, so the alerts see them absent", async () => {
    const server = await startServer();
    try {
      const text = await (await fetch(`http://127.0.0.1:${server.opsPort}/metrics`)).text();
      for (const name of DRILL_METRICS) expect(text).toContain(`# TYPE ${name} gauge`);
      expect(text.split("\n").filter((l) => l.startsWith("shortener_drill_"))).toEqual([]);
    } finally {
      await server[Symbol.asyncDispose]();
    }
  });

  test("a healthy drill exits 0, reports an RPO of a few seconds and the restore time, and /metrics then shows them", async () => {
    await using node = await ReplicatedNode.start();
    const firstBeat = node.liveHeartbeat();
    await node.createLinks(20);
    // A replica a few seconds old, so that the past point lies well before the latest state.
    await waitFor("a replica 3 s old", () => node.liveHeartbeat() >= firstBeat + 3000, 15_000, 100);
    await node.synced();
    const { exitCode, report, stderr } = await node.drill("--json");
    expect({ exitCode, stderr, failed: failed(report) }).toEqual({ exitCode: 0, stderr: "", failed: [] });
    if (report === null) throw new Error("no report");
    expect(report.steps.map((s) => s.name)).toEqual(STEPS);
    expect(report.rpoSeconds).toBeGreaterThanOrEqual(0);
    expect(report.rpoSeconds).toBeLessThanOrEqual(3);
    // The age is taken when the restore has finished, so it includes the restore's own time.
    expect(report.replicaAgeSeconds).toBeLessThanOrEqual((report.restoreSeconds as number) + 3);
    expect(report.restoreSeconds).toBeGreaterThan(0);
    expect(report.restoreSeconds).toBeLessThan(30);
    expect(report.links).toMatchObject({ liveLinks: 20, restoredLinks: 20, missingFromCopy: 0 });
    expect(report.latest?.integrity).toEqual(["ok"]);
    expect(report.past?.integrity).toEqual(["ok"]);
    // The replica is seconds old, younger than the preferred minute: the past point falls inside its range.
    expect(report.past?.why).toContain("midpoint");
    expect(Date.parse(report.past?.at ?? "")).toBeLessThan(Date.parse(report.startedAt) - 500);
    expect(Date.parse(report.past?.heartbeatAt ?? "")).toBeLessThan(Date.parse(report.latest?.heartbeatAt ?? ""));
    // The restored copies went to a temp dir under TMPDIR, and it is gone.
    expect(readdirSync(node.tmp)).toEqual([]);

    const record = JSON.parse(readFileSync(join(node.server.dataDir, "drill-last.json"), "utf8"));
    expect(record).toEqual({
      finishedAt: report.finishedAt,
      ok: true,
      failed: [],
      rpoSeconds: report.rpoSeconds,
      restoreSeconds: report.restoreSeconds,
      lastSuccessAt: report.finishedAt,
    });
    expect(Object.fromEntries(await node.drillMetrics())).toEqual({
      shortener_drill_last_run_timestamp_seconds: epochSeconds(report.finishedAt),
      shortener_drill_last_success_timestamp_seconds: epochSeconds(report.finishedAt),
      shortener_drill_last_ok: 1,
      shortener_drill_last_rpo_seconds: report.rpoSeconds as number,
      shortener_drill_last_restore_duration_seconds: report.restoreSeconds as number,
    });
  });

  test("with the S3 server paused, the drill fails on restore.latest after --drill-timeout; last_ok turns 0, last_success stays", async () => {
    await using node = await ReplicatedNode.start();
    await node.createLinks(3);
    await node.synced();
    const passed = await node.drill("--json");
    expect(passed.exitCode).toBe(0);
    s3.pause();
    let result: Awaited<ReturnType<ReplicatedNode["drill"]>>;
    try {
      result = await node.drill("--json", "--drill-timeout", "3s");
    } finally {
      s3.resume();
    }
    expect({ exitCode: result.exitCode, failed: failed(result.report) }).toEqual({ exitCode: 1, failed: ["restore.latest"] });
    const step = result.report?.steps.find((s) => s.name === "restore.latest");
    expect(step?.detail).toContain("timed out after 3 s");
    expect(step?.hint).toContain("runbooks/failed-restore-drill.md");
    expect(readdirSync(node.tmp)).toEqual([]);

    const metrics = await node.drillMetrics();
    expect(metrics.get("shortener_drill_last_ok")).toBe(0);
    expect(metrics.get("shortener_drill_last_run_timestamp_seconds")).toBe(epochSeconds(result.report?.finishedAt ?? ""));
    expect(metrics.get("shortener_drill_last_success_timestamp_seconds")).toBe(epochSeconds(passed.report?.finishedAt ?? ""));
    // Nothing was restored, so nothing was measured: absent rather than a stale or made-up value.
    expect(metrics.has("shortener_drill_last_rpo_seconds")).toBe(false);
    expect(metrics.has("shortener_drill_last_restore_duration_seconds")).toBe(false);
  });

  test("against a bucket that does not exist, the drill fails on restore.latest with Litestream's error", async () => {
    await using node = await ReplicatedNode.start();
    const dir = join(node.server.dataDir, "wrong-bucket");
    mkdirSync(dir);
    const wrong = writeLitestreamConfig({ dir, databasePath: node.databasePath, s3, bucket: "no-such-bucket", prefix: "x" });
    const result = await node.drill("--litestream-config", wrong.configPath);
    expect(result.exitCode).toBe(1);
    expect(result.stdout).toMatch(/^FAIL restore\.latest +litestream restore exited 1: .+\(hint: /m);
    expect(result.stdout).toContain("drill FAILED (restore.latest): RPO not measured");
    const record = JSON.parse(readFileSync(join(node.server.dataDir, "drill-last.json"), "utf8"));
    expect(record).toMatchObject({ ok: false, failed: ["restore.latest"], rpoSeconds: null, lastSuccessAt: null });
    expect((await node.drillMetrics()).get("shortener_drill_last_ok")).toBe(0);
    expect((await node.drillMetrics()).has("shortener_drill_last_success_timestamp_seconds")).toBe(false);
  });

  test("with Litestream stopped for longer than --drill-max-rpo, the drill fails on rpo and reports how far behind", async () => {
    await using node = await ReplicatedNode.start();
    await node.createLinks(3);
    await node.synced();
    const replicated = node.liveHeartbeat();
    node.litestream.proc?.kill("SIGSTOP");
    try {
      // The server keeps beating every second while the replica stands still.
      await waitFor("the live heartbeat to move 5 s past the replica's", () => node.liveHeartbeat() >= replicated + 5000, 20_000, 100);
      const { exitCode, report } = await node.drill("--json", "--drill-max-rpo", "3s");
      expect({ exitCode, failed: failed(report) }).toEqual({ exitCode: 1, failed: ["rpo"] });
      expect(report?.rpoSeconds).toBeGreaterThanOrEqual(4);
      expect(report?.steps.find((s) => s.name === "rpo")?.detail).toContain("(max 3 s)");
      expect((await node.drillMetrics()).get("shortener_drill_last_rpo_seconds")).toBe(report?.rpoSeconds as number);
    } finally {
      node.litestream.proc?.kill("SIGCONT");
    }
  });

  test("interrupted by SIGTERM, the drill stops its restore, removes its temp dir and records nothing", async () => {
    await using node = await ReplicatedNode.start();
    await node.createLinks(1);
    await node.synced();
    s3.pause();
    try {
      const proc = Bun.spawn([join(import.meta.dir, "../dist/shortener"), "drill", ...node.settings], {
        env: cleanEnv({ TMPDIR: node.tmp }),
        stdout: "pipe",
        stderr: "pipe",
      });
      await waitFor("the drill's temp dir", () => readdirSync(node.tmp).length > 0, 15_000);
      await Bun.sleep(300);
      proc.kill("SIGTERM");
      const timer = setTimeout(() => proc.kill("SIGKILL"), 10_000);
      const [stdout, exitCode] = await Promise.all([new Response(proc.stdout).text(), proc.exited]);
      clearTimeout(timer);
      expect({ exitCode, interrupted: stdout.includes("drill interrupted; nothing recorded") }).toEqual({ exitCode: 1, interrupted: true });
    } finally {
      s3.resume();
    }
    expect(readdirSync(node.tmp)).toEqual([]);
    expect(existsSync(join(node.server.dataDir, "drill-last.json"))).toBe(false);
  });

  test("every command in runbooks/failed-restore-drill.md runs, exits and prints as documented, after a failed drill", async () => {
    await using node = await ReplicatedNode.start();
    await node.createLinks(5);
    await node.synced();
    // The situation the runbook is for: the last drill failed (here, on an unreachable replica).
    s3.pause();
    try {
      expect((await node.drill("--drill-timeout", "2s")).exitCode).toBe(1);
    } finally {
      s3.resume();
    }
    await node.synced();
    const steps = parseRunbook("failed-restore-drill.md");
    expect(steps.filter((s) => s.kind === "unit")).toEqual([]);
    // The runbook writes blue's addresses (deploy/systemd/blue.env.example); they stand for this node's.
    const addresses: [string, string][] = [
      ["127.0.0.1:8081", `127.0.0.1:${node.server.opsPort}`],
      ["127.0.0.1:8080", `127.0.0.1:${node.server.port}`],
    ];
    const map = (text: string) => addresses.reduce((t, [from, to]) => t.replaceAll(from, to), text);
    const env = cleanEnv({
      TMPDIR: node.tmp,
      SHORTENER_BIN: join(import.meta.dir, "../dist/shortener"),
      SHORTENER_DATA_DIR: node.server.dataDir,
      SHORTENER_LISTEN: `127.0.0.1:${node.server.port}`,
      SHORTENER_OPS_LISTEN: `127.0.0.1:${node.server.opsPort}`,
      SHORTENER_BASE_URL: node.server.baseUrl,
      SHORTENER_LITESTREAM_CONFIG: node.configPath,
      NODE: node.server.baseUrl,
    });
    for (const step of steps) await expectStepPasses(step, env, map);
    expect((await node.drillMetrics()).get("shortener_drill_last_ok")).toBe(1);
  });
});
