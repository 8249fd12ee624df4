/** `shortener visits`: totals and per-day summaries, and a link's visits as RFC 4180 CSV, from the compiled binary. */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { closeSync, constants, openSync, rmSync } from "node:fs";
import { join } from "node:path";
import { requireBinary, runCli, startServer, type TestServer, tempDir, waitFor } from "./support/binary";
import { BOT_UA, paginationOf, type ShlinkApi, sdkClient } from "./support/sdk";

let server: TestServer;
let sdk: ShlinkApi;

// Fields that need quoting: a comma and quotes in the referer, a comma in the user agent.
const REFERER = 'https://r.example/?a=1,b="2"';
const UA = "Mozilla/5.0 (X11; Linux x86_64, rv:1) Firefox/130";

beforeAll(async () => {
  server = await startServer();
  sdk = sdkClient(server);
  await sdk.createShortUrl({ longUrl: "https://example.com/target", customSlug: "csv-link" });
  await sdk.createShortUrl({ longUrl: "https://example.com/none", customSlug: "no-visits" });
  const visitors: Record<string, string>[] = [{ "User-Agent": UA, Referer: REFERER }, { "User-Agent": BOT_UA }];
  for (const headers of visitors) {
    const response = await fetch(`${server.baseUrl}/csv-link`, { headers, redirect: "manual" });
    expect(response.status).toBe(302);
  }
  await waitFor("both visits written", async () => paginationOf(await sdk.getShortUrlVisits({ shortCode: "csv-link" })).totalItems === 2);
});
afterAll(async () => {
  await server[Symbol.asyncDispose]();
});

const visitsCli = (...args: string[]) => runCli(["visits", ...args, "--data-dir", server.dataDir]);

describe("shortener visits --csv", () => {
  test("writes a header and one RFC 4180 record per visit, oldest first, quoting what needs it", async () => {
    const result = await visitsCli("--short-code", "csv-link", "--csv");
    expect(result.stderr).toBe("");
    expect(result.exitCode).toBe(0);
    const [newest, oldest] = (await sdk.getShortUrlVisits({ shortCode: "csv-link" })).data;
    const target = "https://example.com/target";
    const visited = `${server.baseUrl}/csv-link`;
    expect(result.stdout).toBe(
      "date,referer,user_agent,potential_bot,visited_url,redirect_url,remote_addr,country_code,country_name,region_name,city_name,latitude,longitude,timezone\r\n" +
        `${oldest?.date},"https://r.example/?a=1,b=""2""","Mozilla/5.0 (X11; Linux x86_64, rv:1) Firefox/130",false,${visited},${target},127.0.0.0,,,,,,,\r\n` +
        `${newest?.date},,${BOT_UA},true,${visited},${target},127.0.0.0,,,,,,,\r\n`,
    );
  });

  test.each([[["--short-code", "csv-link", "--csv"]], [[]]])(
    "%p into a pipe whose reader has gone (`| head`) ends quietly: exit 0, nothing on stderr",
    async (args) => {
      // The pipe's reader is closed before the command starts, so its first write fails (EPIPE) whatever the timing.
      const dir = tempDir("closed-pipe-");
      try {
        const fifo = join(dir, "stdout");
        expect(Bun.spawnSync(["mkfifo", fifo]).exitCode).toBe(0);
        const reader = openSync(fifo, constants.O_RDONLY | constants.O_NONBLOCK);
        const writer = openSync(fifo, "w");
        closeSync(reader);
        const proc = Bun.spawn([requireBinary(), "visits", ...args, "--data-dir", server.dataDir], {
          env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/tmp" },
          stdout: writer,
          stderr: "pipe",
          stdin: "ignore",
        });
        closeSync(writer);
        const [exitCode, stderr] = await Promise.all([proc.exited, new Response(proc.stderr).text()]);
        expect(stderr).toBe("");
        expect(exitCode).toBe(0);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  );

  test("--since after the last visit leaves the header alone", async () => {
    const result = await visitsCli("--short-code", "csv-link", "--csv", "--since", "2999-01-01T00:00:00Z");
    expect(result.exitCode).toBe(0);
    expect(result.stdout.split("\r\n")).toHaveLength(2);
    expect(result.stdout.startsWith("date,referer,")).toBe(true);
  });
});

describe("shortener visits (summary)", () => {
  test("prints whole-database totals without --short-code", async () => {
    const result = await visitsCli();
    expect(result.exitCode).toBe(0);
    expect(result.stdout).toBe("KIND\tTOTAL\tNON-BOTS\tBOTS\nnon-orphan\t2\t1\t1\norphan\t0\t0\t0\n");
  });

  test("prints a link's totals and its visits per day", async () => {
    const result = await visitsCli("--short-code", "csv-link", "--since", "7d");
    expect(result.exitCode).toBe(0);
    const today = new Date().toISOString().slice(0, 10);
    expect(result.stdout).toContain("visits\t2 (non-bots 1, bots 1)\n");
    expect(result.stdout).toContain("in range\t2 (non-bots 1, bots 1)\n");
    expect(result.stdout).toContain(`DAY\tTOTAL\tNON-BOTS\tBOTS\tVISITORS\n${today}\t2\t1\t1\t2\n`);
    const quiet = await visitsCli("--short-code", "no-visits");
    expect(quiet.stdout).toContain("visits\t0 (non-bots 0, bots 0)\n");
    expect(quiet.stdout.trimEnd().endsWith("DAY\tTOTAL\tNON-BOTS\tBOTS\tVISITORS")).toBe(true);
  });

  test("an unknown short code is a usage error (exit 2) naming it", async () => {
    const result = await visitsCli("--short-code", "missing");
    expect(result.exitCode).toBe(2);
    expect(result.stderr).toContain('No URL found with short code "missing"');
  });

  test.each([
    [["--csv"], "need --short-code"],
    [["--short-code", "csv-link", "--since", "last tuesday"], '--since "last tuesday"'],
    [["--short-code", "csv-link", "--since", "1d", "--until", "2d"], "--since is after --until"],
  ])("%p is a usage error (exit 2) saying %p", async (args, message) => {
    const result = await visitsCli(...args);
    expect(result.exitCode).toBe(2);
    expect(result.stderr).toContain(message);
    expect(result.stderr).toContain("usage: shortener visits");
  });
});
