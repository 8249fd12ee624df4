/**
 * Signals other than SIGTERM and SIGINT. Left to Bun, SIGHUP, SIGUSR1 and SIGUSR2 ended the server on the spot: in-flight
 * requests cut, the last second of visits unwritten, and under systemd (Restart=on-failure, which counts a SIGHUP
 * death as a clean exit) a node left down by an operator's reflexive `kill -HUP`. A service ignores them, saying so;
 * a server started from a terminal stops on its hangup as on SIGINT, though the terminal can no longer be written to.
 */
import { Database } from "bun:sqlite";
import { expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { collectText, eventLines, requireBinary, TestServer, waitFor } from "./support/binary";

const REDIRECTS = 20;

/** The visits the database holds for a link, read once the server has stopped. */
function visitsOf(server: TestServer, code: string): number {
  const db = new Database(join(server.dataDir, "shortener.db"), { readonly: true });
  try {
    const row = db
      .query("SELECT coalesce(v.total, 0) AS n FROM short_urls s LEFT JOIN link_visits v ON v.short_url_id = s.id WHERE s.short_code = ?")
      .get(code) as { n: number } | null;
    return row?.n ?? -1;
  } finally {
    db.close();
  }
}

async function redirect(server: TestServer, code: string, times: number): Promise<void> {
  for (let i = 0; i < times; i++) expect((await fetch(`${server.baseUrl}/${code}`, { redirect: "manual" })).status).toBe(302);
}

test("SIGHUP, SIGUSR1 and SIGUSR2 to a server with no terminal are logged and ignored: it goes on serving and counting", async () => {
  await using server = await new TestServer().start();
  await server.createKey();
  const created = await server.api("/rest/v3/short-urls", {
    method: "POST",
    body: JSON.stringify({ longUrl: "https://example.com/hup", customSlug: "hup" }),
  });
  expect(created.status).toBe(200);
  await redirect(server, "hup", REDIRECTS);
  const proc = server.proc as Subprocess;
  for (const signal of ["SIGHUP", "SIGUSR1", "SIGUSR2"] as const) {
    proc.kill(signal);
    await waitFor(
      `the ${signal} warning`,
      () => eventLines(server.stderr, "signal_ignored").some((line) => line.includes(`"${signal}"`)),
      10_000,
      10,
    );
  }
  expect(proc.exitCode).toBeNull();
  expect((await fetch(`${server.baseUrl}/readyz`)).status).toBe(200);
  await redirect(server, "hup", REDIRECTS);
  const warning = JSON.parse(eventLines(server.stderr, "signal_ignored")[0] as string);
  expect(warning).toMatchObject({ level: "warn", signal: "SIGHUP" });
  expect(warning.hint).toContain("runbooks/draining-a-node.md");
  expect(await server.stop("SIGTERM")).toBe(0);
  expect(visitsOf(server, "hup")).toBe(2 * REDIRECTS);
});

/**
 * `serve` on a terminal of its own (util-linux `script`, the server exec'd as the session leader), its stderr in a file.
 * Returns the running `script`, the server's pid, and what the terminal showed so far.
 */
interface OnTerminal extends AsyncDisposable {
  script: Subprocess<"ignore", "pipe", "pipe">;
  pid: number;
  screen: () => string;
}

async function onTerminal(server: TestServer): Promise<OnTerminal> {
  const command = [requireBinary(), "serve", ...server.settings].map((arg) => `'${arg}'`).join(" ");
  const script = Bun.spawn(["script", "-qfec", `exec ${command} 2>>'${join(server.dataDir, "stderr.log")}'`, "/dev/null"], {
    env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/tmp" },
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
  let screen = "";
  void collectText(script.stdout, (text) => {
    screen += text;
  });
  await waitFor("server readiness", async () => {
    if (script.exitCode !== null) throw new Error(`script exited early (${script.exitCode}): ${screen}`);
    return (await fetch(`${server.baseUrl}/readyz`).catch(() => null))?.status === 200;
  });
  const children = readFileSync(`/proc/${script.pid}/task/${script.pid}/children`, "utf8").trim().split(/\s+/);
  expect(children).toHaveLength(1);
  const pid = Number(children[0]);
  return {
    script,
    pid,
    screen: () => screen,
    [Symbol.asyncDispose]: async () => {
      if (running(pid)) process.kill(pid, "SIGKILL");
      script.kill("SIGKILL");
      await script.exited;
    },
  };
}

function running(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

test("a server started from a terminal drains and exits 0 on SIGHUP, and on its terminal hanging up, with every visit written", async () => {
  await using server = new TestServer();
  await server.createKey();
  await server.start();
  const created = await server.api("/rest/v3/short-urls", {
    method: "POST",
    body: JSON.stringify({ longUrl: "https://example.com/tty", customSlug: "tty" }),
  });
  expect(created.status).toBe(200);
  expect(await server.stop()).toBe(0);

  // `kill -HUP`, as a shell sends it to its jobs when its terminal closes: the terminal still shows the drain.
  await using first = await onTerminal(server);
  await redirect(server, "tty", REDIRECTS);
  process.kill(first.pid, "SIGHUP");
  await waitFor("the drained server, and script with it, to exit", () => first.script.exitCode !== null, 20_000, 20);
  expect(first.script.exitCode).toBe(0);
  expect(first.screen()).toContain('"event":"draining","reason":"SIGHUP"');
  expect(first.screen()).toContain('"event":"drained"');

  // The terminal itself goes (`script`, holding its other end, is killed): the kernel hangs it up, and every write
  // to it fails (EIO). The server says so on stderr, drains all the same, and ends.
  await using second = await onTerminal(server);
  await redirect(server, "tty", REDIRECTS);
  second.script.kill("SIGKILL");
  await waitFor("the server to end", () => !running(second.pid), 20_000, 20);
  const stderr = readFileSync(join(server.dataDir, "stderr.log"), "utf8");
  expect(eventLines(stderr, "stdout_closed")).toHaveLength(1);
  expect(stderr).not.toContain("fatal");
  expect(visitsOf(server, "tty")).toBe(2 * REDIRECTS);
});
