/**
 * Replicated durability, black-box: with --durability replicated, a create is acknowledged only after Litestream
 * confirms the replica has it. Each cycle runs a whole node (dist/shortener and a real `litestream replicate`,
 * replicating to a real S3-compatible server on loopback), creates links, kills the node with SIGKILL the moment
 * a create is acknowledged, and restores the replica into a fresh data dir, which must hold every link ever
 * acknowledged. The next cycle runs on that restored copy, replicating to a new prefix, as a replacement VM would.
 */
import { describe, expect, test } from "bun:test";
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { runCli, TestServer, tempDir } from "./support/binary";
import { LitestreamProcess, writeLitestreamConfig } from "./support/litestream";
import { restoreReplica, shortCodesIn } from "./support/replica";
import { S3Server } from "./support/s3";

const CYCLES = 50;
/** Creates per cycle: some one at a time, then a burst cut short by the kill. */
const SEQUENTIAL = 2;
const BURST = 4;

interface Created {
  code: string;
  ms: number;
}

/** POST a create; the short code and latency when acknowledged (200), null when refused or cut off by the kill. */
async function create(server: TestServer, longUrl: string): Promise<Created | null> {
  const started = performance.now();
  try {
    const response = await server.api("/rest/v3/short-urls", { method: "POST", body: JSON.stringify({ longUrl }) });
    if (response.status !== 200) return null;
    const { shortCode } = (await response.json()) as { shortCode: string };
    return { code: shortCode, ms: performance.now() - started };
  } catch {
    return null;
  }
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] as number;
}

describe("replicated durability (real Litestream, real S3 on loopback)", () => {
  test(`over ${CYCLES} cycles of SIGKILL right after an acknowledged create, a restore of the replica holds every acknowledged link`, async () => {
    const root = tempDir("shortener-replicated-");
    await using _root = { [Symbol.asyncDispose]: async () => rmSync(root, { recursive: true, force: true }) };
    await using s3 = await S3Server.start();
    const acknowledged: string[] = [];
    const latencies: number[] = [];
    let apiKey = "";
    let dataDir = join(root, "node-0");
    mkdirSync(dataDir);
    const keys = await runCli(["keys", "create", "--name", "admin", "--data-dir", dataDir]);
    expect(keys.exitCode).toBe(0);
    apiKey = keys.stdout.trim();

    for (let cycle = 0; cycle < CYCLES; cycle++) {
      const databasePath = join(dataDir, "shortener.db");
      const { configPath, socketPath } = writeLitestreamConfig({ dir: dataDir, databasePath, s3, prefix: `epoch-${cycle}` });
      const litestream = await new LitestreamProcess(configPath, socketPath).start();
      const server = new TestServer({
        dataDir,
        args: ["--replication", "litestream", "--litestream-config", configPath, "--durability", "replicated"],
      });
      server.apiKey = apiKey;
      try {
        await server.start();
        for (let i = 0; i < SEQUENTIAL; i++) {
          const created = await create(server, `https://example.com/${cycle}/${i}`);
          if (created === null) throw new Error(`cycle ${cycle}: a create on a healthy node was not acknowledged`);
          acknowledged.push(created.code);
          latencies.push(created.ms);
        }
        // A burst; the node dies the moment the first of it is acknowledged, the rest still in flight.
        const burst = Array.from({ length: BURST }, (_, i) => create(server, `https://example.com/${cycle}/burst/${i}`));
        const acknowledgedOnly = burst.map((p) => p.then((c) => c ?? new Promise<never>(() => {})));
        const first = await Promise.race([...acknowledgedOnly, Promise.all(burst).then(() => null)]);
        server.proc?.kill("SIGKILL");
        litestream.proc?.kill("SIGKILL");
        if (first === null) throw new Error(`cycle ${cycle}: no create of the burst was acknowledged by a healthy node`);
        for (const created of [first, ...(await Promise.all(burst))]) {
          if (created !== null && !acknowledged.includes(created.code)) {
            acknowledged.push(created.code);
            latencies.push(created.ms);
          }
        }
      } finally {
        server.proc?.kill("SIGKILL");
        litestream.proc?.kill("SIGKILL");
        await Promise.all([server.proc?.exited, litestream.proc?.exited]);
      }

      // The node is gone: restore its replica into a fresh data dir, which the next cycle runs on.
      const next = join(root, `node-${cycle + 1}`);
      mkdirSync(next);
      await restoreReplica(configPath, databasePath, join(next, "shortener.db"));
      const codes = shortCodesIn(join(next, "shortener.db"));
      const lost = acknowledged.filter((code) => !codes.has(code));
      if (lost.length > 0) throw new Error(`cycle ${cycle}: the replica lacks ${lost.length} acknowledged link(s): ${lost.join(", ")}`);
      rmSync(dataDir, { recursive: true, force: true });
      dataDir = next;
    }

    latencies.sort((a, b) => a - b);
    console.log(
      `replicated durability: ${CYCLES} kill -9 cycles, ${acknowledged.length} creates acknowledged, none lost; ` +
        `create latency p50 ${percentile(latencies, 50).toFixed(1)} ms, p99 ${percentile(latencies, 99).toFixed(1)} ms, ` +
        `max ${(latencies.at(-1) as number).toFixed(1)} ms`,
    );
    expect(acknowledged.length).toBeGreaterThanOrEqual(CYCLES * (SEQUENTIAL + 1));
  }, 600_000);
});

describe("replicated durability when S3 does not answer", () => {
  test("a create is answered 503 not-replicated with its short code, never 200; repeated with findIfExists once S3 is back, it returns the same link, which a restore then holds", async () => {
    const dir = tempDir("shortener-unconfirmed-");
    await using _dir = { [Symbol.asyncDispose]: async () => rmSync(dir, { recursive: true, force: true }) };
    await using s3 = await S3Server.start();
    const configPath = join(dir, "litestream.yml");
    await using server = new TestServer({
      args: ["--replication", "litestream", "--litestream-config", configPath, "--durability", "replicated"],
    });
    const databasePath = join(server.dataDir, "shortener.db");
    const { socketPath } = writeLitestreamConfig({ dir, databasePath, s3, prefix: "unconfirmed" });
    await server.createKey();
    await using litestream = await new LitestreamProcess(configPath, socketPath).start();
    await server.start();
    const body = { longUrl: "https://example.com/unconfirmed", findIfExists: true };
    const post = () => server.api("/rest/v3/short-urls", { method: "POST", body: JSON.stringify(body) });
    expect((await create(server, "https://example.com/confirmed"))?.code).toBeString();

    s3.pause();
    const started = performance.now();
    const refused = await post();
    const waitedMs = performance.now() - started;
    expect(refused.status).toBe(503);
    expect(refused.headers.get("content-type")).toContain("application/problem+json");
    expect(Number(refused.headers.get("retry-after"))).toBeGreaterThan(0);
    const problem = (await refused.json()) as { type: string; shortCode: string; detail: string };
    expect(problem.type).toMatch(/\/not-replicated$/);
    expect(problem.detail).toContain('"findIfExists": true');
    // It waited for Litestream (up to its 5 s), and the link is saved here: it already redirects on this node.
    expect(waitedMs).toBeGreaterThan(1000);
    const redirect = await fetch(`${server.baseUrl}/${problem.shortCode}`, { redirect: "manual" });
    expect([redirect.status, redirect.headers.get("location")]).toEqual([302, body.longUrl]);

    s3.resume();
    let repeated: Response | null = null;
    const deadline = Date.now() + 60_000;
    for (let attempt = 0; repeated === null && Date.now() < deadline && attempt < 200; attempt++) {
      const response = await post();
      if (response.status === 200) repeated = response;
      else await Bun.sleep(250);
    }
    if (repeated === null) throw new Error("the repeated create was not confirmed within 60 s of S3 coming back");
    expect(((await repeated.json()) as { shortCode: string }).shortCode).toBe(problem.shortCode);

    // Confirmed means in the replica: kill the node outright and restore.
    server.proc?.kill("SIGKILL");
    litestream.proc?.kill("SIGKILL");
    await Promise.all([server.proc?.exited, litestream.proc?.exited]);
    const restored = join(dir, "restored.db");
    await restoreReplica(configPath, databasePath, restored);
    expect(shortCodesIn(restored).has(problem.shortCode)).toBe(true);
  }, 180_000);
});

describe("replicated durability without a control socket", () => {
  /** `shortener serve` on a fresh data dir; it must stop before listening. */
  async function serve(args: string[], files: Record<string, string> = {}) {
    const dir = tempDir("shortener-replicated-setting-");
    try {
      for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text.replaceAll("DIR", dir));
      const settings = ["--data-dir", dir, "--listen", "127.0.0.1:0", "--ops-listen", "127.0.0.1:0"];
      const result = await runCli(["serve", ...settings, ...args.map((a) => a.replaceAll("DIR", dir))], {}, 15_000);
      return { exitCode: result.exitCode, lines: result.stderr.trim().split("\n") };
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }

  test("without --replication litestream, serve exits 1 with one line naming --durability", async () => {
    expect(await serve(["--durability", "replicated"])).toEqual({
      exitCode: 1,
      lines: [expect.stringContaining("invalid setting --durability: replicated needs --replication litestream")],
    });
  });

  test("with a Litestream config that enables no socket, serve exits 1 with one line naming --replication", async () => {
    const config = "dbs:\n  - path: DIR/shortener.db\n";
    const args = ["--durability", "replicated", "--replication", "litestream", "--litestream-config", "DIR/litestream.yml"];
    expect(await serve(args, { "litestream.yml": config })).toEqual({
      exitCode: 1,
      lines: [expect.stringMatching(/^shortener: invalid setting --replication: litestream: .* has no control socket/)],
    });
  });

  test("with no Litestream config at all, serve exits 1 with one line naming SHORTENER_REPLICATION as given", async () => {
    const dir = tempDir("shortener-replicated-setting-");
    try {
      const result = await runCli(
        ["serve", "--data-dir", dir, "--litestream-config", join(dir, "missing.yml"), "--durability", "replicated"],
        { SHORTENER_REPLICATION: "litestream" },
        15_000,
      );
      expect({ exitCode: result.exitCode, lines: result.stderr.trim().split("\n") }).toEqual({
        exitCode: 1,
        lines: [expect.stringMatching(/^shortener: invalid setting SHORTENER_REPLICATION: litestream: cannot read the Litestream config/)],
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
