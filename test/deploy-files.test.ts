/**
 * The deploy files and litestream.yml, checked against the program and against each other: the unit runs what
 * the binary has and never restarts into a bad setting, the env examples hold settings the binary accepts, and
 * Caddy and Litestream point at the ports and database those examples name.
 */
import { describe, expect, test } from "bun:test";
import { chmodSync, cpSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { COMMANDS } from "../src/cli/commands";
import { longestDrainMs } from "../src/commands/drain-sequence";
import { SETTINGS } from "../src/config";
import { parseDuration } from "../src/lib/duration";
import { controlSocketFor } from "../src/storage/litestream-config";
import { replicaEnvPath } from "../src/storage/replica-epoch";
import { runCli, tempDir } from "./support/binary";
import { toolPath } from "./support/tools";

const ROOT = resolve(import.meta.dir, "..");
const UNIT = join(ROOT, "deploy/systemd/shortener@.service");
const LITESTREAM_UNIT = join(ROOT, "deploy/systemd/litestream.service");
const DRILL_SERVICE = join(ROOT, "deploy/systemd/shortener-drill.service");
const DRILL_TIMER = join(ROOT, "deploy/systemd/shortener-drill.timer");
const read = (path: string) => readFileSync(join(ROOT, path), "utf8");
const escapeRegExp = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
/** Bun's default idle timeout: Caddy must drop idle upstream connections before the server does. */
const BUN_IDLE_TIMEOUT_MS = 10_000;

/** `Key=value` directives of a unit or env file, comments and blank lines dropped. */
function directives(text: string): [string, string][] {
  return text
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l !== "" && !l.startsWith("#") && !l.startsWith(";") && !l.startsWith("["))
    .map((l) => {
      const eq = l.indexOf("=");
      return [l.slice(0, eq).trim(), l.slice(eq + 1).trim()];
    });
}

function directive(text: string, key: string): string | undefined {
  return directives(text).find(([k]) => k === key)?.[1];
}

const environmentFiles = (unit: string) => directives(unit).flatMap(([k, v]) => (k === "EnvironmentFile" ? [v] : []));

const envExample = (colour: string) => Object.fromEntries(directives(read(`deploy/systemd/${colour}.env.example`)));

/** Runs `systemd-analyze verify` on a unit in a scratch root; what it printed and its exit code. */
async function verifyUnit(unitPath: string, executables: string[]): Promise<{ exitCode: number; output: string }> {
  // A scratch root: the host's system units (for sysinit.target and friends), the unit, and an executable at
  // each path its Exec lines name, which verify checks exist; it never runs them.
  const root = tempDir("shortener-unit-");
  try {
    cpSync("/usr/lib/systemd/system", join(root, "usr/lib/systemd/system"), { recursive: true });
    mkdirSync(join(root, "etc/systemd/system"), { recursive: true });
    const installed = join(root, "etc/systemd/system", basename(unitPath));
    cpSync(unitPath, installed);
    for (const executable of executables) {
      mkdirSync(join(root, dirname(executable)), { recursive: true });
      writeFileSync(join(root, executable), "#!/bin/sh\n");
      chmodSync(join(root, executable), 0o755);
    }
    const proc = Bun.spawn(["systemd-analyze", "verify", "--man=no", `--root=${root}`, installed], { stdout: "pipe", stderr: "pipe" });
    const [stdout, stderr, exitCode] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
    return { exitCode, output: (stdout + stderr).trim() };
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

describe("deploy/systemd/shortener@.service", () => {
  const unit = readFileSync(UNIT, "utf8");

  test("does not restart after exit status 1, a bad setting, but does after a crash", () => {
    expect(directive(unit, "RestartPreventExitStatus")).toBe("1");
    expect(directive(unit, "Restart")).toBe("on-failure");
  });

  test("has no MemoryDenyWriteExecute, which would disable JavaScriptCore's JIT", () => {
    expect(directives(unit).map(([k]) => k)).not.toContain("MemoryDenyWriteExecute");
  });

  test("runs `shortener serve` with the colour's env file and Litestream's, and stops it with SIGTERM", () => {
    expect(directive(unit, "ExecStart")).toBe("/usr/local/bin/shortener serve");
    expect(COMMANDS.map((c) => c.name)).toContain("serve");
    // Litestream's too (optional): a start with no database asks the replica whether it holds one to restore first.
    const envFiles = environmentFiles(unit);
    expect(envFiles).toEqual(["/etc/shortener/%i.env", "-/etc/litestream.env"]);
    expect(directive(unit, "KillSignal")).toBe("SIGTERM");
  });

  test("waits 10 s or more past the longest clean stop with the default settings before SIGKILL", () => {
    const fallbackMs = (key: string) => parseDuration(SETTINGS.find((s) => s.key === key)?.fallback ?? "") as number;
    const longestMs = longestDrainMs({ drainGraceMs: fallbackMs("drainGraceMs"), shutdownTimeoutMs: fallbackMs("shutdownTimeoutMs") });
    // The grace and the in-flight bound alone would be 35 s: the final flush and the disposal come after them.
    expect(longestMs).toBeGreaterThan(fallbackMs("drainGraceMs") + fallbackMs("shutdownTimeoutMs"));
    const stopMs = parseDuration(directive(unit, "TimeoutStopSec") ?? "");
    expect(stopMs).not.toBeNull();
    expect(stopMs as number).toBeGreaterThanOrEqual(longestMs + 10_000);
  });

  test("can write the data dir the env examples name, and nothing else of the system", () => {
    const dataDir = envExample("blue").SHORTENER_DATA_DIR as string;
    expect(envExample("green").SHORTENER_DATA_DIR).toBe(dataDir);
    expect(directive(unit, "ProtectSystem")).toBe("strict");
    expect(directive(unit, "StateDirectory")).toBe(basename(dataDir));
    expect(dirname(dataDir)).toBe("/var/lib");
    expect(directive(unit, "ReadWritePaths")?.split(/\s+/)).toContain(dataDir);
  });

  test("lets journald keep every line: one per request would pass its default rate limit at ~330 requests a second", () => {
    expect(directive(unit, "LogRateLimitIntervalSec")).toBe("0");
  });

  test("systemd-analyze verify accepts the unit without a warning", async () => {
    expect(await verifyUnit(UNIT, ["/usr/local/bin/shortener"])).toEqual({ exitCode: 0, output: "" });
  });

  test("starts Litestream with either colour and stops before it, without being stopped by it", () => {
    const all = (key: string) => directives(unit).flatMap(([k, v]) => (k === key ? v.split(/\s+/) : []));
    expect(all("Wants")).toContain("litestream.service");
    expect(all("After")).toContain("litestream.service");
    expect([...all("Requires"), ...all("BindsTo"), ...all("PartOf")]).not.toContain("litestream.service");
  });
});

describe("deploy/systemd env examples", () => {
  test("set only settings that exist", () => {
    const known = new Set<string>(SETTINGS.map((s) => s.env));
    for (const colour of ["blue", "green"]) {
      expect(Object.keys(envExample(colour)).filter((k) => !known.has(k))).toEqual([]);
    }
  });

  test("give blue 8080/8081 and green 8090/8091, all on loopback", () => {
    expect([envExample("blue").SHORTENER_LISTEN, envExample("blue").SHORTENER_OPS_LISTEN]).toEqual(["127.0.0.1:8080", "127.0.0.1:8081"]);
    expect([envExample("green").SHORTENER_LISTEN, envExample("green").SHORTENER_OPS_LISTEN]).toEqual(["127.0.0.1:8090", "127.0.0.1:8091"]);
  });

  test.each(["blue", "green"])("the %s env example's install steps work on a VM with no /etc/shortener yet", (colour) => {
    const example = `${colour}.env.example`;
    const steps = read(`deploy/systemd/${example}`)
      .split("\n")
      .flatMap((l) => /^#\s+(install\s.*)$/.exec(l)?.[1] ?? []);
    expect(steps.at(-1)).toEndWith(`${example} /etc/shortener/${colour}.env`);
    // The steps as written, into a scratch root, as this user: owner and group need root and the shortener group.
    const root = tempDir("shortener-etc-");
    try {
      for (const step of steps) {
        const local = step.replace(/ -o root -g shortener/, "").replaceAll(" /etc/", ` ${root}/etc/`);
        const result = Bun.spawnSync(["bash", "-c", local], { cwd: join(ROOT, "deploy/systemd"), stdout: "pipe", stderr: "pipe" });
        expect({ step, exitCode: result.exitCode, stderr: result.stderr.toString() }).toEqual({ step, exitCode: 0, stderr: "" });
      }
      expect(statSync(join(root, "etc/shortener")).mode & 0o777).toBe(0o750);
      expect(statSync(join(root, `etc/shortener/${colour}.env`)).mode & 0o777).toBe(0o640);
      expect(readFileSync(join(root, `etc/shortener/${colour}.env`), "utf8")).toBe(read(`deploy/systemd/${example}`));
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  test.each(["blue", "green"])("the %s env example has values the binary accepts", async (colour) => {
    const dataDir = tempDir();
    try {
      // Only the data dir moves to a temp dir; every other value is the example's. The database is made first, as on
      // a node that has run: into an empty data dir with replication on, a command first asks the replica whether it
      // holds the database (test/replica-first-start.test.ts), and there is no replica here.
      const made = await runCli(["keys", "list"], { ...envExample(colour), SHORTENER_DATA_DIR: dataDir, SHORTENER_REPLICATION: "off" });
      expect(made.exitCode).toBe(0);
      const result = await runCli(["keys", "list"], { ...envExample(colour), SHORTENER_DATA_DIR: dataDir });
      expect({ exitCode: result.exitCode, stderr: result.stderr }).toEqual({ exitCode: 0, stderr: "" });
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});

describe("deploy/Caddyfile", () => {
  const caddyfile = read("deploy/Caddyfile")
    .split("\n")
    .filter((l) => !l.trim().startsWith("#"))
    .join("\n");

  test("keeps idle upstream connections for less than Bun's 10 s idle timeout", () => {
    const keepalive = /^\s*keepalive\s+(\S+)\s*$/m.exec(caddyfile)?.[1];
    expect(keepalive).toBeDefined();
    const ms = parseDuration(keepalive as string);
    expect(ms).not.toBeNull();
    expect(ms as number).toBeLessThan(BUN_IDLE_TIMEOUT_MS);
    expect(caddyfile).toMatch(/transport\s+http\s*\{[^}]*keepalive/);
  });

  test("health-checks /readyz and sends everything to the first healthy colour", () => {
    expect(caddyfile).toMatch(/^\s*health_uri\s+\/readyz\s*$/m);
    expect(caddyfile).toMatch(/^\s*lb_policy\s+first\s*$/m);
    for (const option of ["health_interval", "health_passes", "health_fails", "fail_duration", "max_fails"]) {
      expect(caddyfile).toMatch(new RegExp(`^\\s*${option}\\s+\\S+`, "m"));
    }
  });

  test("proxies to blue then green, at the addresses their env examples listen on", () => {
    const upstreams = /^\s*reverse_proxy\s+([^{]+)\{/m.exec(caddyfile)?.[1]?.trim().split(/\s+/);
    expect(upstreams).toEqual([envExample("blue").SHORTENER_LISTEN as string, envExample("green").SHORTENER_LISTEN as string]);
  });
});

/** `litestream databases` on a config text (litestream.yml, or a changed copy), with the sample's variables. */
async function litestreamReads(configText: string): Promise<{ exitCode: number; stdout: string; stderr: string }> {
  const dir = tempDir("shortener-litestream-yml-");
  try {
    const configPath = join(dir, "litestream.yml");
    writeFileSync(configPath, configText);
    const sample = Object.fromEntries(directives(read("deploy/systemd/litestream.env.sample")));
    const proc = Bun.spawn([toolPath("litestream"), "databases", "-config", configPath], {
      env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/tmp", ...sample },
      stdout: "pipe",
      stderr: "pipe",
    });
    const [stdout, stderr, exitCode] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
    return { exitCode, stdout, stderr };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** litestream.yml with the value of the one option `path` matches (its indent and key as group 1) replaced. */
function withOption(text: string, path: RegExp, value: string): string {
  if (!path.test(text)) throw new Error(`litestream.yml has no ${path}`);
  return text.replace(path, `$1${value}`);
}

describe("litestream.yml", () => {
  const text = read("litestream.yml");
  const config = Bun.YAML.parse(text) as {
    addr: string;
    socket: { enabled: boolean; path: string };
    snapshot: { interval: string; retention: string };
    dbs: { path: string; replica: Record<string, unknown> }[];
  };
  const env = (name: string) => ["$", `{${name}}`].join("");
  const sample = Object.fromEntries(directives(read("deploy/systemd/litestream.env.sample")));

  test("replicates the database the env examples' data dir holds to S3 set by variables, every second", () => {
    expect(config.dbs).toHaveLength(1);
    const db = config.dbs[0] as { path: string; replica: Record<string, unknown> };
    expect(db.path).toBe(join(envExample("blue").SHORTENER_DATA_DIR as string, "shortener.db"));
    // Litestream, not YAML, expands the variables.
    expect(db.replica).toEqual({
      type: "s3",
      endpoint: env("LITESTREAM_S3_ENDPOINT"),
      bucket: env("LITESTREAM_S3_BUCKET"),
      path: env("LITESTREAM_S3_PATH"),
      region: env("LITESTREAM_S3_REGION"),
      "access-key-id": env("LITESTREAM_ACCESS_KEY_ID"),
      "secret-access-key": env("LITESTREAM_SECRET_ACCESS_KEY"),
      "force-path-style": true,
      "sync-interval": "1s",
    });
  });

  test("serves Litestream's metrics on loopback only and enables the control socket in the unit's runtime directory", () => {
    expect(config.addr).toBe("127.0.0.1:9090");
    expect(config.socket).toMatchObject({ enabled: true, path: "/run/litestream/litestream.sock" });
    expect(`/run/${directive(read("deploy/systemd/litestream.service"), "RuntimeDirectory")}`).toBe(dirname(config.socket.path));
  });

  test("names every variable it uses in litestream.env.sample, and the sample nothing else", () => {
    const options = text
      .split("\n")
      .filter((l) => !l.trim().startsWith("#"))
      .join("\n");
    const used = [...options.matchAll(/\$\{([A-Z0-9_]+)\}/g)].map((m) => m[1] as string);
    expect(Object.keys(sample).sort()).toEqual([...new Set(used)].sort());
  });

  test("real Litestream reads it, with the sample's variables, as replicating the env examples' database to S3", async () => {
    const { exitCode, stdout, stderr } = await litestreamReads(text);
    expect({ exitCode, stderr }).toEqual({ exitCode: 0, stderr: "" });
    expect(stdout).toMatch(
      new RegExp(`^${escapeRegExp(join(envExample("blue").SHORTENER_DATA_DIR as string, "shortener.db"))}\\s+s3$`, "m"),
    );
  });

  test("snapshots hourly and keeps 72 h of them, so a restore reaches back 71 h even right after a snapshot", () => {
    // Litestream's defaults (24 h, 24 h) leave nothing before the newest snapshot right after it is taken.
    expect(config.snapshot).toEqual({ interval: "1h", retention: "72h" });
    const interval = parseDuration(config.snapshot.interval) as number;
    const retention = parseDuration(config.snapshot.retention) as number;
    expect(retention - interval).toBe(71 * 3_600_000);
  });

  test("real Litestream takes the snapshot settings from where the file puts them", async () => {
    // A key Litestream does not know is ignored silently; a zero value it reads is refused by name.
    const zeroInterval = withOption(text, /^( {2}interval: ).*$/m, "0s");
    const zeroRetention = withOption(text, /^( {2}retention: ).*$/m, "0s");
    expect((await litestreamReads(zeroInterval)).stderr).toContain("snapshot interval must be greater than 0");
    expect((await litestreamReads(zeroRetention)).stderr).toContain("snapshot retention must be greater than 0");
  });

  test("is where the colours look for it, and gives them the control socket of their database", () => {
    for (const colour of ["blue", "green"]) {
      const settings = envExample(colour);
      expect(settings.SHORTENER_REPLICATION).toBe("litestream");
      expect(settings.SHORTENER_LITESTREAM_CONFIG).toBe(
        directive(read("deploy/systemd/litestream.service"), "ExecStart")?.split(" -config ")[1],
      );
      const database = join(settings.SHORTENER_DATA_DIR as string, "shortener.db");
      expect(controlSocketFor(join(ROOT, "litestream.yml"), database, sample)).toBe(config.socket.path);
    }
  });

  test("explains every option in a comment above it", () => {
    const lines = text.split("\n");
    const bare = lines.flatMap((line, i) => {
      if (!/^\s*(- )?[a-z-]+:/.test(line)) return [];
      const previous = lines
        .slice(0, i)
        .reverse()
        .find((l) => l.trim() !== "");
      return previous?.trim().startsWith("#") ? [] : [line.trim()];
    });
    expect(bare).toEqual([]);
  });
});

describe("deploy/systemd/litestream.service", () => {
  const unit = read("deploy/systemd/litestream.service");

  test("systemd-analyze verify accepts the unit without a warning", async () => {
    expect(await verifyUnit(LITESTREAM_UNIT, ["/usr/local/bin/litestream"])).toEqual({ exitCode: 0, output: "" });
  });

  test("runs `litestream replicate` with /etc/litestream.yml and the sample's env file, as the colours' user", () => {
    expect(directive(unit, "ExecStart")).toBe("/usr/local/bin/litestream replicate -config /etc/litestream.yml");
    expect(environmentFiles(unit)).toEqual(["/etc/litestream.env", `-${replicaEnvPath(envExample("blue").SHORTENER_DATA_DIR as string)}`]);
    const colours = readFileSync(UNIT, "utf8");
    expect([directive(unit, "User"), directive(unit, "Group")]).toEqual([directive(colours, "User"), directive(colours, "Group")]);
  });

  test("gives Litestream's bounded shutdown, final upload included, 10 s or more before SIGKILL", () => {
    const config = Bun.YAML.parse(read("litestream.yml")) as Record<string, string>;
    const bounds = ["shutdown-timeout", "shutdown-sync-timeout"].map((key) => parseDuration(config[key] ?? ""));
    expect(bounds).not.toContain(null);
    const stopMs = parseDuration(directive(unit, "TimeoutStopSec") ?? "");
    expect(stopMs).not.toBeNull();
    expect(stopMs as number).toBeGreaterThanOrEqual(Math.max(...(bounds as number[])) + 10_000);
  });

  test("real Litestream takes its shutdown bounds from where litestream.yml puts them", async () => {
    const text = read("litestream.yml");
    const badTimeout = await litestreamReads(withOption(text, /^(shutdown-timeout: ).*$/m, "0s"));
    const badSyncTimeout = await litestreamReads(withOption(text, /^(shutdown-sync-timeout: ).*$/m, "-1s"));
    expect(badTimeout.stderr).toContain("invalid shutdown-timeout; using default");
    expect(badSyncTimeout.stderr).toContain("shutdown-sync-timeout must be >= 0");
  });

  test("skips itself on a standby VM: where the follow unit is installed, or a copy it follows exists (real systemd)", async () => {
    const database = join(envExample("blue").SHORTENER_DATA_DIR as string, "shortener.db");
    const conditions = directives(unit)
      .filter(([key]) => key === "ConditionPathExists")
      .map(([, value]) => value);
    expect(conditions).toEqual(["!/etc/systemd/system/litestream-follow.service", `!${database}-txid`]);
    // The same conditions, with their paths in a scratch directory, as systemd evaluates them.
    const dir = tempDir("shortener-conditions-");
    try {
      const scratch = conditions.map((c) => `ConditionPathExists=!${join(dir, basename(c.slice(1)))}`);
      const evaluate = async () => {
        const proc = Bun.spawn(["systemd-analyze", "condition", ...scratch], { stdout: "pipe", stderr: "pipe" });
        return proc.exited;
      };
      expect(await evaluate()).toBe(0);
      for (const file of ["litestream-follow.service", "shortener.db-txid"]) {
        writeFileSync(join(dir, file), "");
        expect(await evaluate()).not.toBe(0);
        rmSync(join(dir, file));
      }
      expect(await evaluate()).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("can write the colours' data dir, and restarts whatever made it exit", () => {
    expect(directive(unit, "StateDirectory")).toBe(basename(envExample("blue").SHORTENER_DATA_DIR as string));
    expect(directive(unit, "ProtectSystem")).toBe("strict");
    expect(directive(unit, "Restart")).toBe("always");
  });
});

describe("deploy/systemd/litestream-follow.service", () => {
  const unit = read("deploy/systemd/litestream-follow.service");

  test("systemd-analyze verify accepts the unit without a warning", async () => {
    expect(await verifyUnit(join(ROOT, "deploy/systemd/litestream-follow.service"), ["/usr/local/bin/litestream"])).toEqual({
      exitCode: 0,
      output: "",
    });
  });

  test("follows the replica of litestream.yml into the colours' database path, as their user, and restarts whatever stopped it", () => {
    const database = join(envExample("blue").SHORTENER_DATA_DIR as string, "shortener.db");
    const config = directive(read("deploy/systemd/litestream.service"), "ExecStart")?.split(" -config ")[1];
    expect(directive(unit, "ExecStart")).toBe(`/usr/local/bin/litestream restore -f -follow-interval 1s -config ${config} ${database}`);
    expect(environmentFiles(unit)).toEqual(environmentFiles(read("deploy/systemd/litestream.service")));
    const colours = readFileSync(UNIT, "utf8");
    expect([directive(unit, "User"), directive(unit, "Group")]).toEqual([directive(colours, "User"), directive(colours, "Group")]);
    expect(directive(unit, "StateDirectory")).toBe(basename(envExample("blue").SHORTENER_DATA_DIR as string));
    expect(directive(unit, "Restart")).toBe("always");
  });

  test("real Litestream accepts its restore flags", async () => {
    const args = (directive(unit, "ExecStart") ?? "").split(" ").slice(2, -3);
    const proc = Bun.spawn([toolPath("litestream"), "restore", ...args, "-config", "/nonexistent.yml", "/nonexistent.db"], {
      stdout: "pipe",
      stderr: "pipe",
    });
    const [stderr, exitCode] = await Promise.all([new Response(proc.stderr).text(), proc.exited]);
    expect(exitCode).not.toBe(0);
    // It got past the flags to the config file.
    expect(stderr).not.toContain("flag provided but not defined");
    expect(stderr).toContain("/nonexistent.yml");
  });
});

describe("deploy/systemd/shortener-drill.service and .timer", () => {
  const service = readFileSync(DRILL_SERVICE, "utf8");
  const timer = readFileSync(DRILL_TIMER, "utf8");
  const colours = readFileSync(UNIT, "utf8");

  test("runs `shortener drill --json` once, as the colours' user, with blue's settings and Litestream's variables", () => {
    expect(directive(service, "Type")).toBe("oneshot");
    expect(directive(service, "ExecStart")).toMatch(/^\/usr\/local\/bin\/shortener drill --json( |$)/);
    expect(COMMANDS.map((c) => c.name)).toContain("drill");
    expect([directive(service, "User"), directive(service, "Group")]).toEqual([directive(colours, "User"), directive(colours, "Group")]);
    const envFiles = environmentFiles(service);
    expect(directive(read("deploy/systemd/litestream.service"), "EnvironmentFile")).toBe("/etc/litestream.env");
    expect(envFiles).toEqual(["/etc/shortener/blue.env", "/etc/litestream.env"]);
  });

  test("lets the drill give up on its own and record the failure before systemd stops it", () => {
    // Three Litestream calls (drill-procedure.ts: restore the latest state, list the replica, restore a past point),
    // each bounded by --drill-timeout, pinned on the command line so the env file cannot raise it past the unit's limit.
    const timeout = /\s--drill-timeout\s+(\S+)/.exec(directive(service, "ExecStart") ?? "")?.[1];
    expect(timeout).toBeDefined();
    const drillMs = parseDuration(timeout as string);
    const runMs = parseDuration((directive(service, "TimeoutStartSec") ?? "").replace(/min$/, "m"));
    expect(drillMs).not.toBeNull();
    expect(runMs).not.toBeNull();
    // The integrity checks and the comparisons have no timer of their own: at least 10 minutes for them.
    expect(runMs as number).toBeGreaterThanOrEqual(3 * (drillMs as number) + 10 * 60_000);
  });

  test("has the server unit's hardening, without MemoryDenyWriteExecute", () => {
    const named = new Set(["NoNewPrivileges", "CapabilityBoundingSet", "AmbientCapabilities", "UMask", "ReadWritePaths"]);
    const hardening = (text: string) => directives(text).filter(([k]) => named.has(k) || /^(Protect|Private|Restrict|Lock|Remove)/.test(k));
    expect(hardening(service)).toEqual(hardening(colours));
    expect(directives(service).map(([k]) => k)).not.toContain("MemoryDenyWriteExecute");
  });

  test("the timer starts it daily, catches up after downtime, and a drill ends within ShortenerDrillStale's 26 h", () => {
    expect(directive(timer, "OnCalendar")).toBe("daily");
    expect(directive(timer, "Persistent")).toBe("true");
    expect(directive(timer, "Unit")).toBeUndefined(); // so it starts the service of the same name
    const delayMs = parseDuration(directive(timer, "RandomizedDelaySec") ?? "");
    const runMs = parseDuration((directive(service, "TimeoutStartSec") ?? "").replace(/min$/, "m"));
    expect(delayMs).toBeGreaterThan(0);
    expect(runMs).toBeGreaterThan(0);
    expect(24 * 3_600_000 + (delayMs as number) + (runMs as number)).toBeLessThan(26 * 3_600_000);
    const alerts = read("deploy/prometheus/alerts.yml");
    expect(alerts).toContain('time() - shortener_drill_last_success_timestamp_seconds{job="shortener"} > 26 * 3600');
  });

  test("systemd-analyze verify accepts both without a warning", async () => {
    expect(await verifyUnit(DRILL_SERVICE, ["/usr/local/bin/shortener"])).toEqual({ exitCode: 0, output: "" });
    expect(await verifyUnit(DRILL_TIMER, [])).toEqual({ exitCode: 0, output: "" });
  });
});
