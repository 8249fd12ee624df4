import { Database } from "bun:sqlite";
import { expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { existsSync, readdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { LATEST_VERSION } from "../src/storage/migrations";
import { BINARY, collectText, runCli, startServer, TestServer, waitFor } from "./support/binary";
import { threadsOf } from "./support/threads";

const sha256 = (path: string) => createHash("sha256").update(readFileSync(path)).digest("hex");

test("a standby serves redirects from its database and refuses writes with 503 and Retry-After", async () => {
  const primary = await startServer();
  const created = await primary.api("/rest/v3/short-urls", {
    method: "POST",
    body: JSON.stringify({ longUrl: "https://example.com/replicated", tags: ["t"] }),
  });
  const { shortCode } = (await created.json()) as { shortCode: string };
  expect(await primary.stop()).toBe(0);

  const standby = new TestServer({ dataDir: primary.dataDir, args: ["--role", "standby"] });
  standby.apiKey = primary.apiKey;
  await standby.start();
  try {
    const redirect = await fetch(`${standby.baseUrl}/${shortCode}`, { redirect: "manual" });
    expect(redirect.status).toBe(302);
    expect(redirect.headers.get("location")).toBe("https://example.com/replicated");
    expect((await standby.api(`/rest/v3/short-urls/${shortCode}`)).status).toBe(200);
    const writes = [
      standby.api("/rest/v3/short-urls", { method: "POST", body: JSON.stringify({ longUrl: "https://example.com/refused" }) }),
      standby.api(`/rest/v3/short-urls/${shortCode}`, { method: "PATCH", body: JSON.stringify({ title: "x" }) }),
      standby.api(`/rest/v3/short-urls/${shortCode}`, { method: "DELETE" }),
      standby.api("/rest/v3/tags", { method: "PUT", body: JSON.stringify({ oldName: "t", newName: "u" }) }),
      standby.api(`/rest/v3/short-urls/${shortCode}/redirect-rules`, { method: "POST", body: JSON.stringify({ redirectRules: [] }) }),
      standby.api("/rest/v3/domains/redirects", {
        method: "PATCH",
        body: JSON.stringify({ domain: "go.example.test", baseUrlRedirect: "https://example.com/" }),
      }),
    ];
    for (const response of await Promise.all(writes)) {
      expect(response.status).toBe(503);
      expect(response.headers.get("retry-after")).toBe("5");
      expect(response.headers.get("content-type")).toBe("application/problem+json");
    }
    const ready = (await (await fetch(`${standby.baseUrl}/readyz`)).json()) as { role: string };
    expect(ready.role).toBe("standby");
  } finally {
    await standby.stop();
    rmSync(primary.dataDir, { recursive: true, force: true });
  }
});

test("a standby never writes its database: its visits wait in its spool, and the data dir started as the primary takes them", async () => {
  const primary = await startServer();
  const created = await primary.api("/rest/v3/short-urls", {
    method: "POST",
    body: JSON.stringify({ longUrl: "https://example.com/counted" }),
  });
  const { shortCode } = (await created.json()) as { shortCode: string };
  expect(await primary.stop()).toBe(0);
  const databasePath = join(primary.dataDir, "shortener.db");
  const spool = join(primary.dataDir, "visit-spool");
  const standby = new TestServer({ dataDir: primary.dataDir, args: ["--role", "standby", "--trusted-proxies", "127.0.0.0/8"] });
  standby.apiKey = primary.apiKey;
  let promoted: TestServer | undefined;
  try {
    // The first start switches the copy out of WAL mode (src/storage/replica-copy.ts); that is its only change.
    await standby.start();
    expect(await standby.stop()).toBe(0);
    const before = sha256(databasePath);
    await standby.start();
    // Its spill thread starts with the first visits to spill: none yet.
    const idleWorkers = async () =>
      (await threadsOf(standby.proc?.pid as number)).filter((thread) => thread.name === "Worker" && thread.policy === 5).length;
    expect(await idleWorkers()).toBe(0);
    const headers = { "X-Forwarded-For": "203.0.113.9", "User-Agent": "standby-test" };
    for (let i = 0; i < 20; i++) expect((await fetch(`${standby.baseUrl}/${shortCode}`, { redirect: "manual", headers })).status).toBe(302);
    expect((await fetch(`${standby.baseUrl}/no-such-code`, { headers })).status).toBe(404);
    // Without a bucket (no --replication litestream) the files wait in the data dir; nothing is unrecorded, and
    // nothing waits to be written here (ShortenerVisitBacklog would take that for a slow disk).
    await waitFor(
      "the standby's visits in its spool",
      async () => (await standby.metric("shortener_standby_visit_shipments_waiting")) >= 1,
    );
    expect(await standby.metric("shortener_standby_visits_unrecorded_total")).toBe(0);
    expect(await standby.metric("shortener_visit_buffer_depth")).toBe(0);
    expect(await idleWorkers()).toBe(1);
    // Its copy's webhook outbox is the primary's, which the primary reports (and delivers): one page per dead letter.
    const samples = await standby.metrics();
    expect(["shortener_webhook_outbox_backlog", "shortener_webhook_dead_letters"].filter((name) => samples.has(name))).toEqual([]);
    expect(await standby.stop()).toBe(0);
    expect(sha256(databasePath)).toBe(before);
    expect(standby.stdout).toContain('"event":"visits_spooled"');
    // Spilled on the spill thread (a worker the binary must be built with, scripts/build.ts), not on the event loop.
    expect(standby.stdout + standby.stderr).not.toContain("visit_spill_thread_failed");
    const spooled = readdirSync(spool).map((name) => readFileSync(join(spool, name), "utf8"));
    const visits = spooled.flatMap((text) => (JSON.parse(text) as { visits: { remoteAddr: string | null }[] }).visits);
    expect(visits).toHaveLength(21);
    // Anonymised, as the visits tables keep it: the address itself never leaves the standby's memory.
    expect(spooled.join("")).not.toContain("203.0.113.9");
    expect(new Set(visits.map((visit) => visit.remoteAddr))).toEqual(new Set(["203.0.113.0"]));

    // Files that no bucket took for 15 minutes fail the standby's self-check, naming them.
    const longAgo = (Date.now() - 20 * 60_000) / 1000;
    for (const name of readdirSync(spool)) utimesSync(join(spool, name), longAgo, longAgo);
    const check = await runCli(["check", "--role", "standby", "--data-dir", primary.dataDir, "--ops-listen", "127.0.0.1:1"]);
    expect(check.exitCode).toBe(1);
    expect(check.stdout).toMatch(
      /FAIL +standby\.visits +\d+ file\(s\) of visits wait in .*visit-spool, the oldest for \d+ s: the replica's bucket does not take them/,
    );

    // Promoted in place (runbooks/promote-standby.md restarts it as the primary): it takes its own spool.
    promoted = new TestServer({ dataDir: primary.dataDir, args: ["--trusted-proxies", "127.0.0.0/8"] });
    promoted.apiKey = primary.apiKey;
    await promoted.start();
    const server = promoted;
    const total = async () =>
      ((await (await server.api(`/rest/v3/short-urls/${shortCode}`)).json()) as { visitsSummary: { total: number } }).visitsSummary.total;
    await waitFor("the standby's visits in the primary's database", async () => (await total()) === 20);
    const listed = (await (await server.api(`/rest/v3/short-urls/${shortCode}/visits?itemsPerPage=50`)).json()) as {
      visits: { data: { userAgent: string }[] };
    };
    expect(listed.visits.data.map((visit) => visit.userAgent)).toEqual(Array(20).fill("standby-test"));
    const orphans = (await (await server.api("/rest/v3/visits/orphan")).json()) as { visits: { data: { type: string }[] } };
    expect(orphans.visits.data.map((visit) => visit.type)).toEqual(["invalid_short_url"]);
    expect(await server.metric("shortener_standby_visits_taken_total")).toBe(21);
    expect(readdirSync(spool)).toEqual([]);
    // Taken on the inbox's thread (a worker the binary must be built with), not on the event loop.
    expect(server.stdout + server.stderr).not.toContain("visit_inbox_thread_failed");
    // The primary never counted a visit, yet its start stored the day's salt, which the standby's copy held: the
    // visitor the standby served, back on the promoted node, is still one visitor of the day. (After the listing
    // above, which this visit would join once flushed; the stop flushes it.)
    expect((await fetch(`${server.baseUrl}/${shortCode}`, { redirect: "manual", headers })).status).toBe(302);
    await waitFor("the promoted node's own visit counted", async () => (await total()) === 21);
    expect(await server.stop()).toBe(0);
    const db = new Database(databasePath, { readonly: true });
    try {
      // One row a UTC day (two if the test ran across midnight), each day's visitor once.
      const days = db.query<{ total: number; visitors: number }, []>("SELECT total, visitors FROM visit_days").all();
      expect(days.reduce((sum, day) => sum + day.total, 0)).toBe(21);
      expect(days.map((day) => day.visitors)).toEqual(days.map(() => 1));
    } finally {
      db.close();
    }
  } finally {
    await promoted?.stop();
    await standby.stop();
    rmSync(primary.dataDir, { recursive: true, force: true });
  }
});

test("a standby whose copy is in another schema than its build reads is not ready, and says which", async () => {
  const primary = await startServer();
  expect(await primary.stop()).toBe(0);
  const db = new Database(join(primary.dataDir, "shortener.db"));
  db.exec(`PRAGMA user_version = ${LATEST_VERSION + 1}`);
  db.close();
  const standby = new TestServer({ dataDir: primary.dataDir, args: ["--role", "standby"] });
  try {
    await standby.start("live");
    const response = await fetch(`${standby.baseUrl}/readyz`);
    expect(response.status).toBe(503);
    expect(await response.json()).toMatchObject({
      status: "not ready",
      role: "standby",
      reasons: [
        `the replica's schema is version ${LATEST_VERSION + 1} and this build reads version ${LATEST_VERSION}: this node runs an older build than the primary`,
      ],
    });
    expect(await standby.metric("shortener_ready")).toBe(0);
  } finally {
    await standby.stop();
    rmSync(primary.dataDir, { recursive: true, force: true });
  }
});

test("on a standby, keys create and revoke exit 2 without touching its copy, and keys list reads it", async () => {
  const primary = await startServer();
  expect(await primary.stop()).toBe(0);
  const databasePath = join(primary.dataDir, "shortener.db");
  const before = sha256(databasePath);
  const env = { SHORTENER_ROLE: "standby" };
  try {
    const create = await runCli(["keys", "create", "--name", "other", "--data-dir", primary.dataDir], env);
    expect([create.exitCode, create.stdout, create.stderr.split("\n")[0]]).toEqual([
      2,
      "",
      "shortener keys: a standby takes no writes: run `shortener keys create` on the primary (what it writes reaches this node with the replica)",
    ]);
    const revoke = await runCli(["keys", "revoke", "admin", "--data-dir", primary.dataDir], env);
    expect([revoke.exitCode, revoke.stderr.split("\n")[0]]).toEqual([
      2,
      "shortener keys: a standby takes no writes: run `shortener keys revoke` on the primary (what it writes reaches this node with the replica)",
    ]);
    const list = await runCli(["keys", "list", "--json", "--data-dir", primary.dataDir], env);
    expect(list.exitCode).toBe(0);
    expect((JSON.parse(list.stdout) as { name: string; revokedAt: number | null }[]).map((k) => [k.name, k.revokedAt])).toEqual([
      ["admin", null],
    ]);
    expect(sha256(databasePath)).toBe(before);
  } finally {
    rmSync(primary.dataDir, { recursive: true, force: true });
  }
});

test("a standby started before its copy exists waits, saying so, and a SIGTERM meanwhile ends it with 0", async () => {
  const standby = new TestServer({ args: ["--role", "standby"] });
  const proc = Bun.spawn([BINARY, "serve", ...standby.settings, "--role", "standby"], {
    env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/tmp" },
    stdout: "pipe",
    stderr: "pipe",
  });
  let output = "";
  void collectText(proc.stdout, (text) => {
    output += text;
  });
  try {
    await waitFor("waiting_for_replica", () => output.includes('"event":"waiting_for_replica"'));
    expect(JSON.parse(output.split("\n")[0] ?? "{}")).toMatchObject({
      event: "waiting_for_replica",
      database: join(standby.dataDir, "shortener.db"),
    });
    expect(existsSync(join(standby.dataDir, "shortener.db"))).toBe(false);
    await expect(fetch(`${standby.baseUrl}/healthz`)).rejects.toThrow();
    proc.kill("SIGTERM");
    expect(await proc.exited).toBe(0);
    expect(existsSync(join(standby.dataDir, "shortener.db"))).toBe(false);
  } finally {
    proc.kill("SIGKILL");
    rmSync(standby.dataDir, { recursive: true, force: true });
  }
});

test("a primary refuses a copy that litestream restore -f follows: serve and keys exit 1 naming --role, the copy untouched", async () => {
  const primary = await startServer();
  expect(await primary.stop()).toBe(0);
  const databasePath = join(primary.dataDir, "shortener.db");
  // What Litestream's follow writes beside the copy after each transaction it applies.
  writeFileSync(`${databasePath}-txid`, "0000000000000009\n");
  const before = sha256(databasePath);
  const line = `shortener: invalid setting --role: primary, but ${databasePath} is a copy that \`litestream restore -f\` follows (its -txid file is beside it): on a standby VM set SHORTENER_ROLE=standby`;
  try {
    const serve = await runCli(["serve", ...primary.settings]);
    expect([serve.exitCode, serve.stderr.trim()]).toEqual([1, line]);
    const keys = await runCli(["keys", "create", "--name", "other", "--data-dir", primary.dataDir]);
    expect([keys.exitCode, keys.stderr.trim()]).toEqual([1, line]);
    expect(sha256(databasePath)).toBe(before);
    // As a standby, the same node serves it.
    const standby = new TestServer({ dataDir: primary.dataDir, args: ["--role", "standby"] });
    await standby.start();
    expect(await standby.stop()).toBe(0);
  } finally {
    rmSync(primary.dataDir, { recursive: true, force: true });
  }
});
