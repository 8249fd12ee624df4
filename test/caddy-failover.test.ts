/**
 * deploy/Caddyfile, run by real Caddy in front of two colours of the compiled binary sharing one data dir, as on a
 * VM (runbooks/draining-a-node.md): under redirect load and creates through Caddy, a drained colour hands its
 * traffic to the other with no failed request, no lost visit and no lost link, traffic comes back once it is ready
 * again, and a colour killed outright costs no redirect either (Caddy retries a GET on the other colour).
 *
 * The file is used as shipped, but for three substitutions the test checks it made: its site address becomes plain
 * HTTP on a free loopback port, its two upstream ports the test's, and a global block turns Caddy's admin API off.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, test } from "bun:test";
import { rmSync } from "node:fs";
import { freePort, runCli, TestServer, tempDir, waitFor } from "./support/binary";
import { type Answer, CaddyProcess, createThrough, idPrefix, loadThrough, testCaddyfile } from "./support/caddy";

/** The drain grace the README gives as the default: long enough for Caddy's two failed health checks, 1 s apart. */
const DRAIN_GRACE = "5s";

/** deploy/Caddyfile with its site on http://127.0.0.1:`port` and its upstreams on `blue` and `green`. */
function caddyfileFor(port: number, blue: number, green: number): string {
  const upstreams = `reverse_proxy 127.0.0.1:${blue} 127.0.0.1:${green} {`;
  return testCaddyfile("deploy/Caddyfile", port, ["reverse_proxy 127.0.0.1:8080 127.0.0.1:8090 {", upstreams]);
}

const dirs: string[] = [];
let blue: TestServer;
let green: TestServer;
let caddy: CaddyProcess;
let shortCode = "";
let url = "";
let caddyBase = "";

beforeAll(async () => {
  const dataDir = tempDir();
  const caddyDir = tempDir("shortener-caddy-");
  dirs.push(dataDir, caddyDir);
  blue = new TestServer({ dataDir, drainGrace: DRAIN_GRACE });
  green = new TestServer({ dataDir, drainGrace: DRAIN_GRACE });
  await blue.createKey();
  green.apiKey = blue.apiKey;
  await blue.start();
  await green.start();
  const created = await blue.api("/rest/v3/short-urls", { method: "POST", body: JSON.stringify({ longUrl: "https://example.com/swap" }) });
  expect(created.status).toBe(200);
  shortCode = ((await created.json()) as { shortCode: string }).shortCode;
  const port = freePort();
  caddy = await new CaddyProcess(caddyDir, port).start(caddyfileFor(port, blue.port, green.port));
  caddyBase = `http://127.0.0.1:${port}`;
  url = `${caddyBase}/${shortCode}`;
}, 60_000);

afterAll(async () => {
  await caddy?.[Symbol.asyncDispose]();
  await blue?.[Symbol.asyncDispose]();
  await green?.[Symbol.asyncDispose]();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

// Each test starts with both colours up, whatever the one before left.
beforeEach(async () => {
  for (const colour of [blue, green]) if (colour.proc?.exitCode !== null) await colour.start();
});

/** How many answers each colour gave, for the log. */
function tally(answers: Answer[], colours: Record<string, string>): string {
  return Object.entries(colours)
    .map(([name, prefix]) => `${name} ${answers.filter((a) => a.prefix === prefix).length}`)
    .join(", ");
}

async function visitsCounted(server: TestServer): Promise<number> {
  const link = (await (await server.api(`/rest/v3/short-urls/${shortCode}`)).json()) as { visitsSummary: { total: number } };
  return link.visitsSummary.total;
}

describe("deploy/Caddyfile in front of blue and green (real Caddy)", () => {
  test("a drained colour hands its traffic to the other with no failed request and no lost visit or link, and gets it back once ready", async () => {
    const colours = { blue: await idPrefix(blue), green: await idPrefix(green) };
    const first = { ...colours };
    const load = loadThrough(url, 4, 90_000);
    const creates = createThrough(caddyBase, blue.apiKey, 90_000);
    try {
      // Everything goes to blue, the first upstream that is ready.
      await load.served(colours.blue, 100);
      const settled = performance.now();
      await load.served(colours.blue, 100, settled);
      expect(load.answers.filter((a) => a.at >= settled && a.prefix !== colours.blue)).toEqual([]);

      // `shortener drain` on blue: /readyz fails at once, Caddy moves to green within the grace, blue then exits.
      const drain = await runCli(["drain", "--timeout", "30s", "--ops-listen", `127.0.0.1:${blue.opsPort}`]);
      expect(drain.exitCode).toBe(0);
      expect(await blue.waitForExit()).toBe(0);
      const blueGone = performance.now();
      expect(load.answers.some((a) => a.prefix === colours.green && a.at < blueGone)).toBe(true);
      await load.served(colours.green, 100, blueGone);

      // Blue comes back: once its health checks pass, Caddy sends everything to it again.
      await blue.start();
      colours.blue = await idPrefix(blue);
      const blueBack = performance.now();
      await load.served(colours.blue, 100, blueBack);
    } finally {
      await Promise.all([load.finish(), creates.finish()]);
    }
    console.log(
      `caddy-failover: drain and back: ${load.answers.length} redirects through Caddy (${tally(load.answers, { blue: first.blue, green: colours.green, "blue again": colours.blue })}), ${load.failures.length} failed; ${creates.acknowledged.length} links created, ${creates.failures.length} failed`,
    );
    expect(load.failures).toEqual([]);
    expect(creates.failures).toEqual([]);
    // Every acknowledged link is there, whichever colour wrote it.
    const listed = (await (await green.api("/rest/v3/short-urls?itemsPerPage=-1")).json()) as {
      shortUrls: { data: { longUrl: string }[] };
    };
    const stored = new Set(listed.shortUrls.data.map((l) => l.longUrl));
    expect(creates.acknowledged.length).toBeGreaterThan(0);
    expect(creates.acknowledged.filter((u) => !stored.has(u))).toEqual([]);
    // Every redirect Caddy answered was counted, once, by whichever colour served it.
    await waitFor("every visit written", async () => (await visitsCounted(green)) >= load.answers.length);
    expect(await visitsCounted(green)).toBe(load.answers.length);
  }, 120_000);

  test("a colour killed outright costs no request: Caddy retries each GET on the other colour", async () => {
    const colours = { blue: await idPrefix(blue), green: await idPrefix(green) };
    const load = loadThrough(url, 4, 60_000);
    try {
      await load.served(colours.blue, 100);
      blue.proc?.kill("SIGKILL");
      expect(await blue.waitForExit()).toBe(137);
      const killed = performance.now();
      await load.served(colours.green, 200, killed);
    } finally {
      await load.finish();
    }
    console.log(
      `caddy-failover: kill -9: ${load.answers.length} redirects through Caddy (${tally(load.answers, colours)}), ${load.failures.length} failed`,
    );
    expect(load.failures).toEqual([]);
  }, 90_000);
});
