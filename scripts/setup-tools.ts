/**
 * Installs the pinned external tools the tests need beyond npm into .tools/bin/ (git-ignored), each only when it
 * is missing or reports another version, so a second run only checks. `npm test` runs it as its first step; it
 * needs no TTY, and it stops with a message that says what to do when it cannot install a tool.
 */
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { hasWalResetBug } from "../src/ops/checks/sqlite-version";

export const TOOLS_BIN = resolve(import.meta.dir, "../.tools/bin");

/** One pinned tool: `installed()` is cheap and true only for the pinned version; `install()` throws on failure. */
export interface Tool {
  name: string;
  version: string;
  installed(): Promise<boolean>;
  install(): Promise<void>;
}

interface RunResult {
  exitCode: number;
  output: string;
}

/** Runs a command to completion without a TTY; a missing executable is exit 127, as in a shell. */
async function run(cmd: string[], cwd?: string): Promise<RunResult> {
  try {
    const proc = Bun.spawn(cmd, {
      cwd,
      stdin: "ignore",
      stdout: "pipe",
      stderr: "pipe",
      env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" },
    });
    const [stdout, stderr, exitCode] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
    return { exitCode, output: `${stdout}${stderr}`.trim() };
  } catch (error) {
    return { exitCode: 127, output: `${cmd[0]}: ${(error as Error).message}` };
  }
}

/** True when `bin` exists and `bin --version` prints `expected`. */
async function reportsVersion(bin: string, expected: string): Promise<boolean> {
  if (!existsSync(bin)) return false;
  const { exitCode, output } = await run([bin, "--version"]);
  return exitCode === 0 && output.includes(expected);
}

/** Copies `from` into .tools/bin under `name` atomically (temp file, chmod, rename), so a reader never sees half a binary. */
function placeBinary(from: string, name: string): void {
  mkdirSync(TOOLS_BIN, { recursive: true });
  const partial = join(TOOLS_BIN, `.${name}.partial-${process.pid}`);
  copyFileSync(from, partial);
  chmodSync(partial, 0o755);
  renameSync(partial, join(TOOLS_BIN, name));
}

// promtool (`promtool check rules`, `promtool test rules`) comes from Debian's prometheus package: downloaded and
// unpacked, never installed, so no Prometheus service appears on the machine. Debian keeps only the current
// version of a package in the archive; when it moves on, the download fails and this pin must follow
// (`apt-cache policy prometheus`).
const PROMETHEUS_DEB = "2.42.0+ds-5+deb12u1";
/** apt-get's answers when its package lists are missing or older than the pin. */
const STALE_LISTS = /Unable to locate package|has no installation candidate|Version '[^']*' for '[^']*' was not found|Can't select/;

const promtool: Tool = {
  name: "promtool",
  version: PROMETHEUS_DEB,
  // Debian's build prints "promtool, version 2.42.0+ds (branch: debian/sid, revision: 2.42.0+ds-5+deb12u1)".
  installed: () => reportsVersion(join(TOOLS_BIN, "promtool"), `revision: ${PROMETHEUS_DEB})`),
  async install() {
    // 1. Download prometheus_<version>_<arch>.deb into a temp dir (after `apt-get update` if the lists lack it).
    // 2. Unpack it there with dpkg-deb -x, nothing run, nothing registered with dpkg.
    // 3. Put usr/bin/promtool into .tools/bin and check that it reports the pinned version.
    for (const needed of ["apt-get", "dpkg-deb"]) {
      if (Bun.which(needed) === null) {
        throw new Error(
          `${needed} is not on PATH: promtool comes from Debian's prometheus package, so this step needs a Debian or Ubuntu machine`,
        );
      }
    }
    const work = mkdtempSync(join(tmpdir(), "shortener-promtool-"));
    try {
      // As root, apt hands downloads to its unprivileged _apt user, which cannot write into our 0700 temp dir.
      const sandbox = process.getuid?.() === 0 ? ["-o", "APT::Sandbox::User=root"] : [];
      const download = ["apt-get", ...sandbox, "download", `prometheus=${PROMETHEUS_DEB}`];
      let fetched = await run(download, work);
      if (fetched.exitCode !== 0 && STALE_LISTS.test(fetched.output)) {
        const update = await run(["apt-get", "update"]);
        if (update.exitCode !== 0) {
          throw new Error(
            `apt-get update failed (exit ${update.exitCode}):\n${update.output}\nTry: sudo apt-get update, then run this again`,
          );
        }
        fetched = await run(download, work);
      }
      if (fetched.exitCode !== 0) {
        throw new Error(
          `cannot download Debian's prometheus ${PROMETHEUS_DEB} (exit ${fetched.exitCode}):\n${fetched.output}\n` +
            "Try: apt-cache policy prometheus; if Debian now has another version, pin it in PROMETHEUS_DEB in scripts/setup-tools.ts",
        );
      }
      const deb = readdirSync(work).find((f) => f.startsWith("prometheus_") && f.endsWith(".deb"));
      if (deb === undefined) throw new Error(`apt-get download reported success but left no prometheus_*.deb in ${work}`);
      const unpacked = await run(["dpkg-deb", "-x", join(work, deb), join(work, "root")]);
      if (unpacked.exitCode !== 0) throw new Error(`dpkg-deb -x ${deb} failed (exit ${unpacked.exitCode}):\n${unpacked.output}`);
      const bin = join(work, "root/usr/bin/promtool");
      if (!existsSync(bin)) throw new Error(`${deb} holds no usr/bin/promtool`);
      if (!(await reportsVersion(bin, `revision: ${PROMETHEUS_DEB})`))) {
        const { output } = await run([bin, "--version"]);
        throw new Error(`${deb}'s promtool does not report ${PROMETHEUS_DEB}:\n${output}`);
      }
      placeBinary(bin, "promtool");
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  },
};

// Litestream from a release at or after commit 62297c3: v0.5.16 and earlier bundle SQLite 3.51.2, which has the
// WAL-reset corruption bug; v0.5.18 bundles SQLite 3.53.0. Built with the machine's Go, without cgo.
const LITESTREAM_VERSION = "v0.5.18";

const litestream: Tool = {
  name: "litestream",
  version: LITESTREAM_VERSION,
  async installed() {
    const bin = join(TOOLS_BIN, "litestream");
    if (!existsSync(bin)) return false;
    const { exitCode, output } = await run([bin, "version"]);
    return exitCode === 0 && output.trim() === LITESTREAM_VERSION;
  },
  async install() {
    await goInstall("github.com/benbjohnson/litestream/cmd/litestream", LITESTREAM_VERSION, async (bin) => {
      // The SQLite inside must not be one with the WAL-reset bug (3.7.0 through 3.51.2).
      const embedded = [
        ...new Set(
          Buffer.from(await Bun.file(bin).arrayBuffer())
            .toString("latin1")
            .match(/(?<![0-9.])3\.[0-9]{2}\.[0-9]+(?![0-9.])/g) ?? [],
        ),
      ];
      const affected = embedded.filter((v) => hasWalResetBug(v));
      if (embedded.length === 0 || affected.length > 0) {
        throw new Error(
          `litestream ${LITESTREAM_VERSION} embeds SQLite ${embedded.join(", ") || "(none found)"}; affected by the WAL-reset bug: ${affected.join(", ")}`,
        );
      }
      placeBinary(bin, "litestream");
    });
  },
};

/**
 * `go install module@version` into a temp GOBIN, then `place` with the built binary (named as the module's last
 * path element); the temp dir goes either way.
 */
async function goInstall(module: string, version: string, place: (bin: string) => Promise<void>): Promise<void> {
  const name = module.split("/").at(-1) as string;
  if (Bun.which("go") === null) throw new Error(`go is not on PATH: ${name} is built with \`go install\` (Go >= 1.25)`);
  const work = mkdtempSync(join(tmpdir(), `shortener-${name}-`));
  try {
    const built = Bun.spawn(["go", "install", `${module}@${version}`], {
      env: { ...process.env, GOBIN: work, CGO_ENABLED: "0", GOTOOLCHAIN: "local", GOFLAGS: "-mod=mod" },
      stdin: "ignore",
      stdout: "pipe",
      stderr: "pipe",
    });
    const [out, err, code] = await Promise.all([new Response(built.stdout).text(), new Response(built.stderr).text(), built.exited]);
    if (code !== 0)
      throw new Error(`go install failed (exit ${code}):\n${out}${err}\nTry: go env GOPROXY; the Go module proxy must be reachable`);
    await place(join(work, name));
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

// Caddy, for the failover test that runs deploy/Caddyfile in front of two colours. deploy/Caddyfile needs 2.10 or
// newer (health_passes, health_fails).
const CADDY_VERSION = "v2.11.9";

const caddy: Tool = {
  name: "caddy",
  version: CADDY_VERSION,
  async installed() {
    const bin = join(TOOLS_BIN, "caddy");
    if (!existsSync(bin)) return false;
    // `caddy version` says "unknown" for a `go install` build; its build info names the module's version.
    const { exitCode, output } = await run([bin, "build-info"]);
    return (
      exitCode === 0 &&
      output.split("\n").some((line) => line.split("\t").slice(0, 3).join(" ") === `mod github.com/caddyserver/caddy/v2 ${CADDY_VERSION}`)
    );
  },
  async install() {
    await goInstall("github.com/caddyserver/caddy/v2/cmd/caddy", CADDY_VERSION, async (bin) => placeBinary(bin, "caddy"));
  },
};

// Chromium, for the test that runs Shlink's web UI in a browser against the binary: Debian's package, installed with
// apt-get (it needs ~100 shared libraries, so it cannot be unpacked into .tools like promtool). Debian replaces it with
// every security release and keeps no old versions, so the pin is a floor: the Chrome DevTools Protocol that
// playwright-core speaks is the one of Chromium 140 and later. A launcher in .tools/bin runs it.
const CHROMIUM_MIN_MAJOR = 140;
const DEBIAN_CHROMIUM = "/usr/bin/chromium";

/** Chromium's major version from `chromium --version` ("Chromium 156.0.8078.114 built on Debian ..."), or null. */
async function chromiumMajor(bin: string): Promise<number | null> {
  if (!existsSync(bin)) return null;
  const { exitCode, output } = await run([bin, "--version"]);
  const major = /^Chromium (\d+)\./m.exec(output)?.[1];
  return exitCode === 0 && major !== undefined ? Number(major) : null;
}

const chromium: Tool = {
  name: "chromium",
  version: `Debian's, ${CHROMIUM_MIN_MAJOR} or later`,
  async installed() {
    const major = await chromiumMajor(join(TOOLS_BIN, "chromium"));
    return major !== null && major >= CHROMIUM_MIN_MAJOR;
  },
  async install() {
    const found = await chromiumMajor(DEBIAN_CHROMIUM);
    if (found === null || found < CHROMIUM_MIN_MAJOR) {
      if (Bun.which("apt-get") === null) throw new Error("apt-get is not on PATH: the browser test uses Debian's chromium package");
      if (process.getuid?.() !== 0)
        throw new Error("installing Debian's chromium needs root: run `sudo apt-get install chromium`, then this again");
      const install = ["apt-get", "install", "-y", "--no-install-recommends", "chromium"];
      let installed = await run(install);
      if (installed.exitCode !== 0 && STALE_LISTS.test(installed.output)) {
        const update = await run(["apt-get", "update"]);
        if (update.exitCode !== 0) throw new Error(`apt-get update failed (exit ${update.exitCode}):\n${update.output}`);
        installed = await run(install);
      }
      if (installed.exitCode !== 0) throw new Error(`apt-get install chromium failed (exit ${installed.exitCode}):\n${installed.output}`);
      const major = await chromiumMajor(DEBIAN_CHROMIUM);
      if (major === null || major < CHROMIUM_MIN_MAJOR) {
        throw new Error(`Debian's chromium is ${major ?? "not runnable"}; the browser test needs ${CHROMIUM_MIN_MAJOR} or later`);
      }
    }
    mkdirSync(TOOLS_BIN, { recursive: true });
    const launcher = join(TOOLS_BIN, `.chromium.partial-${process.pid}`);
    await Bun.write(launcher, `#!/bin/sh\nexec "${DEBIAN_CHROMIUM}" "$@"\n`);
    chmodSync(launcher, 0o755);
    renameSync(launcher, join(TOOLS_BIN, "chromium"));
  },
};

// The S3-compatible test server: moto's server (Litestream's own CI tests S3 against it), in a virtualenv under
// .tools, with a small launcher in .tools/bin.
const MOTO_VERSION = "5.2.5";
const MOTO_VENV = resolve(TOOLS_BIN, "../moto-venv");

const motoServer: Tool = {
  name: "moto_server",
  version: MOTO_VERSION,
  async installed() {
    if (!existsSync(join(TOOLS_BIN, "moto_server"))) return false;
    const { exitCode, output } = await run([join(MOTO_VENV, "bin/python"), "-c", "import moto; print(moto.__version__)"]);
    return exitCode === 0 && output.trim() === MOTO_VERSION;
  },
  async install() {
    if (Bun.which("python3") === null) throw new Error("python3 is not on PATH: moto's server is a Python package");
    rmSync(MOTO_VENV, { recursive: true, force: true });
    const venv = await run(["python3", "-m", "venv", MOTO_VENV]);
    if (venv.exitCode !== 0) throw new Error(`python3 -m venv failed:\n${venv.output}\nTry: apt-get install python3-venv`);
    const pip = await run([join(MOTO_VENV, "bin/pip"), "install", "--disable-pip-version-check", "-q", `moto[server]==${MOTO_VERSION}`]);
    if (pip.exitCode !== 0) throw new Error(`pip install moto[server]==${MOTO_VERSION} failed:\n${pip.output}`);
    mkdirSync(TOOLS_BIN, { recursive: true });
    const launcher = join(TOOLS_BIN, `.moto_server.partial-${process.pid}`);
    await Bun.write(launcher, `#!/bin/sh\nexec "${join(MOTO_VENV, "bin/moto_server")}" "$@"\n`);
    chmodSync(launcher, 0o755);
    renameSync(launcher, join(TOOLS_BIN, "moto_server"));
  },
};

/** Every pinned tool, in install order. */
export const TOOLS: readonly Tool[] = [promtool, litestream, motoServer, caddy, chromium];

/** Installs what is missing or at another version, then checks every tool again; throws naming the tool. */
export async function setupTools(log: (line: string) => void = console.log): Promise<void> {
  for (const tool of TOOLS) {
    if (await tool.installed()) {
      log(`${tool.name} ${tool.version}: already in .tools/bin`);
      continue;
    }
    log(`${tool.name} ${tool.version}: installing into .tools/bin`);
    try {
      await tool.install();
    } catch (error) {
      throw new Error(`${tool.name} ${tool.version}: ${(error as Error).message}`);
    }
    if (!(await tool.installed()))
      throw new Error(`${tool.name} ${tool.version}: installed, but .tools/bin/${tool.name} does not report that version`);
    log(`${tool.name} ${tool.version}: installed`);
  }
}

if (import.meta.main) {
  try {
    await setupTools();
  } catch (error) {
    console.error(`setup-tools: ${(error as Error).message}`);
    process.exit(1);
  }
}
