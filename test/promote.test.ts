/**
 * Promotion fenced by the replica lease, black-box, with real Litestream and a real S3 server on loopback. Two nodes
 * share one replica whose path has epochs (`…/epoch-${REPLICA_EPOCH}`); each runs its Litestream with its own
 * replica.env, as the units' EnvironmentFile gives it. The first primary takes epoch 1; a standby follows it; the
 * primary dies; the standby is promoted (epoch 2) and replicates to the new prefix; the old primary comes back,
 * finds the lease moved on, refuses writes, and rejoins as a standby of epoch 2.
 */

import { Database } from "bun:sqlite";
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync } from "node:fs";
import { join } from "node:path";
import { type Lease, LeaseStore } from "../src/storage/replica-lease";
import { lastShortUrlId } from "../src/storage/short-url-store";
import { lastVisitId } from "../src/storage/visit-store";
import { BINARY, runCli, TestServer, tempDir, waitFor } from "./support/binary";
import { cleanEnv, followCommand, LitestreamProcess, writeLitestreamConfig } from "./support/litestream";
import { newestHeartbeat } from "./support/replica";
import { expectStepPasses, parseRunbook, RUNBOOKS, type Step, unitColour } from "./support/runbook-steps";
import { S3Server } from "./support/s3";
import { ToolProcess } from "./support/tool-process";

const PREFIX = "promote";
const TERM = "4s";
const REACHES_STANDBY_MS = 15_000;
const RUNBOOK = "promote-standby.md";
const LEASE_RUNBOOK = "lease-not-renewed.md";

interface Node {
  dir: string;
  config: { configPath: string; socketPath: string };
  server: TestServer;
  litestream?: LitestreamProcess;
  follow?: ToolProcess;
}

const dirs: string[] = [];
let s3: S3Server;
let a: Node;
let b: Node;
let apiKey = "";
/** An instant after the old primary's last acknowledged link, before the promotion: only epoch 1 has it. */
let beforeKill = "";

/** The node's epoch from its replica.env, as the units' EnvironmentFile gives it to Litestream. */
function epochEnv(node: Node): Record<string, string> {
  const epoch = /^REPLICA_EPOCH=(\d+)$/m.exec(readFileSync(join(node.dir, "replica.env"), "utf8"))?.[1];
  if (epoch === undefined) throw new Error(`${node.dir}/replica.env names no epoch`);
  return { REPLICA_EPOCH: epoch };
}

function cli(node: Node, ...args: string[]) {
  return runCli([...args, "--data-dir", node.dir, "--litestream-config", node.config.configPath, "--lease-term", TERM], cleanEnv(), 60_000);
}

function primaryServer(node: Node): TestServer {
  const args = ["--replication", "litestream", "--litestream-config", node.config.configPath, "--durability", "replicated"];
  const server = new TestServer({ dataDir: node.dir, args: [...args, "--lease-term", TERM] });
  server.apiKey = apiKey;
  return server;
}

async function create(server: TestServer, slug: string): Promise<Response> {
  return server.api("/rest/v3/short-urls", {
    method: "POST",
    body: JSON.stringify({ longUrl: `https://example.com/${slug}`, customSlug: slug }),
  });
}

async function target(server: TestServer, code: string): Promise<string> {
  const response = await fetch(`${server.baseUrl}/${code}`, { redirect: "manual" });
  return response.status === 302 ? (response.headers.get("location") ?? "") : `HTTP ${response.status}`;
}

async function readiness(server: TestServer): Promise<{ status: number; body: string }> {
  const response = await fetch(`${server.baseUrl}/readyz`);
  return { status: response.status, body: await response.text() };
}

/** The lease object as stored (read with the replica's credentials: the store serves nothing anonymously). */
async function lease(): Promise<Lease | undefined> {
  return (await new LeaseStore(s3.leaseLocation(`${PREFIX}/lease.json`)).read())?.lease;
}

/** The node's lease and epoch series (absent ones left out), as Prometheus would scrape them. */
async function leaseSeries(server: TestServer): Promise<Record<string, number>> {
  const samples = await server.metrics();
  const names = [
    "shortener_replica_epoch",
    "shortener_replica_lease_writable_seconds",
    "shortener_replica_lease_fenced",
    "shortener_replica_standby_promoted",
  ];
  return Object.fromEntries(names.filter((name) => samples.has(name)).map((name) => [name, samples.get(name) as number]));
}

/** The newest heartbeat (epoch ms) in the node's own database. */
const heartbeat = (node: Node) => newestHeartbeat(join(node.dir, "shortener.db"));

async function startFollow(node: Node): Promise<void> {
  node.follow = await new ToolProcess("litestream restore -f").spawn(
    followCommand(node.config.configPath, join(node.dir, "shortener.db")),
    cleanEnv(epochEnv(node)),
  );
}

/** The runbook's steps between each marker and the next: a marker is a line's start, each found after the one before. */
function runbookSections(markers: string[], runbook = RUNBOOK): Step[][] {
  const lines = readFileSync(join(RUNBOOKS, runbook), "utf8").split("\n");
  const at: number[] = [];
  for (const marker of markers) {
    const from = at.at(-1) ?? 0;
    const index = lines.findIndex((line, i) => i > from && line.startsWith(marker));
    if (index < 0) throw new Error(`runbooks/${runbook} has no line starting "${marker}" after line ${from + 1}`);
    at.push(index + 1);
  }
  const lineOf = (step: Step) => Number(step.where.split(":").at(-1));
  const steps = parseRunbook(runbook);
  return at.map((start, i) => steps.filter((step) => lineOf(step) >= start && lineOf(step) < (at[i + 1] ?? Number.POSITIVE_INFINITY)));
}

/** The settings of the runbook's preamble for `node` as `role` (blue's env file, the test's ports and files). */
function runbookEnv(node: Node, role: "primary" | "standby"): Record<string, string> {
  return {
    ...cleanEnv(),
    SHORTENER_BIN: BINARY,
    NODE: node.server.baseUrl,
    SHORTENER_ROLE: role,
    SHORTENER_DATA_DIR: node.dir,
    SHORTENER_LISTEN: `127.0.0.1:${node.server.port}`,
    SHORTENER_OPS_LISTEN: `127.0.0.1:${node.server.opsPort}`,
    SHORTENER_REPLICATION: "litestream",
    SHORTENER_LITESTREAM_CONFIG: node.config.configPath,
    SHORTENER_LEASE_TERM: TERM,
  };
}

/**
 * Runs one runbook step on `node`: shortener and curl lines as written (blue's addresses mapped to the node's), and
 * the systemctl lines imitated on the test's processes, as runbooks/README.md says. The lines for people that a step
 * needs done before it (moving the old database aside, `enable --now litestream-follow`) are imitated with it.
 */
async function runStep(step: Step, node: Node, role: "primary" | "standby"): Promise<void> {
  if (step.kind !== "unit") {
    if (step.subcommand === "lease" && step.command.includes(" follow")) {
      // `mv /var/lib/shortener/shortener.db /var/lib/shortener/shortener.db-* …/before-demotion/`
      mkdirSync(join(node.dir, "before-demotion"));
      for (const name of readdirSync(node.dir).filter((n) => n === "shortener.db" || n.startsWith("shortener.db-"))) {
        renameSync(join(node.dir, name), join(node.dir, "before-demotion", name));
      }
    }
    const server = node.server;
    const map = (text: string) =>
      text
        .replaceAll("127.0.0.1:8081", `127.0.0.1:${server.opsPort}`)
        .replaceAll("127.0.0.1:8080", `127.0.0.1:${server.port}`)
        .replaceAll("/var/lib/shortener/", `${node.dir}/`);
    await expectStepPasses(step, runbookEnv(node, role), map);
    return;
  }
  if (step.litestream) {
    await node.litestream?.[Symbol.asyncDispose]();
    node.litestream = undefined;
    if (step.unit !== "stop")
      node.litestream = await new LitestreamProcess(node.config.configPath, node.config.socketPath, undefined, epochEnv(node)).start();
    return;
  }
  const colour = unitColour(step, {});
  // Only blue runs in this test: the runbook may stop green, which then does nothing, as with systemd.
  if (colour === "green") {
    expect(step.unit).toBe("stop");
    return;
  }
  expect(colour).toBe("blue");
  await node.server.stop();
  if (step.unit === "stop") return;
  if (role === "standby" && node.follow === undefined) await startFollow(node);
  node.server = role === "primary" ? primaryServer(node) : new TestServer({ dataDir: node.dir, args: ["--role", "standby"] });
  node.server.apiKey = apiKey;
  await node.server.start();
}

function newNode(prefix: string): Node {
  const dir = tempDir(prefix);
  dirs.push(dir);
  const config = writeLitestreamConfig({ dir, databasePath: join(dir, "shortener.db"), s3, prefix: `${PREFIX}/epoch-\${REPLICA_EPOCH}` });
  return { dir, config, server: new TestServer({ dataDir: dir }) };
}

beforeAll(async () => {
  s3 = await S3Server.start();
  a = newNode("shortener-promote-a-");
  b = newNode("shortener-promote-b-");
}, 60_000);

afterAll(async () => {
  for (const node of [a, b]) {
    await node?.server[Symbol.asyncDispose]();
    await node?.follow?.[Symbol.asyncDispose]();
    await node?.litestream?.[Symbol.asyncDispose]();
  }
  await s3?.[Symbol.asyncDispose]();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

describe("promote, fenced by the replica lease (real Litestream, real S3 on loopback)", () => {
  test("a primary without the lease refuses writes and is not ready; the first promote takes epoch 1, and then it writes", async () => {
    a.server = primaryServer(a);
    apiKey = await a.server.createKey();
    // No replica.env yet: Litestream is not started (its path would lack the epoch), and the node must not write.
    await a.server.start("live");
    expect((await readiness(a.server)).body).toContain("has not taken the replica lease");
    const refused = await create(a.server, "early");
    expect(refused.status).toBe(503);
    expect(await refused.text()).toContain("not the primary");
    expect(await leaseSeries(a.server)).toEqual({ shortener_replica_lease_writable_seconds: 0, shortener_replica_lease_fenced: 0 });
    await a.server.stop();

    const first = await cli(a, "promote");
    expect(first.stderr).toBe("");
    expect(first.exitCode).toBe(0);
    expect(first.stdout).toContain("took the first replica lease: epoch 1");
    expect(await lease()).toMatchObject({ epoch: 1 });
    expect(readFileSync(join(a.dir, "replica.env"), "utf8")).toMatch(/^REPLICA_EPOCH=1$/m);
    // Again: nothing to do.
    expect((await cli(a, "promote")).stdout).toContain("already holds the replica lease (epoch 1)");

    a.litestream = await new LitestreamProcess(a.config.configPath, a.config.socketPath, undefined, epochEnv(a)).start();
    await a.server.start();
    expect((await create(a.server, "kept")).status).toBe(200);
    expect((await s3.list("replica", `${PREFIX}/epoch-1/`)).length).toBeGreaterThan(0);
    const shown = await cli(a, "lease", "show");
    expect(shown.exitCode).toBe(0);
    expect(shown.stdout).toContain("this node holds it: the primary of epoch 1");
    const held = await leaseSeries(a.server);
    expect(held).toMatchObject({ shortener_replica_epoch: 1, shortener_replica_lease_fenced: 0 });
    // Renewed every second (a quarter of the 4 s term), each renewal good for 2 s.
    expect(held.shortener_replica_lease_writable_seconds).toBeGreaterThan(0.5);
    expect(held.shortener_replica_lease_writable_seconds).toBeLessThanOrEqual(2);
  }, 90_000);

  test("a standby follows the live epoch; promote refuses while its follow runs, and while the primary renews the lease", async () => {
    const followed = await cli(b, "lease", "follow");
    expect(followed.exitCode).toBe(0);
    expect(followed.stdout).toContain("now follows epoch 1");
    await startFollow(b);
    b.server = new TestServer({ dataDir: b.dir, args: ["--role", "standby"] });
    b.server.apiKey = apiKey;
    await b.server.start();
    await waitFor(
      "the primary's link on the standby",
      async () => (await target(b.server, "kept")) === "https://example.com/kept",
      REACHES_STANDBY_MS,
    );

    const following = await cli(b, "promote");
    expect(following.exitCode).toBe(1);
    expect(following.stderr).toContain("Litestream has");
    expect(following.stderr).toContain("systemctl stop litestream-follow");

    await b.follow?.[Symbol.asyncDispose]();
    const alive = await cli(b, "promote");
    expect(alive.exitCode).toBe(1);
    expect(alive.stderr).toContain("the lease is alive");
    expect(await lease()).toMatchObject({ epoch: 1 });
    expect(existsSync(join(b.dir, "replica.env.promoting"))).toBe(false);
    expect(readFileSync(join(b.dir, "replica.env"), "utf8")).toMatch(/^REPLICA_EPOCH=1$/m);
    expect((await create(a.server, "still-a")).status).toBe(200);
    // A standby has an epoch and no lease of its own.
    expect(await leaseSeries(b.server)).toEqual({ shortener_replica_epoch: 1, shortener_replica_standby_promoted: 0 });
  }, 90_000);

  test("runbooks/lease-not-renewed.md on the primary: the store stops answering, writes are refused once half a term passes, the node stays ready, and writes come back with the store", async () => {
    const [during, mend, after] = runbookSections(["## 1.", "## 2.", "## 3."], LEASE_RUNBOOK);
    expect([during, mend, after].map((steps) => steps?.map((step) => step.subcommand ?? step.kind))).toEqual([
      ["curl", "curl", "lease"],
      [],
      ["lease", "curl"],
    ]);
    const writable = async () => (await leaseSeries(a.server)).shortener_replica_lease_writable_seconds ?? -1;
    s3.pause();
    try {
      await waitFor("the primary to stop accepting writes", async () => (await writable()) === 0, 15_000);
      const refused = await create(a.server, "in-outage");
      expect(refused.status).toBe(503);
      expect(refused.headers.get("retry-after")).toBe("5");
      expect(await refused.text()).toContain("cannot confirm it still holds the replica lease");
      for (const step of during ?? []) await runStep(step, a, "primary");
    } finally {
      s3.resume();
    }
    await waitFor("the primary to renew its lease", async () => (await writable()) > 0, 30_000);
    for (const step of after ?? []) await runStep(step, a, "primary");
    expect(await target(a.server, "in-outage")).toBe("HTTP 404");
    // Litestream, which the outage held up too, catches up; then writes are taken (and replicated) again.
    await waitFor("Litestream to catch up", async () => (await a.server.metric("shortener_replication_lag_seconds")) < 3, 30_000);
    expect((await create(a.server, "after-outage")).status).toBe(200);
  }, 120_000);

  test("runbooks/promote-standby.md on the standby: the primary dies; promote waits out its lease, restores its last link, takes epoch 2, and the new primary writes there", async () => {
    // The last link the old primary acknowledged: with replicated durability it is in the replica.
    expect((await create(a.server, "last")).status).toBe(200);
    beforeKill = new Date().toISOString();
    a.server.proc?.kill("SIGKILL");
    a.litestream?.proc?.kill("SIGKILL");
    await a.server.proc?.exited;
    await a.litestream?.proc?.exited;

    const [look, promote, primary] = runbookSections(["## 1.", "## 3.", "## 4.", "## 6."]);
    expect([look, promote].map((steps) => steps?.map((step) => step.subcommand))).toEqual([["lease"], ["promote"]]);
    for (const step of look ?? []) await runStep(step, b, "standby");
    for (const step of promote ?? []) await runStep(step, b, "standby");
    expect(await lease()).toMatchObject({ epoch: 2 });
    expect(existsSync(join(b.dir, "shortener.db-txid"))).toBe(false);
    expect(existsSync(join(b.dir, "replica.env.promoting"))).toBe(false);
    // The standby still running goes on serving the copy it read, and stays ready (writes refused), until the runbook
    // restarts it as the primary: redirects never lack a ready node in between.
    await waitFor("the standby to see the promotion", async () => b.server.stderr.includes('"event":"promoted_serving_old_copy"'));
    expect(await readiness(b.server)).toEqual({ status: 200, body: expect.any(String) });
    expect(await target(b.server, "kept")).toBe("https://example.com/kept");
    const refused = await create(b.server, "before-restart");
    expect(refused.status).toBe(503);
    expect(await refused.text()).toContain("This node is a standby");
    // Should the restart be forgotten, ShortenerPromotedNotRestarted pages from this.
    expect(await leaseSeries(b.server)).toEqual({ shortener_replica_epoch: 2, shortener_replica_standby_promoted: 1 });
    // Should the restart be forgotten, the self-check says what is left to do (not "follow the live epoch").
    const check = await cli(b, "check", "--role", "standby", "--replication", "litestream");
    expect(check.exitCode).toBe(1);
    expect(check.stdout).toMatch(/FAIL +lease +this node took the lease \(epoch 2\) and still runs as a standby/);
    expect(check.stdout).toContain("restart it as the primary, with SHORTENER_ROLE=primary");
    const shown = await cli(b, "lease", "show", "--role", "standby");
    expect(shown.stdout).toContain("this node holds it: the primary of epoch 2; its settings still say standby: restart it as the primary");
    const json = await cli(b, "lease", "show", "--json");
    expect(json.exitCode).toBe(0);
    const held = (await lease())?.holder;
    expect(JSON.parse(json.stdout)).toEqual({
      location: expect.stringContaining(`${PREFIX}/lease.json`),
      lease: { epoch: 2, holder: held, renewedAt: expect.any(String), termSeconds: 4 },
      // The last link and visit ids of the state it restored: the old primary's links and visits above them are only
      // in its file (step 7).
      node: { epoch: 2, holder: held, restoredLinkId: expect.any(Number), restoredVisitId: expect.any(Number) },
      promoting: null,
    });
    for (const step of primary ?? []) await runStep(step, b, "primary");

    for (const code of ["kept", "still-a", "after-outage", "last"])
      expect(await target(b.server, code)).toBe(`https://example.com/${code}`);
    expect(await target(b.server, "in-outage")).toBe("HTTP 404");
    expect((await create(b.server, "on-b")).status).toBe(200);
    await waitFor("the new epoch's replica", async () => (await s3.list("replica", `${PREFIX}/epoch-2/`)).length > 0);

    // A restore to before the promotion: epoch 2 begins after it, and says where to look; --epoch 1 has it.
    const output = join(b.dir, "before-promotion.db");
    const here = await cli(b, "restore", "--at", beforeKill, "--output", output);
    expect(here.exitCode).toBe(1);
    expect(here.stderr).toContain("or --epoch 1 (this is epoch 2, begun at a promotion)");
    const there = await cli(b, "restore", "--at", beforeKill, "--epoch", "1", "--output", output);
    expect(there.stderr).toBe("");
    expect(there.exitCode).toBe(0);
    const restored = new Database(output, { readonly: true });
    try {
      const codes = restored.query("SELECT short_code FROM short_urls ORDER BY short_code").all() as { short_code: string }[];
      expect(codes.map((row) => row.short_code)).toEqual(["after-outage", "kept", "last", "still-a"]);
    } finally {
      restored.close();
    }
    expect((await cli(b, "restore", "--latest", "--epoch", "one", "--output", output)).exitCode).toBe(2);
  }, 120_000);

  test("runbooks/promote-standby.md on the old primary: back, it is fenced (not ready, writes refused), and rejoins as a standby of epoch 2 only without its old database", async () => {
    // Its VM boots: Litestream and blue start as before, on the old epoch.
    a.litestream = await new LitestreamProcess(a.config.configPath, a.config.socketPath, undefined, epochEnv(a)).start();
    a.server = primaryServer(a);
    await a.server.start("live");
    await waitFor("the old primary to find the lease moved on", async () => (await readiness(a.server)).body.includes("moved on"));
    const refused = await create(a.server, "split-brain");
    expect(refused.status).toBe(503);
    expect(await refused.text()).toContain("not the primary");
    expect(a.server.stderr).toContain('"event":"lease_lost"');
    expect(await target(b.server, "split-brain")).toBe("HTTP 404");
    expect(await leaseSeries(a.server)).toEqual({
      shortener_replica_epoch: 1,
      shortener_replica_lease_writable_seconds: 0,
      shortener_replica_lease_fenced: 1,
    });
    expect(await leaseSeries(b.server)).toMatchObject({ shortener_replica_epoch: 2, shortener_replica_lease_fenced: 0 });
    // Nor does it write its heartbeat, which its Litestream would upload into epoch 1: a standby left following that
    // epoch must see its copy age. The new primary's beats meanwhile show the time that passed.
    const lastBeat = heartbeat(a);
    const since = Date.now();
    await waitFor("three of the new primary's heartbeats", async () => heartbeat(b) > since + 2500, 15_000);
    expect(heartbeat(a)).toBe(lastBeat);
    // Nor do the CLI's writes: this node is not the primary, whatever its role says; the new primary's are taken.
    const key = await cli(a, "keys", "create", "--name", "split-brain", "--replication", "litestream");
    expect(key.exitCode).toBe(2);
    expect(key.stderr).toContain("this node does not hold the replica lease (epoch 2 is held by");
    const onB = await cli(b, "keys", "create", "--name", "after-promotion", "--replication", "litestream");
    expect(onB.exitCode).toBe(0);
    b.server.keys.push(onB.stdout.trim());
    // Before the runbook moves its database aside, it may not follow on from it.
    const mixed = await cli(a, "lease", "follow");
    expect(mixed.exitCode).toBe(1);
    expect(mixed.stderr).toContain("the database this node wrote as the primary of epoch 1");

    const [demote, start, check] = runbookSections(["## 6.", "sudo sed -i 's/^SHORTENER_ROLE=primary", "shortener check", "## 7."]);
    expect(demote?.map((step) => step.subcommand ?? step.kind)).toEqual(["curl", "unit", "unit", "unit", "lease"]);
    for (const step of demote ?? []) await runStep(step, a, "primary");
    expect(a.litestream).toBeUndefined();
    for (const step of start ?? []) await runStep(step, a, "standby");
    await waitFor(
      "the new primary's link on the old one",
      async () => (await target(a.server, "on-b")) === "https://example.com/on-b",
      REACHES_STANDBY_MS,
    );
    for (const step of check ?? []) await runStep(step, a, "standby");
    expect(existsSync(join(a.dir, "before-demotion", "shortener.db"))).toBe(true);
    expect(await leaseSeries(a.server)).toEqual({ shortener_replica_epoch: 2, shortener_replica_standby_promoted: 0 });
  }, 120_000);

  test("runbooks/promote-standby.md step 7: a link and a visit only the old primary's set-aside file holds are brought over to the new primary", async () => {
    // The promotion kept the last link and visit ids of the state it restored; everything of epoch 1 was uploaded
    // (this test's primary ran --durability replicated), so those are the old primary's last ids too.
    const replicaEnv = readFileSync(join(b.dir, "replica.env"), "utf8");
    const cut = Number(/^REPLICA_RESTORED_LINK_ID=(\d+)$/m.exec(replicaEnv)?.[1]);
    const visitCut = Number(/^REPLICA_RESTORED_VISIT_ID=(\d+)$/m.exec(replicaEnv)?.[1]);
    const setAside = join(a.dir, "before-demotion", "shortener.db");
    const old = new Database(setAside);
    let older: { id: number; short_code: string };
    try {
      expect(lastShortUrlId(old)).toBe(cut);
      expect(lastVisitId(old)).toBe(visitCut);
      // What a primary cut off from the bucket (not from its clients) leaves: a link it acknowledged, never uploaded,
      // and a visit it recorded to a link the promotion restored.
      old.run("INSERT INTO short_urls (short_code, long_url, created_at) VALUES ('stranded', 'https://example.com/stranded', ?)", [
        Date.now(),
      ]);
      expect(lastShortUrlId(old)).toBe(cut + 1);
      older = old.query("SELECT id, short_code FROM short_urls WHERE id <= ? ORDER BY id LIMIT 1").get(cut) as {
        id: number;
        short_code: string;
      };
      old.run("INSERT INTO visits (short_url_id, at, potential_bot, referer) VALUES (?, ?, 0, 'https://stranded.example/')", [
        older.id,
        Date.now(),
      ]);
    } finally {
      old.close();
    }
    expect(await target(b.server, "stranded")).toBe("HTTP 404");
    const olderVisits = async () =>
      ((await (await b.server.api(`/rest/v3/short-urls/${older.short_code}`)).json()) as { visitsSummary: { total: number } }).visitsSummary
        .total;
    const visitsBefore = await olderVisits();
    // Copied to the new primary's VM (scp, for people), into the same place there.
    mkdirSync(join(b.dir, "before-demotion"));
    for (const name of readdirSync(join(a.dir, "before-demotion"))) {
      copyFileSync(join(a.dir, "before-demotion", name), join(b.dir, "before-demotion", name));
    }
    const [bringOver] = runbookSections(["## 7."]);
    expect(bringOver?.map((step) => step.subcommand ?? step.kind)).toEqual(["import"]);
    for (const step of bringOver ?? []) await runStep(step, b, "primary");
    expect(await target(b.server, "stranded")).toBe("https://example.com/stranded");
    expect(await olderVisits()).toBe(visitsBefore + 1);
    // Only the link and the visit above the cuts were read: a second run finds them here, and nothing else.
    const again = await cli(b, "import", "db", setAside.replace(a.dir, b.dir), "--visits", "--replication", "litestream");
    expect(again.stdout).toContain(`imported 0 (ids above ${visitCut}); 1 already here; 0 to links deleted here`);
    expect(again.stdout).toContain("imported 0 links (0 visits); 1 already here; 0 conflicts; 0 refused");
    expect(await olderVisits()).toBe(visitsBefore + 1);
    await waitFor(
      "the brought-over link on the standby",
      async () => (await target(a.server, "stranded")) === "https://example.com/stranded",
      REACHES_STANDBY_MS,
    );
  }, 120_000);
});
