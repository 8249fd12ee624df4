/**
 * `shortener restore` against real Litestream replicating to a real S3-compatible server (moto) on loopback, through
 * the compiled binary. A replica gets a known history (links created, edited and deleted in steps, an instant
 * recorded between steps), and each restore is compared with exactly the links that existed at its instant.
 *
 * Restores land on the boundaries of the files Litestream uploaded: with sync-interval 1s, a restore to T holds every
 * write uploaded before T (at most about a second after it was made) and nothing later. The steps are two seconds
 * apart and each instant is in the middle, after Litestream confirmed the step's upload (`POST /sync` with wait).
 */
import { Database } from "bun:sqlite";
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { lineageOf } from "../src/storage/database-lineage";
import { freePort, type RunResult, requireBinary, runCli, TestServer, tempDir, waitFor } from "./support/binary";
import { cleanEnv, LitestreamProcess, writeLitestreamConfig } from "./support/litestream";
import { syncReplica } from "./support/replica";
import { expectStepPasses, parseRunbook, type Step, unitColour } from "./support/runbook-steps";
import { S3Server } from "./support/s3";

/** Time between the steps of a history: two Litestream syncs, so each step lands in files of its own. */
const STEP_GAP_MS = 2000;
/** How far before T the newest heartbeat of a restore to T may be: a heartbeat a second, uploaded a second later. */
const RESOLUTION_MS = 3000;

type Links = Map<string, string>;

let prefixes = 0;

/** A node with a replica: `shortener serve` on a temp data dir and `litestream replicate` streaming it to S3. */
class ReplicatedNode implements AsyncDisposable {
  readonly configDir = tempDir("shortener-restore-config-");
  readonly server: TestServer;
  readonly databasePath: string;
  readonly configPath: string;
  readonly socketPath: string;
  /** The replica's key prefix in the bucket. */
  readonly prefix = `restore-${++prefixes}`;
  litestream: LitestreamProcess;
  /** The links as the API left them, code → long URL. */
  readonly links: Links = new Map();

  constructor(readonly s3: S3Server) {
    this.server = new TestServer();
    this.databasePath = join(this.server.dataDir, "shortener.db");
    const config = writeLitestreamConfig({ dir: this.configDir, databasePath: this.databasePath, s3, prefix: this.prefix });
    this.configPath = config.configPath;
    this.socketPath = config.socketPath;
    this.litestream = new LitestreamProcess(this.configPath, this.socketPath);
  }

  async startServer(): Promise<void> {
    if (this.server.apiKey === "") await this.server.createKey();
    await this.server.start();
  }

  async startLitestream(): Promise<void> {
    this.litestream = await new LitestreamProcess(this.configPath, this.socketPath).start();
  }

  sync(): Promise<void> {
    return syncReplica(this.socketPath, this.databasePath);
  }

  async create(code: string, url: string): Promise<void> {
    const response = await this.server.api("/rest/v3/short-urls", {
      method: "POST",
      body: JSON.stringify({ longUrl: url, customSlug: code }),
    });
    expect(response.status).toBe(200);
    this.links.set(code, url);
  }

  async edit(code: string, url: string): Promise<void> {
    const response = await this.server.api(`/rest/v3/short-urls/${code}`, { method: "PATCH", body: JSON.stringify({ longUrl: url }) });
    expect(response.status).toBe(200);
    this.links.set(code, url);
  }

  async delete(code: string): Promise<void> {
    expect((await this.server.api(`/rest/v3/short-urls/${code}`, { method: "DELETE" })).status).toBe(204);
    this.links.delete(code);
  }

  /** `shortener restore ARGS` with this node's settings and Litestream config. */
  restore(args: string[], settings: string[] = this.server.settings): Promise<RunResult> {
    return runCli(["restore", ...args, ...settings, "--litestream-config", this.configPath], cleanEnv(), 120_000);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.litestream.stop();
    await this.server[Symbol.asyncDispose]();
    rmSync(this.configDir, { recursive: true, force: true });
  }
}

/** The links in a database file, code → long URL, after checking that SQLite finds the file intact. */
function linksIn(file: string): Links {
  const db = new Database(file, { readonly: true });
  try {
    expect(db.query("PRAGMA integrity_check").get()).toEqual({ integrity_check: "ok" });
    const rows = db.query("SELECT short_code, long_url FROM short_urls").all() as { short_code: string; long_url: string }[];
    return new Map(rows.map((r) => [r.short_code, r.long_url]));
  } finally {
    db.close();
  }
}

/** Every file in `dir` (not below it) with a hash of its content: what "left as it was" is checked against. */
function snapshot(dir: string): Record<string, string> {
  const files = readdirSync(dir, { withFileTypes: true }).filter((e) => e.isFile());
  return Object.fromEntries(
    files.map((e) => [
      e.name,
      createHash("sha256")
        .update(readFileSync(join(dir, e.name)))
        .digest("hex"),
    ]),
  );
}

/** Lets the clock pass `until` (epoch ms): a history's steps happen at chosen times. Nothing is being waited for. */
async function passTime(until: number): Promise<void> {
  const left = until - Date.now();
  if (left > 0) await Bun.sleep(left);
}

/** The names of the processes whose parent is `pid`. */
function childNames(pid: number): string[] {
  const names: string[] = [];
  for (const entry of readdirSync("/proc").filter((e) => /^\d+$/.test(e))) {
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      // "PID (COMM) STATE PPID …": COMM may hold spaces and parentheses, so split after its last ")".
      const close = stat.lastIndexOf(")");
      if (Number(stat.slice(close + 2).split(" ")[1]) === pid) names.push(stat.slice(stat.indexOf("(") + 1, close));
    } catch {
      // The process ended while the list was read.
    }
  }
  return names;
}

const sorted = (links: Links) => [...links.entries()].sort(([a], [b]) => a.localeCompare(b));

describe("shortener restore, on a replica with a known history (server and Litestream running)", () => {
  let s3: S3Server;
  let node: ReplicatedNode;
  let beforeFirstBackup: Date;
  /** The instants between the steps, with the links that existed then. */
  const instants: { name: string; at: Date; links: Links }[] = [];
  const outputs = tempDir("shortener-restore-out-");

  beforeAll(async () => {
    s3 = await S3Server.start();
    node = new ReplicatedNode(s3);
    await node.startServer();
    beforeFirstBackup = new Date();
    await node.startLitestream();
    await node.sync();
    const steps: [string, () => Promise<void>][] = [
      [
        "three links created",
        async () => {
          await node.create("alpha", "https://example.com/a");
          await node.create("bravo", "https://example.com/b");
          await node.create("charlie", "https://example.com/c");
        },
      ],
      [
        "one deleted, one edited, one created",
        async () => {
          await node.delete("alpha");
          await node.edit("bravo", "https://example.com/b-edited");
          await node.create("delta", "https://example.com/d");
        },
      ],
      [
        "a deleted code reused, another edited and one deleted",
        async () => {
          await node.create("alpha", "https://example.com/a-again");
          await node.edit("charlie", "https://example.com/c-edited");
          await node.delete("delta");
        },
      ],
    ];
    for (const [name, step] of steps) {
      await step();
      await node.sync();
      const synced = Date.now();
      instants.push({ name, at: new Date(synced + STEP_GAP_MS / 2), links: new Map(node.links) });
      await passTime(synced + STEP_GAP_MS);
    }
  }, 120_000);

  afterAll(async () => {
    await node?.[Symbol.asyncDispose]();
    await s3?.[Symbol.asyncDispose]();
    rmSync(outputs, { recursive: true, force: true });
  });

  test("restores into --output, while the server runs, exactly the links that existed at each instant", async () => {
    // The running server rewrites its heartbeat every second: the file names must stay, their content may not.
    const live = Object.keys(snapshot(node.server.dataDir)).sort();
    for (const { name, at, links } of instants) {
      const output = join(outputs, `${at.getTime()}.db`);
      const result = await node.restore(["--at", at.toISOString(), "--output", output, "--json"]);
      expect({ name, exitCode: result.exitCode, stderr: result.stderr }).toEqual({ name, exitCode: 0, stderr: "" });
      const report = JSON.parse(result.stdout);
      expect(report).toMatchObject({
        ok: true,
        mode: "output",
        at: at.toISOString(),
        restoredTo: output,
        links: links.size,
        keptAside: [],
      });
      expect({ name, links: sorted(linksIn(output)) }).toEqual({ name, links: sorted(links) });
      const heartbeat = Date.parse(report.newestHeartbeat);
      expect(heartbeat).toBeLessThan(at.getTime());
      expect(heartbeat).toBeGreaterThan(at.getTime() - RESOLUTION_MS);
    }
    expect(Object.keys(snapshot(node.server.dataDir)).sort()).toEqual(live);
  });

  test("--latest restores the newest replicated state", async () => {
    await node.sync();
    const output = join(outputs, "latest.db");
    const result = await node.restore(["--latest", "--output", output]);
    expect(result.exitCode).toBe(0);
    expect(result.stdout).toContain(`restored ${output} to its newest replicated state`);
    expect(sorted(linksIn(output))).toEqual(sorted(node.links));
    // A restored file that may be served gives out the live one's later ids again: it gets a lineage of its own, by
    // which `import db` keeps the two histories' visits apart.
    const lineage = (file: string) => {
      const db = new Database(file, { readonly: true });
      try {
        return lineageOf(db);
      } finally {
        db.close();
      }
    };
    expect(lineage(output)).toMatch(/^[0-9a-f]{32}$/);
    expect(lineage(output)).not.toBe(lineage(node.databasePath));
  });

  test("refuses to restore in place while the server runs on the data dir, and changes nothing", async () => {
    const before = snapshot(node.server.dataDir);
    const result = await node.restore(["--at", (instants[0] as { at: Date }).at.toISOString()]);
    expect(result.exitCode).toBe(1);
    expect(result.stderr).toContain(`a shortener server (pid ${node.server.proc?.pid}) is running on ${node.server.dataDir}`);
    expect(result.stderr).toContain("Try: `shortener drain`");
    expect(result.stderr).toContain("--output PATH");
    expect(Object.keys(snapshot(node.server.dataDir)).sort()).toEqual(Object.keys(before).sort());
    const listed = await (await node.server.api("/rest/v3/short-urls?itemsPerPage=-1")).json();
    expect(listed.shortUrls.data.map((l: { shortCode: string }) => l.shortCode).sort()).toEqual([...node.links.keys()].sort());
  });

  test("refuses to restore in place while processes hold the database open, even when no server answers on --ops-listen", async () => {
    const settings = [...node.server.settings.filter((s, i, all) => s !== "--ops-listen" && all[i - 1] !== "--ops-listen")];
    const result = await node.restore(["--latest"], [...settings, "--ops-listen", `127.0.0.1:${freePort()}`]);
    expect(result.exitCode).toBe(1);
    expect(result.stderr).toContain(`${node.databasePath} is open in `);
    expect(result.stderr).toContain(`pid ${node.server.proc?.pid} (shortener)`);
    expect(result.stderr).toContain(`pid ${node.litestream.proc?.pid} (litestream)`);
    expect(result.stderr).toContain("systemctl stop litestream");
  });

  test("--dry-run restores into a temp file, reports, and leaves every file as it was", async () => {
    const before = snapshot(node.server.dataDir);
    const { at, links } = instants[1] as { at: Date; links: Links };
    const result = await node.restore(["--at", at.toISOString(), "--dry-run", "--json"]);
    expect(result.exitCode).toBe(0);
    expect(JSON.parse(result.stdout)).toMatchObject({ ok: true, mode: "dry-run", restoredTo: null, keptAside: [], links: links.size });
    const output = join(outputs, "dry-run.db");
    const human = await node.restore(["--at", at.toISOString(), "--dry-run", "--output", output]);
    expect(human.exitCode).toBe(0);
    expect(human.stdout).toContain(
      `dry run: the replica of ${node.databasePath} restores to its state at ${at.toISOString()}; nothing was changed`,
    );
    expect(human.stdout).toContain(`integrity_check ok; ${links.size} links`);
    expect(existsSync(output)).toBe(false);
    expect(readdirSync(outputs).filter((f) => f.startsWith("dry-run"))).toEqual([]);
    expect(Object.keys(snapshot(node.server.dataDir)).sort()).toEqual(Object.keys(before).sort());
  });

  test("a time before the first backup fails, naming when the first backup is from, and creates no file", async () => {
    const output = join(outputs, "too-early.db");
    const result = await node.restore(["--at", beforeFirstBackup.toISOString(), "--output", output]);
    expect(result.exitCode).toBe(1);
    expect(result.stderr).toContain(`${beforeFirstBackup.toISOString()} is before the first backup in the replica of ${node.databasePath}`);
    expect(result.stderr).toMatch(
      /which is from \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.000Z \(to the second\)\. Try: --at a later time, or --latest/,
    );
    expect(readdirSync(outputs).filter((f) => f.startsWith("too-early"))).toEqual([]);
  });

  test.each([
    ["a time in the future", () => new Date(Date.now() + 60_000).toISOString(), "is in the future"],
    ["a time without a UTC offset", () => "2026-11-22T10:15:00", "not an RFC 3339 time with a UTC offset"],
    ["a day that does not exist", () => "2026-02-30T10:15:00Z", "names a day that does not exist"],
    ["a word", () => "yesterday", "not an RFC 3339 time"],
  ])("%s is a usage error (exit 2) that changes nothing", async (_, at, message) => {
    const result = await node.restore(["--at", at()]);
    expect(result.exitCode).toBe(2);
    expect(result.stderr).toContain(message);
    expect(result.stderr).toContain("usage: shortener restore --at TIME | --latest");
  });

  test.each([
    ["neither --at nor --latest", [], "restore needs --at TIME"],
    ["both --at and --latest", ["--at", "2026-01-01T00:00:00Z", "--latest"], "not both"],
    ["--force without --output", ["--latest", "--force"], "--force goes with --output"],
    ["--output naming the live database", ["--latest", "--output", "LIVE"], "is the live database"],
  ])("%s is a usage error (exit 2)", async (_, args, message) => {
    const result = await node.restore(args.map((a) => (a === "LIVE" ? node.databasePath : a)));
    expect(result.exitCode).toBe(2);
    expect(result.stderr).toContain(message);
  });

  test("a Litestream config that does not list the database fails, naming both", async () => {
    const dataDir = tempDir();
    try {
      const result = await node.restore(["--latest"], ["--data-dir", dataDir]);
      expect(result.exitCode).toBe(1);
      expect(result.stderr).toContain(
        `the Litestream config ${node.configPath} does not list the database ${join(dataDir, "shortener.db")}`,
      );
      expect(result.stderr).toContain(`(it lists ${node.databasePath})`);
      expect(readdirSync(dataDir)).toEqual([]);
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });

  test("restores in place onto a new node that has no database yet, with nothing to keep aside", async () => {
    await node.sync();
    const dir = tempDir("shortener-restore-new-node-");
    try {
      const dataDir = join(dir, "data");
      // The new node's config names its own database and the same replica.
      const config = writeLitestreamConfig({ dir, databasePath: join(dataDir, "shortener.db"), s3, prefix: node.prefix });
      const result = await runCli(
        ["restore", "--latest", "--data-dir", dataDir, "--ops-listen", `127.0.0.1:${freePort()}`, "--litestream-config", config.configPath],
        cleanEnv(),
      );
      expect(result.stderr).toBe("");
      expect(result.exitCode).toBe(0);
      expect(result.stdout).toContain("there was no database to keep aside");
      expect(readdirSync(dataDir)).toEqual(["shortener.db"]);
      expect(sorted(linksIn(join(dataDir, "shortener.db")))).toEqual(sorted(node.links));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("an existing --output is replaced only with --force, and a stale -wal beside it is never replayed onto it", async () => {
    const [first, , last] = instants as { at: Date; links: Links }[] as [{ at: Date; links: Links }, unknown, { at: Date; links: Links }];
    const dir = join(outputs, "forced");
    mkdirSync(dir);
    const output = join(dir, "copy.db");
    expect((await node.restore(["--at", first.at.toISOString(), "--output", output])).exitCode).toBe(0);
    // A -wal with committed frames that belong to this file: what a crashed process leaves behind.
    const writer = new Database(output, { readwrite: true });
    writer.run("UPDATE short_urls SET long_url = 'https://example.com/stale'");
    const staleWal = readFileSync(`${output}-wal`);
    expect(staleWal.length).toBeGreaterThan(0);

    const refused = await node.restore(["--at", last.at.toISOString(), "--output", output]);
    expect(refused.exitCode).toBe(1);
    expect(refused.stderr).toContain(`${output}, ${output}-wal, ${output}-shm exists already. Try: another --output, or --force`);
    const open = await node.restore(["--at", last.at.toISOString(), "--output", output, "--force"]);
    expect(open.exitCode).toBe(1);
    expect(open.stderr).toContain(`${output} is open in pid ${process.pid}`);
    writer.close();
    expect(sorted(linksIn(output))).toEqual(sorted(first.links).map(([code]) => [code, "https://example.com/stale"]));

    writeFileSync(`${output}-wal`, staleWal);
    const forced = await node.restore(["--at", last.at.toISOString(), "--output", output, "--force"]);
    expect(forced.exitCode).toBe(0);
    expect(readdirSync(dir)).toEqual(["copy.db"]);
    expect(sorted(linksIn(output))).toEqual(sorted(last.links));
  });
  test("an interrupted restore (SIGINT while Litestream waits on S3) exits 1 and leaves no file behind", async () => {
    const before = Object.keys(snapshot(node.server.dataDir)).sort();
    const output = join(outputs, "interrupted.db");
    s3.pause();
    try {
      const proc = Bun.spawn(
        [requireBinary(), "restore", "--latest", "--output", output, ...node.server.settings, "--litestream-config", node.configPath],
        { env: cleanEnv(), stdout: "pipe", stderr: "pipe", stdin: "ignore" },
      );
      // Once the restore has started Litestream (which now waits on S3), interrupt it, as Ctrl-C would.
      await waitFor("litestream restore to start", () => proc.exitCode === null && childNames(proc.pid).includes("litestream"));
      proc.kill("SIGINT");
      const [stderr, exitCode] = await Promise.all([new Response(proc.stderr).text(), proc.exited]);
      expect(exitCode).toBe(1);
      expect(stderr).toContain("interrupted while Litestream was restoring; nothing was changed");
    } finally {
      s3.resume();
    }
    expect(readdirSync(outputs).filter((f) => f.startsWith("interrupted"))).toEqual([]);
    expect(Object.keys(snapshot(node.server.dataDir)).sort()).toEqual(before);
  });
});

describe("shortener restore in place (server and Litestream stopped)", () => {
  let s3: S3Server;
  let node: ReplicatedNode;
  let instant: Date;
  let atInstant: Links;

  beforeAll(async () => {
    s3 = await S3Server.start();
    node = new ReplicatedNode(s3);
    await node.startServer();
    await node.startLitestream();
    await node.create("kilo", "https://example.com/k");
    await node.create("lima", "https://example.com/l");
    await node.sync();
    const synced = Date.now();
    instant = new Date(synced + STEP_GAP_MS / 2);
    atInstant = new Map(node.links);
    await passTime(synced + STEP_GAP_MS);
    await node.delete("kilo");
    await node.edit("lima", "https://example.com/l-edited");
    await node.create("mike", "https://example.com/m");
    await node.sync();
    // The order of a real stop: the server first, then Litestream, whose last sync uploads the server's last writes.
    expect(await node.server.stop()).toBe(0);
    expect(await node.litestream.stop()).toBe(0);
  }, 120_000);

  afterAll(async () => {
    await node?.[Symbol.asyncDispose]();
    await s3?.[Symbol.asyncDispose]();
  });

  test("swaps in the state at --at, keeps the old database with its WAL aside, replication goes on from it, and the printed instant undoes it", async () => {
    const dir = node.server.dataDir;
    const before = snapshot(dir);
    const replaced = new Map(node.links);
    // Litestream keeps the WAL when it stops: committed transactions that are not in the main file yet.
    expect(statSync(`${node.databasePath}-wal`).size).toBeGreaterThan(0);

    const result = await node.restore(["--at", instant.toISOString()]);
    expect(result.stderr).toBe("");
    expect(result.exitCode).toBe(0);
    expect(result.stdout).toContain(`restored ${node.databasePath} to its state at ${instant.toISOString()}`);
    const aside = /the previous database is kept aside as (\S+) \(with its -wal/.exec(result.stdout)?.[1] as string;
    expect(aside).toMatch(/\/shortener\.db\.before-restore-\d{8}T\d{6}Z$/);
    expect(result.stdout).toContain("next: start Litestream, then the server");
    const undoAt = /to undo: stop them again, then shortener restore --at (\S+)/.exec(result.stdout)?.[1] as string;
    expect(Date.parse(undoAt)).toBeGreaterThan(instant.getTime());

    const after = snapshot(dir);
    const name = aside.slice(dir.length + 1);
    expect(
      Object.keys(after)
        .filter((f) => !f.startsWith(name))
        .sort(),
    ).toEqual(["shortener.db"]);
    expect(after[name]).toBe(before["shortener.db"] as string);
    expect(after[`${name}-wal`]).toBe(before["shortener.db-wal"] as string);
    expect(sorted(linksIn(node.databasePath))).toEqual(sorted(atInstant));
    // Opened with its own WAL, the kept-aside database is the state the restore replaced.
    expect(sorted(linksIn(aside))).toEqual(sorted(replaced));

    // The runbook's next steps: Litestream first, then the server, which serves the restored links.
    await node.startLitestream();
    await node.server.start();
    const listed = await (await node.server.api("/rest/v3/short-urls?itemsPerPage=-1")).json();
    expect(listed.shortUrls.data.map((l: { shortCode: string; longUrl: string }) => [l.shortCode, l.longUrl]).sort()).toEqual(
      sorted(atInstant),
    );
    node.links.clear();
    for (const [code, url] of atInstant) node.links.set(code, url);
    await node.create("november", "https://example.com/n");
    await node.sync();
    const output = join(node.configDir, "after-restore.db");
    expect((await node.restore(["--latest", "--output", output])).exitCode).toBe(0);
    expect(sorted(linksIn(output))).toEqual(sorted(node.links));
    // The replica still holds the state the restore replaced: the instant it printed brings it back.
    const undone = join(node.configDir, "undone.db");
    expect((await node.restore(["--at", undoAt, "--output", undone])).exitCode).toBe(0);
    expect(sorted(linksIn(undone))).toEqual(sorted(replaced));
  });
});

/** Flips one bit of the first entry of `index`'s root page, which is a leaf: the index no longer matches its table. */
function damageIndex(path: string, index: string): void {
  const db = new Database(path, { readonly: true });
  const { rootpage } = db.query("SELECT rootpage FROM sqlite_schema WHERE name = ?").get(index) as { rootpage: number };
  const { page_size: pageSize } = db.query("PRAGMA page_size").get() as { page_size: number };
  db.close();
  const file = readFileSync(path);
  const page = file.subarray((rootpage - 1) * pageSize, rootpage * pageSize);
  expect(page[0]).toBe(0x0a);
  // An index leaf cell is a varint payload size, then the payload (the key, stored whole when it is this small).
  let at = page.readUInt16BE(8);
  let size = 0;
  for (let i = 0; i < 9; i++) {
    const byte = page[at++] as number;
    size = size * 128 + (byte & 0x7f);
    if (byte < 0x80) break;
  }
  page[at + size - 1] = (page[at + size - 1] as number) ^ 0x01;
  writeFileSync(path, file);
}

describe("shortener restore from the replica of a damaged database", () => {
  test("never swaps in a copy that fails integrity_check: the live database stays as it was and no temp file is left", async () => {
    await using s3 = await S3Server.start();
    await using node = new ReplicatedNode(s3);
    await node.startServer();
    await node.create("oscar", "https://example.com/o");
    await node.create("papa", "https://example.com/p");
    expect(await node.server.stop()).toBe(0);
    // The server was the database's only user: it checkpointed the WAL into the file and removed it.
    expect(existsSync(`${node.databasePath}-wal`)).toBe(false);
    // Damage on disk (a bad sector, the WAL-reset bug): Litestream snapshots the file as it finds it.
    damageIndex(node.databasePath, "short_urls_created_at");
    await node.startLitestream();
    await node.sync();
    expect(await node.litestream.stop()).toBe(0);
    const dir = node.server.dataDir;
    const before = snapshot(dir);

    const result = await node.restore(["--latest"]);
    expect(result.exitCode).toBe(1);
    expect(result.stderr).toContain("the restored copy fails PRAGMA integrity_check (");
    expect(result.stderr).toContain("missing from index short_urls_created_at");
    expect(result.stderr).toContain("Try: --at an earlier time, from before the damage");
    expect(snapshot(dir)).toEqual(before);

    const output = join(node.configDir, "damaged.db");
    expect((await node.restore(["--latest", "--output", output])).exitCode).toBe(1);
    expect(readdirSync(node.configDir).filter((f) => f.startsWith("damaged"))).toEqual([]);
  });
});

/** A runbook's systemctl line, as the unit would do it: blue is the node's server, green does not run here. */
async function runUnitStep(step: Step, node: ReplicatedNode, env: Record<string, string>): Promise<void> {
  const colour = unitColour(step, env);
  const running = node.server.proc !== null && node.server.proc.exitCode === null;
  if (step.litestream) {
    if (step.unit !== "start") expect(await node.litestream.stop()).toBe(step.exit);
    if (step.unit !== "stop") await node.startLitestream();
  } else if (colour === "blue") {
    if (step.unit !== "start" && running) expect(await node.server.stop()).toBe(step.exit);
    if (step.unit !== "stop") await node.server.start();
  } else if (step.unit !== "stop") {
    throw new Error(`${step.where}: shortener@${colour} does not run in this test`);
  }
}

describe("runbooks/restore-point-in-time.md", () => {
  test("every command in it runs, exits and prints as documented, after a link was deleted", async () => {
    await using s3 = await S3Server.start();
    await using node = new ReplicatedNode(s3);
    await node.startServer();
    await node.startLitestream();
    await node.create("spring-sale", "https://example.com/spring");
    await node.create("summer-sale", "https://example.com/summer");
    await node.sync();
    const synced = Date.now();
    const at = new Date(synced + STEP_GAP_MS / 2);
    await passTime(synced + STEP_GAP_MS);
    await node.delete("spring-sale");
    await node.create("autumn-sale", "https://example.com/autumn");
    await node.sync();

    const env = cleanEnv({
      SHORTENER_BIN: requireBinary(),
      SHORTENER_DATA_DIR: node.server.dataDir,
      SHORTENER_LISTEN: `127.0.0.1:${node.server.port}`,
      SHORTENER_OPS_LISTEN: `127.0.0.1:${node.server.opsPort}`,
      SHORTENER_BASE_URL: node.server.baseUrl,
      SHORTENER_LITESTREAM_CONFIG: node.configPath,
      NODE: node.server.baseUrl,
      // What the operator sets in step 1: the moment before the link was deleted, and the link.
      AT: at.toISOString(),
      CODE: "spring-sale",
      // What the operator notes in step 3: the enabled colour, which step 5 starts again.
      COLOUR: "blue",
    });
    const steps = parseRunbook("restore-point-in-time.md");
    for (const step of steps) {
      if (step.kind === "unit") {
        await runUnitStep(step, node, env);
        continue;
      }
      await expectStepPasses(step, env);
    }
    // The runbook ends with the node serving the state at AT, and Litestream replicating it.
    expect(node.server.proc?.exitCode).toBeNull();
    expect(node.litestream.proc?.exitCode).toBeNull();
    const listed = await (await node.server.api("/rest/v3/short-urls?itemsPerPage=-1")).json();
    expect(listed.shortUrls.data.map((l: { shortCode: string }) => l.shortCode).sort()).toEqual(["spring-sale", "summer-sale"]);
  });
});
