/**
 * A standby VM, black-box, with real Litestream and a real S3 server on loopback. The primary replicates as
 * deploy/systemd/litestream.service does; the standby's Litestream runs deploy/systemd/litestream-follow.service's
 * command as shipped (paths aside), keeping the standby's own copy up to date; `serve --role standby` serves that
 * copy. runbooks/standby-behind.md is run on it while its follow is stalled, and after. Then deploy/Caddyfile.failover,
 * run by real Caddy, in front of both: the primary's VM dies under load.
 */

import { Database } from "bun:sqlite";
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { BINARY, freePort, runCli, TestServer, tempDir, waitFor } from "./support/binary";
import { CaddyProcess, createThrough, idPrefix, loadThrough, testCaddyfile } from "./support/caddy";
import { cleanEnv, followCommand, LitestreamProcess, writeLitestreamConfig } from "./support/litestream";
import { expectStepPasses, parseRunbook, RUNBOOKS, type Step } from "./support/runbook-steps";
import { S3Server } from "./support/s3";
import { threadsOf } from "./support/threads";
import { ToolProcess } from "./support/tool-process";

/** How long a write on the primary may take to reach the standby: Litestream's 1 s upload, its 1 s follow, our look. */
const REACHES_STANDBY_MS = 15_000;
const RUNBOOK = "standby-behind.md";
/** The replica's key prefix in the test bucket: every node's litestream.yml names it. */
const PREFIX = "standby-follow";
/** The standby's --max-replication-lag in the runbook's commands: the stall the runbook's check fails on. */
const STALL_SECONDS = 3;

/** The runbook's steps before its "## 5." heading (during the stall) and after it (once the follow runs again). */
function runbookSteps(): { before: Step[]; after: Step[] } {
  const steps = parseRunbook(RUNBOOK);
  const heading = readFileSync(join(RUNBOOKS, RUNBOOK), "utf8")
    .split("\n")
    .findIndex((l) => l.startsWith("## 5."));
  if (heading < 0) throw new Error(`runbooks/${RUNBOOK} has no "## 5." section to run once the follow runs again`);
  const unit = steps.find((step) => step.kind === "unit");
  if (unit !== undefined) throw new Error(`${unit.where}: this test starts and stops no colour`);
  const lineOf = (step: Step) => Number(step.where.split(":").at(-1));
  return { before: steps.filter((st) => lineOf(st) <= heading), after: steps.filter((st) => lineOf(st) > heading) };
}

/** Where `server` sends a link now: its Location, or the status when it does not redirect. */
async function target(server: TestServer, code: string, host?: string): Promise<string> {
  const response = await fetch(`${server.baseUrl}/${code}`, { redirect: "manual", headers: host === undefined ? {} : { Host: host } });
  return response.status === 302 ? (response.headers.get("location") ?? "") : `HTTP ${response.status}`;
}

/** A link's long URL as the API's listing of every link gives it. */
async function listedTarget(server: TestServer, code: string): Promise<string | undefined> {
  const listed = (await (await server.api("/rest/v3/short-urls?itemsPerPage=-1")).json()) as {
    shortUrls: { data: { shortCode: string; longUrl: string }[] };
  };
  return listed.shortUrls.data.find((link) => link.shortCode === code)?.longUrl;
}

async function create(server: TestServer, body: Record<string, unknown>): Promise<string> {
  const response = await server.api("/rest/v3/short-urls", { method: "POST", body: JSON.stringify(body) });
  expect(response.status).toBe(200);
  return ((await response.json()) as { shortCode: string }).shortCode;
}

const dirs: string[] = [];
let s3: S3Server;
let replication: LitestreamProcess;
let follow: ToolProcess;
let primary: TestServer;
let standby: TestServer;
let copyPath = "";
let standbyConfig = "";
let keptCode = "";

beforeAll(async () => {
  const primaryDir = tempDir("shortener-primary-");
  const standbyDir = tempDir("shortener-standby-");
  dirs.push(primaryDir, standbyDir);
  s3 = await S3Server.start();
  // One litestream.yml per VM, alike but for the database path: each VM's own.
  const prefix = PREFIX;
  const primaryConfig = writeLitestreamConfig({ dir: primaryDir, databasePath: join(primaryDir, "shortener.db"), s3, prefix });
  copyPath = join(standbyDir, "shortener.db");
  standbyConfig = writeLitestreamConfig({ dir: standbyDir, databasePath: copyPath, s3, prefix }).configPath;

  primary = new TestServer({
    dataDir: primaryDir,
    args: ["--replication", "litestream", "--litestream-config", primaryConfig.configPath, "--durability", "replicated"],
  });
  await primary.createKey();
  replication = await new LitestreamProcess(primaryConfig.configPath, primaryConfig.socketPath).start();
  await primary.start();
  keptCode = await create(primary, { longUrl: "https://example.com/kept", customSlug: "kept" });

  // The standby starts before its copy exists, as after a VM's first boot: it waits, then serves it.
  // The standby VM's colours run with the primary's settings but the role (README, "A standby VM"): the same
  // replication setting and Litestream config, whose bucket its visits go to the primary through.
  standby = new TestServer({
    dataDir: standbyDir,
    args: ["--role", "standby", "--replication", "litestream", "--litestream-config", standbyConfig],
  });
  standby.apiKey = primary.apiKey;
  const standbyStarted = standby.start();
  await waitFor("the standby to wait for its copy", () => standby.stdout.includes('"event":"waiting_for_replica"'));
  expect(existsSync(copyPath)).toBe(false);
  follow = await new ToolProcess("litestream restore -f").spawn(followCommand(standbyConfig, copyPath), cleanEnv());
  await standbyStarted;
}, 90_000);

afterAll(async () => {
  await standby?.[Symbol.asyncDispose]();
  await follow?.[Symbol.asyncDispose]();
  await primary?.[Symbol.asyncDispose]();
  await replication?.[Symbol.asyncDispose]();
  await s3?.[Symbol.asyncDispose]();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

describe("a standby following the replica (real Litestream, real S3 on loopback)", () => {
  test("serves the primary's links, and their edits and deletions, within seconds of the write, though it cached them", async () => {
    expect(await target(standby, keptCode)).toBe("https://example.com/kept");
    const ready = (await (await fetch(`${standby.baseUrl}/readyz`)).json()) as { status: string; role: string };
    expect(ready).toMatchObject({ status: "ready", role: "standby" });

    const code = await create(primary, { longUrl: "https://example.com/before" });
    await waitFor(
      "the new link on the standby",
      async () => (await target(standby, code)) === "https://example.com/before",
      REACHES_STANDBY_MS,
    );
    // Cached now, and read by the API's listing (its worker thread has a connection of its own): the edit must show in both.
    expect(await target(standby, code)).toBe("https://example.com/before");
    expect(await listedTarget(standby, code)).toBe("https://example.com/before");
    const started = performance.now();
    const edited = await primary.api(`/rest/v3/short-urls/${code}`, {
      method: "PATCH",
      body: JSON.stringify({ longUrl: "https://example.com/after" }),
    });
    expect(edited.status).toBe(200);
    await waitFor("the edit on the standby", async () => (await target(standby, code)) === "https://example.com/after", REACHES_STANDBY_MS);
    const editMs = performance.now() - started;
    expect(await listedTarget(standby, code)).toBe("https://example.com/after");
    expect((await primary.api(`/rest/v3/short-urls/${code}`, { method: "DELETE" })).status).toBe(204);
    await waitFor("the deletion on the standby", async () => (await target(standby, code)) === "HTTP 404", REACHES_STANDBY_MS);

    // A link on a domain the standby had none on is routed by its Host.
    const onDomain = await create(primary, { longUrl: "https://example.com/on-a-domain", domain: "go.example.test" });
    await waitFor(
      "the new domain's link on the standby",
      async () => (await target(standby, onDomain, "go.example.test")) === "https://example.com/on-a-domain",
      REACHES_STANDBY_MS,
    );
    console.log(`standby: an edit on the primary redirected there after ${Math.round(editMs)} ms`);
  }, 60_000);

  test("never writes its copy: Litestream applies every write while it serves under load; its visits reach the primary through the bucket, each once", async () => {
    const code = await create(primary, { longUrl: "https://example.com/followed-on-the-standby" });
    await waitFor("the link on the standby", async () => (await target(standby, code)) !== "HTTP 404", REACHES_STANDBY_MS);
    // Clients follow the link on the standby while the primary keeps writing: each write must still arrive.
    let stop = false;
    let served = 0;
    const failures: string[] = [];
    const clients = Array.from({ length: 4 }, async () => {
      const deadline = Date.now() + 60_000;
      for (let i = 0; !stop && i < 1_000_000 && Date.now() < deadline; i++) {
        const response = await fetch(`${standby.baseUrl}/${code}`, { redirect: "manual" });
        if (response.status === 302) served++;
        else failures.push(`HTTP ${response.status}`);
      }
    });
    const written: string[] = [];
    for (let i = 0; i < 5; i++) {
      const each = await create(primary, { longUrl: `https://example.com/under-load/${i}` });
      written.push(each);
      await waitFor(`write ${i} on the standby under load`, async () => (await target(standby, each)) !== "HTTP 404", REACHES_STANDBY_MS);
    }
    stop = true;
    await Promise.all(clients);
    expect(failures).toEqual([]);
    expect(served).toBeGreaterThan(0);

    // The standby wrote none of them: it shipped them, and the primary wrote each one once.
    expect(await standby.metric("shortener_standby_visits_unrecorded_total")).toBe(0);
    const total = async () =>
      ((await (await primary.api(`/rest/v3/short-urls/${code}`)).json()) as { visitsSummary: { total: number } }).visitsSummary.total;
    // The wait for the link above followed it once too, when the standby first had it.
    const visited = served + 1;
    await waitFor("the standby's visits on the primary", async () => (await total()) >= visited, 30_000);
    await waitFor(
      "the bucket's standby visits taken",
      async () => (await s3.list("replica", `${PREFIX}-standby-visits/`)).length === 0,
      30_000,
    );
    expect(await total()).toBe(visited);
    expect(await standby.metric("shortener_standby_visit_shipments_waiting")).toBe(0);
    // With the orphan visits of the waits for links not there yet, and the earlier tests' visits.
    expect(await primary.metric("shortener_standby_visits_taken_total")).toBeGreaterThanOrEqual(visited);
    expect(primary.stdout + primary.stderr).not.toContain("visit_inbox_thread_failed");
    // Taken on the inbox's thread, started with the first shipment: in SCHED_IDLE beside the visit writer's.
    const idle = (await threadsOf(primary.proc?.pid as number)).filter((thread) => thread.name === "Worker" && thread.policy === 5);
    expect(idle).toHaveLength(2);
    // Read by SQLite in rollback-journal mode, as Litestream's locks need; no WAL beside it.
    const copy = new Database(copyPath, { readonly: true });
    try {
      expect(copy.query("PRAGMA journal_mode").get()).toEqual({ journal_mode: "delete" });
      expect(copy.query("PRAGMA quick_check").get()).toEqual({ quick_check: "ok" });
    } finally {
      copy.close();
    }
    expect(existsSync(`${copyPath}-wal`)).toBe(false);
    console.log(`standby: ${served} redirects served while ${written.length} writes arrived, none failed`);
  }, 90_000);

  test("shortener-drill.service's drill runs on the standby too: it proves the replica restores, records it, and the follow goes on", async () => {
    // The primary's heartbeats reach the copy: the drill measures the replica against them.
    await waitFor(
      "a heartbeat in the copy",
      async () => (await standby.metrics()).has("shortener_standby_copy_age_seconds"),
      REACHES_STANDBY_MS,
    );
    const drill = await runCli(
      ["drill", "--json", "--data-dir", join(copyPath, ".."), "--litestream-config", standbyConfig, "--role", "standby"],
      cleanEnv(),
      120_000,
    );
    expect(drill.exitCode).toBe(0);
    const report = JSON.parse(drill.stdout) as { ok: boolean; steps: { name: string; ok: boolean }[]; live: { links: number } };
    expect(report.ok).toBe(true);
    expect(report.steps.filter((step) => !step.ok)).toEqual([]);
    expect(report.steps.map((step) => step.name)).toContain("rpo");
    // Every node reports its own drill (ShortenerDrillStale expects one on each): the standby's colours read it too.
    expect((await standby.metrics()).get("shortener_drill_last_ok")).toBe(1);
    const after = await create(primary, { longUrl: "https://example.com/after-the-drill" });
    await waitFor("a write after the drill on the standby", async () => (await target(standby, after)) !== "HTTP 404", REACHES_STANDBY_MS);
  }, 120_000);

  test("runbooks/standby-behind.md: a stalled follow fails standby.copy; restarted, it goes on from its -txid and catches up", async () => {
    const { before, after } = runbookSteps();
    const env = {
      PATH: process.env.PATH ?? "",
      HOME: process.env.HOME ?? "/tmp",
      SHORTENER_BIN: BINARY,
      NODE: standby.baseUrl,
      SHORTENER_ROLE: "standby",
      SHORTENER_DATA_DIR: standby.dataDir,
      SHORTENER_LISTEN: `127.0.0.1:${standby.port}`,
      SHORTENER_OPS_LISTEN: `127.0.0.1:${standby.opsPort}`,
      // So that the runbook's check fails after seconds of stall, not the default 30.
      SHORTENER_MAX_REPLICATION_LAG: `${STALL_SECONDS}s`,
    };
    // The runbook's addresses (blue's) stand for the standby's.
    const map = (text: string) =>
      text.replaceAll("127.0.0.1:8081", `127.0.0.1:${standby.opsPort}`).replaceAll("127.0.0.1:8080", `127.0.0.1:${standby.port}`);
    const age = () => standby.metric("shortener_standby_copy_age_seconds");
    expect(await age()).toBeLessThan(STALL_SECONDS);

    // The follow stops advancing without a word, as Litestream's can: stopped, not exited.
    follow.proc?.kill("SIGSTOP");
    let longUrl = "";
    let code = "";
    try {
      longUrl = "https://example.com/during-the-stall";
      code = await create(primary, { longUrl });
      await waitFor(`the copy older than ${STALL_SECONDS} s`, async () => (await age()) > STALL_SECONDS, REACHES_STANDBY_MS);
      expect(await target(standby, code)).toBe("HTTP 404");
      for (const step of before) await expectStepPasses(step, env, map);
    } finally {
      follow.proc?.kill("SIGKILL");
      await follow.proc?.exited;
    }
    // `sudo systemctl restart litestream-follow`: the unit's command again, which goes on from the -txid file.
    follow = await new ToolProcess("litestream restore -f").spawn(followCommand(standbyConfig, copyPath), cleanEnv());
    await waitFor(
      "the link written during the stall on the standby",
      async () => (await target(standby, code)) === longUrl,
      REACHES_STANDBY_MS,
    );
    expect(follow.output).toContain("resuming follow mode");
    await waitFor("the copy a few seconds old again", async () => (await age()) < 5, REACHES_STANDBY_MS);
    expect((await fetch(`${standby.baseUrl}/readyz`)).status).toBe(200);
    for (const step of after) await expectStepPasses(step, env, map);
  }, 90_000);

  test("deploy/Caddyfile.failover (real Caddy): the primary's VM dies under load; no redirect fails, no acknowledged link is lost", async () => {
    const caddyDir = tempDir("shortener-caddy-");
    dirs.push(caddyDir);
    const port = freePort();
    // The primary's and the standby's green colours are not running: Caddy skips them as it would a stopped colour.
    const upstreams = [primary.port, freePort(), standby.port, freePort()].map((p) => `127.0.0.1:${p}`).join(" ");
    await using _caddy = await new CaddyProcess(caddyDir, port).start(failoverCaddyfile(port, upstreams));
    const base = `http://127.0.0.1:${port}`;
    const prefixes = { primary: await idPrefix(primary), standby: await idPrefix(standby) };
    const load = loadThrough(`${base}/${keptCode}`, 4, 90_000);
    const creates = createThrough(base, primary.apiKey, 90_000);
    try {
      await load.served(prefixes.primary, 200);
      await waitFor("links created through Caddy", () => creates.acknowledged.length >= 20);
      // The VM goes: its server and its Litestream, at once.
      primary.proc?.kill("SIGKILL");
      replication.proc?.kill("SIGKILL");
      await Promise.all([primary.proc?.exited, replication.proc?.exited]);
      const gone = performance.now();
      await load.served(prefixes.standby, 200, gone);
      await waitFor("a create refused by the standby", () => creates.failures.some((f) => f.startsWith("HTTP 503")));
    } finally {
      await Promise.all([load.finish(), creates.finish()]);
    }
    expect(load.failures).toEqual([]);
    // Refused, never acknowledged and then lost: the standby's 503, or a 502 from Caddy for a create sent to the
    // primary as it went (in flight, or on a kept-alive connection it had: Caddy does not send a POST twice).
    expect(creates.failures.filter((f) => !f.startsWith("HTTP 503") && !f.startsWith("HTTP 502"))).toEqual([]);
    const refused = await standby.api("/rest/v3/short-urls", {
      method: "POST",
      body: JSON.stringify({ longUrl: "https://example.com/x" }),
    });
    expect([refused.status, refused.headers.get("retry-after")]).toEqual([503, "5"]);
    // --durability replicated: every link the primary acknowledged was in the replica, so it reaches the standby.
    const missing = async () => {
      const listed = (await (await standby.api("/rest/v3/short-urls?itemsPerPage=-1")).json()) as {
        shortUrls: { data: { longUrl: string }[] };
      };
      const stored = new Set(listed.shortUrls.data.map((l) => l.longUrl));
      return creates.acknowledged.filter((u) => !stored.has(u));
    };
    await waitFor("every acknowledged link on the standby", async () => (await missing()).length === 0, REACHES_STANDBY_MS);
    expect(await missing()).toEqual([]);
    const fromStandby = load.answers.filter((a) => a.prefix === prefixes.standby).length;
    // The longest wait between two answers through Caddy: what a client saw of the switch.
    const times = load.answers.map((a) => a.at).sort((a, b) => a - b);
    const longestGapMs = Math.max(...times.slice(1).map((t, i) => t - (times[i] as number)));
    console.log(
      `standby failover through Caddy: ${load.answers.length} redirects (${fromStandby} by the standby), ${load.failures.length} failed; ` +
        `${creates.acknowledged.length} links acknowledged, all on the standby; ${creates.failures.length} creates refused after the primary went; ` +
        `longest gap between answers ${Math.round(longestGapMs)} ms`,
    );
  }, 120_000);

  test("a new primary VM restored from the replica (runbooks/first-start.md) replicates again, and the standby follows it", async () => {
    // The old primary's VM is gone for good (the test before killed it; alone, this one does).
    primary.proc?.kill("SIGKILL");
    replication.proc?.kill("SIGKILL");
    await primary[Symbol.asyncDispose]();
    await replication[Symbol.asyncDispose]();
    const dir = tempDir("shortener-new-primary-");
    dirs.push(dir);
    const dataDir = join(dir, "data");
    const config = writeLitestreamConfig({ dir, databasePath: join(dataDir, "shortener.db"), s3, prefix: PREFIX });
    const settings = ["--data-dir", dataDir, "--litestream-config", config.configPath];
    const restored = await runCli(["restore", "--latest", ...settings, "--ops-listen", `127.0.0.1:${freePort()}`], cleanEnv(), 120_000);
    expect([restored.exitCode, restored.stderr]).toEqual([0, ""]);
    replication = await new LitestreamProcess(config.configPath, config.socketPath).start();
    primary = new TestServer({
      dataDir,
      args: ["--replication", "litestream", "--litestream-config", config.configPath, "--durability", "replicated"],
    });
    primary.apiKey = standby.apiKey;
    await primary.start();
    expect(await target(primary, keptCode)).toBe("https://example.com/kept");
    const code = await create(primary, { longUrl: "https://example.com/from-the-new-primary" });
    await waitFor(
      "the new primary's link on the standby",
      async () => (await target(standby, code)) === "https://example.com/from-the-new-primary",
      REACHES_STANDBY_MS,
    );
    // The new primary's heartbeats reach the copy (the series is absent while the copy holds none).
    const copyAge = async () => (await standby.metrics()).get("shortener_standby_copy_age_seconds") ?? Number.POSITIVE_INFINITY;
    await waitFor("the standby's copy a few seconds old again", async () => (await copyAge()) < 5, REACHES_STANDBY_MS);
  }, 120_000);
});

/** deploy/Caddyfile.failover with its site on http://127.0.0.1:`port`, its four upstreams `upstreams`, and no admin API. */
function failoverCaddyfile(port: number, upstreams: string): string {
  const shipped = "reverse_proxy 10.0.0.1:8080 10.0.0.1:8090 10.0.0.2:8080 10.0.0.2:8090 {";
  return testCaddyfile("deploy/Caddyfile.failover", port, [shipped, `reverse_proxy ${upstreams} {`]);
}
