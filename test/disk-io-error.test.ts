/**
 * A disk that fails writes. The server's file size limit (RLIMIT_FSIZE) is lowered to 0 while it runs, so every
 * write SQLite makes fails with EFBIG, which SQLite reports as SQLITE_IOERR_WRITE: what a failing disk (EIO) or a
 * file system remounted read-only under the process (EROFS) gives. Raising the limit again is the disk coming back.
 */
import { expect, test } from "bun:test";
import { rmSync } from "node:fs";
import { BINARY, eventLines, freePort, loggedErrors, runCli, TestServer, tempDir, waitFor } from "./support/binary";

/** Sets the soft limit on the size of files `pid` may write; the hard limit stays unlimited, so it can be raised again. */
function limitFileSize(pid: number, bytes: number | "unlimited"): void {
  const result = Bun.spawnSync(["prlimit", `--pid=${pid}`, `--fsize=${bytes}:unlimited`]);
  if (result.exitCode !== 0) throw new Error(`prlimit failed: ${result.stderr.toString()}`);
}

test("when the disk fails writes, writes answer 503 and change nothing, redirects go on, and everything is written once it works again", async () => {
  await using node = new TestServer();
  await node.createKey();
  await node.start();
  const pid = node.proc?.pid ?? 0;
  const create = (longUrl: string) => node.api("/rest/v3/short-urls", { method: "POST", body: JSON.stringify({ longUrl }) });
  const created = await create("https://example.com/before");
  expect(created.status).toBe(200);
  const { shortCode } = (await created.json()) as { shortCode: string };
  const follow = async () => {
    const response = await fetch(`${node.baseUrl}/${shortCode}`, { redirect: "manual" });
    return `${response.status} ${response.headers.get("location")}`;
  };
  expect(await follow()).toBe("302 https://example.com/before");

  limitFileSize(pid, 0);
  const refused = await create("https://example.com/refused");
  expect(refused.status).toBe(503);
  expect(refused.headers.get("content-type")).toBe("application/problem+json");
  expect(refused.headers.get("retry-after")).toBe("30");
  const problem = (await refused.json()) as { type: string; detail: string; requestId: string };
  expect(problem.type).toBe("https://shlink.io/api/error/service-unavailable");
  expect(problem.detail).toContain("I/O error");
  const edit = await node.api(`/rest/v3/short-urls/${shortCode}`, {
    method: "PATCH",
    body: JSON.stringify({ longUrl: "https://example.com/edited" }),
  });
  expect(edit.status).toBe(503);

  // The edit was rolled back, so the link still goes where it went; redirects and readiness go on, and the visits
  // wait in memory while their flushes fail.
  const followed = [];
  for (let i = 0; i < 10; i++) followed.push(await follow());
  expect(new Set(followed)).toEqual(new Set(["302 https://example.com/before"]));
  expect((await fetch(`${node.baseUrl}/readyz`)).status).toBe(200);
  await waitFor("a failed visit flush", async () => (await node.metric("shortener_visit_flush_failures_total")) >= 1);
  expect(await node.metric("shortener_visit_buffer_depth")).toBe(11);

  limitFileSize(pid, "unlimited");
  // The same connection writes again, with no restart: the refused writes, tried again, work.
  await waitFor("a write once the disk works", async () => (await create("https://example.com/refused")).status === 200);
  const again = await node.api(`/rest/v3/short-urls/${shortCode}`, {
    method: "PATCH",
    body: JSON.stringify({ longUrl: "https://example.com/edited" }),
  });
  expect(again.status).toBe(200);
  expect(await follow()).toBe("302 https://example.com/edited");
  await waitFor("the buffered visits written", async () => (await node.metric("shortener_visit_buffer_depth")) === 0);
  const link = (await (await node.api(`/rest/v3/short-urls/${shortCode}`)).json()) as { visitsSummary: { total: number } };
  expect(link.visitsSummary.total).toBe(12);
  // Nothing half-written: the refused create left no link behind, so there are exactly two.
  const listed = (await (await node.api("/rest/v3/short-urls?itemsPerPage=-1")).json()) as { shortUrls: { data: { longUrl: string }[] } };
  expect(listed.shortUrls.data.map((l) => l.longUrl).sort()).toEqual(["https://example.com/edited", "https://example.com/refused"]);

  expect(await node.stop()).toBe(0);
  const output = node.stdout + node.stderr;
  const logged = loggedErrors(output, "database_io_error");
  expect(logged.map((l) => l.request_id)).toContain(problem.requestId);
  expect(logged[0]?.code).toBe("SQLITE_IOERR_WRITE");
  expect(logged[0]?.hint).toContain("kernel log");
  expect(output).not.toContain("unhandled_error");
  expect(eventLines(output, "visit_flush_recovered")).toHaveLength(1);
});

test("serve and check on a disk that fails writes from the start name the disk, not a damaged database", async () => {
  const dataDir = tempDir();
  await using _dir = { [Symbol.asyncDispose]: async () => rmSync(dataDir, { recursive: true, force: true }) };
  // The database as a clean stop leaves it: opening it must write its -shm and -wal files.
  expect((await runCli(["keys", "create", "--name", "admin", "--data-dir", dataDir])).exitCode).toBe(0);
  const underLimit = async (...args: string[]) => {
    const proc = Bun.spawn(
      ["prlimit", "--fsize=0:unlimited", "--", BINARY, ...args, "--data-dir", dataDir, "--ops-listen", `127.0.0.1:${freePort()}`],
      {
        stdin: "ignore",
        stdout: "pipe",
        stderr: "pipe",
      },
    );
    const [stdout, stderr, exitCode] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
    return { stdout, stderr, exitCode };
  };
  const served = await underLimit("serve", "--listen", `127.0.0.1:${freePort()}`);
  expect(served.exitCode).toBe(70);
  expect(served.stderr).toContain("shortener serve: disk I/O error (SQLITE_IOERR");
  expect(served.stderr).toContain("kernel log");
  const checked = await underLimit("check", "--json");
  expect(checked.exitCode).toBe(1);
  const open = (JSON.parse(checked.stdout) as { checks: { name: string; ok: boolean; hint?: string }[] }).checks.find(
    (c) => c.name === "database.open",
  );
  expect(open?.ok).toBe(false);
  expect(open?.hint).toContain("kernel log");
  expect(open?.hint).toContain("before restoring anything");
  expect(open?.hint).not.toContain("restore it from the replica");
});
