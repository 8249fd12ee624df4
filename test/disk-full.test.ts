import { expect, test } from "bun:test";
import { closeSync, openSync, statfsSync, unlinkSync, writeSync } from "node:fs";
import { eventLines, TestServer, waitFor } from "./support/binary";
import { onSmallDisk, runInside, seenBy } from "./support/small-disk";

const DISK_KIB = 4096;
/** The least --visit-buffer-limit allows: the redirects below go five past it. */
const BUFFER_LIMIT = 1000;
const REDIRECTS = BUFFER_LIMIT + 5;
const FILL_CHUNK = Buffer.alloc(64 * 1024, 1);

/** Writes a file until the disk refuses more (ENOSPC); returns its size. */
function fill(path: string): number {
  const fd = openSync(path, "w");
  let written = 0;
  try {
    for (let i = 0; i < (DISK_KIB * 1024) / FILL_CHUNK.length + 16; i++) {
      try {
        written += writeSync(fd, FILL_CHUNK);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === "ENOSPC") return written;
        throw error;
      }
    }
  } finally {
    closeSync(fd);
  }
  throw new Error(`${path}: the disk never filled (wrote ${written} bytes)`);
}

test("on a full disk writes answer 503 and change nothing, redirects go on, and visits wait in memory, up to a limit, until space is freed", async () => {
  await using node = new TestServer({
    wrap: (dataDir) => onSmallDisk(dataDir, DISK_KIB),
    args: ["--visit-buffer-limit", String(BUFFER_LIMIT)],
  });
  await node.createKey();
  await node.start();
  const pid = node.proc?.pid ?? 0;
  const disk = statfsSync(seenBy(pid, node.dataDir, "."));
  expect(disk.blocks * disk.bsize).toBe(DISK_KIB * 1024);

  const create = (longUrl: string) => node.api("/rest/v3/short-urls", { method: "POST", body: JSON.stringify({ longUrl }) });
  const first = await create("https://example.com/before-the-disk-filled");
  expect(first.status).toBe(200);
  const { shortCode } = (await first.json()) as { shortCode: string };

  const filler = seenBy(pid, node.dataDir, "filler");
  expect(fill(filler)).toBeGreaterThan(0);

  // The WAL may still have room in pages it already holds: write until the disk refuses.
  const accepted: string[] = [];
  let refused: Response | null = null;
  let refusedUrl = "";
  const deadline = Date.now() + 30_000;
  for (let i = 0; i < 2_000 && refused === null && Date.now() < deadline; i++) {
    const longUrl = `https://example.com/while-full/${i}/${"x".repeat(1500)}`;
    const response = await create(longUrl);
    if (response.status === 200) accepted.push(longUrl);
    else [refused, refusedUrl] = [response, longUrl];
  }
  if (refused === null) throw new Error(`the disk never refused a write (${accepted.length} accepted)`);
  expect(refused.status).toBe(503);
  expect(refused.headers.get("content-type")).toBe("application/problem+json");
  expect(refused.headers.get("retry-after")).toBe("60");
  const problem = (await refused.json()) as { type: string; detail: string; requestId: string };
  expect(problem.type).toBe("https://shlink.io/api/error/service-unavailable");
  expect(problem.detail).toContain("disk is full");

  // Redirects go on from the cache and the database, and the node stays ready; the visits wait in memory, those
  // past the limit with no details.
  const statuses = new Map<number, number>();
  for (let i = 0; i < REDIRECTS; i++) {
    const { status } = await fetch(`${node.baseUrl}/${shortCode}`, { redirect: "manual" });
    statuses.set(status, (statuses.get(status) ?? 0) + 1);
  }
  expect([...statuses]).toEqual([[302, REDIRECTS]]);
  expect((await fetch(`${node.baseUrl}/readyz`)).status).toBe(200);
  await waitFor("two failed visit flushes", async () => (await node.metric("shortener_visit_flush_failures_total")) >= 2);
  expect(await node.metric("shortener_visit_buffer_depth")).toBe(REDIRECTS);
  expect(await node.metric("shortener_visit_details_dropped_total")).toBe(REDIRECTS - BUFFER_LIMIT);

  // The refused link was not half-written: nothing with its URL exists.
  const search = await node.api(`/rest/v3/short-urls?searchTerm=${encodeURIComponent(refusedUrl)}`);
  expect(((await search.json()) as { shortUrls: { data: unknown[] } }).shortUrls.data).toEqual([]);

  unlinkSync(filler);
  // The refused write, tried again until it works (a refused try changes nothing).
  await waitFor("a write once space is freed", async () => (await create(refusedUrl)).status === 200);
  await waitFor("the buffered visits written", async () => (await node.metric("shortener_visit_buffer_depth")) === 0);
  const link = (await (await node.api(`/rest/v3/short-urls/${shortCode}`)).json()) as { visitsSummary: { total: number } };
  expect(link.visitsSummary.total).toBe(REDIRECTS);
  const rows = await node.api(`/rest/v3/short-urls/${shortCode}/visits?itemsPerPage=1`);
  expect(((await rows.json()) as { visits: { pagination: { totalItems: number } } }).visits.pagination.totalItems).toBe(BUFFER_LIMIT);
  // The day counts have the visits with details, and their visitor, though the flushes that first saw them rolled back.
  const summary = await runInside(pid, ["visits", "--short-code", shortCode, "--since", "1d", "--data-dir", node.dataDir]);
  expect(summary.exitCode).toBe(0);
  // DAY, TOTAL, NON-BOTS, BOTS, VISITORS: one client, so one visitor on each day (the visits may straddle midnight).
  const days = summary.stdout
    .split("\n")
    .filter((line) => /^\d{4}-\d\d-\d\d\t/.test(line))
    .map((line) => line.split("\t").map(Number));
  expect(days.reduce((sum, day) => sum + (day[1] as number), 0)).toBe(BUFFER_LIMIT);
  expect(days.map((day) => day[4])).toEqual(days.map(() => 1));
  const listed = (await (await node.api("/rest/v3/short-urls?itemsPerPage=-1")).json()) as { shortUrls: { data: { longUrl: string }[] } };
  expect(listed.shortUrls.data.map((l) => l.longUrl).sort()).toEqual(
    ["https://example.com/before-the-disk-filled", refusedUrl, ...accepted].sort(),
  );

  expect(await node.stop()).toBe(0);
  const output = node.stdout + node.stderr;
  expect(eventLines(output, "database_full").some((line) => line.includes(problem.requestId))).toBe(true);
  expect(output).not.toContain("unhandled_error");
  // Failures are a streak in the log, not a line a second.
  expect(eventLines(output, "visit_flush_failed")).toHaveLength(1);
  expect(eventLines(output, "visit_flush_recovered")).toHaveLength(1);
});

test("serve started on a full disk waits for space without listening, then starts by itself", async () => {
  // The database alone, as a clean stop leaves it: SQLite must create its -shm and -wal files to open it.
  await using node = new TestServer({ wrap: (dataDir) => onSmallDisk(dataDir, DISK_KIB, { full: true }) });
  await node.createKey();
  const starting = node.start();
  const pid = node.proc?.pid ?? 0;
  await waitFor("the wait for space in the log", () => eventLines(node.stdout + node.stderr, "database_open_failed").length > 0);
  expect(await fetch(`${node.baseUrl}/healthz`).catch(() => "refused")).toBe("refused");
  const waiting = JSON.parse(eventLines(node.stdout + node.stderr, "database_open_failed")[0] as string) as {
    free_bytes: number;
    hint: string;
  };
  expect(waiting.free_bytes).toBeLessThan(64 * 1024);
  expect(waiting.hint).toContain("disk is full");
  expect(node.proc?.exitCode).toBeNull();
  // The self-check, where the node sees its disk, blames the disk and not the database.
  const check = await runInside(pid, ["check", "--json", ...node.settings]);
  expect(check.exitCode).toBe(1);
  const hints = new Map(
    (JSON.parse(check.stdout) as { checks: { name: string; ok: boolean; hint?: string }[] }).checks
      .filter((c) => !c.ok)
      .map((c) => [c.name, c.hint ?? ""]),
  );
  expect([...hints.keys()]).toEqual(["database.open", "data_dir.writable", "disk.free"]);
  expect(hints.get("database.open")).toContain("is full");
  expect(hints.get("database.open")).toContain("do not restore");
  expect(hints.get("data_dir.writable")).toContain("is full");

  unlinkSync(seenBy(pid, node.dataDir, "filler"));
  await starting;
  const created = await node.api("/rest/v3/short-urls", { method: "POST", body: JSON.stringify({ longUrl: "https://example.com/after" }) });
  expect(created.status).toBe(200);
  const { shortCode } = (await created.json()) as { shortCode: string };
  expect((await fetch(`${node.baseUrl}/${shortCode}`, { redirect: "manual" })).headers.get("location")).toBe("https://example.com/after");
  expect(eventLines(node.stdout + node.stderr, "database_open_recovered")).toHaveLength(1);
  expect(eventLines(node.stdout + node.stderr, "database_open_failed")).toHaveLength(1);
});

/**
 * A node whose disk filled after one link was created, holding `visits` of it that every flush fails to write. With
 * `referer`, each visit carries a distinct referer of that many characters: a few small visits may still fit once a
 * checkpoint lets the WAL start over in the space its file already holds, and so be written though the disk stays full.
 */
async function fullWithVisits(visits: number, referer = 0): Promise<{ node: TestServer; filler: string }> {
  const node = new TestServer({ wrap: (dataDir) => onSmallDisk(dataDir, DISK_KIB) });
  await node.createKey();
  await node.start();
  const created = await node.api("/rest/v3/short-urls", { method: "POST", body: JSON.stringify({ longUrl: "https://example.com/d" }) });
  const { shortCode } = (await created.json()) as { shortCode: string };
  const filler = seenBy(node.proc?.pid ?? 0, node.dataDir, "filler");
  fill(filler);
  for (let i = 0; i < visits; i++) {
    const headers = referer === 0 ? undefined : { Referer: `https://example.com/${i}/${"r".repeat(referer)}` };
    expect((await fetch(`${node.baseUrl}/${shortCode}`, { redirect: "manual", headers })).status).toBe(302);
  }
  await waitFor("a failed visit flush", async () => (await node.metric("shortener_visit_flush_failures_total")) >= 1);
  return { node, filler };
}

test("a drain on a full disk keeps trying the last flush, and writes the visits once space is freed", async () => {
  const { node, filler } = await fullWithVisits(3);
  await using _ = node;
  node.proc?.kill("SIGTERM");
  await waitFor("a retried final flush", () => eventLines(node.stdout + node.stderr, "final_visit_flush_retry").length > 0);
  unlinkSync(filler);
  expect(await node.waitForExit()).toBe(0);
  const drained = JSON.parse(eventLines(node.stdout, "drained")[0] ?? "{}") as { visits_flushed?: number };
  expect(drained.visits_flushed).toBe(3);
  expect(eventLines(node.stdout + node.stderr, "drain_failed")).toEqual([]);
});

test("a drain on a disk that stays full gives up after its retries: exit 70, and the log says how many visits were lost", async () => {
  // ~200 KB of referers: more than the WAL's file (~45 KB here) holds, so no checkpoint can make room for them.
  const { node } = await fullWithVisits(200, 1000);
  await using _ = node;
  node.proc?.kill("SIGTERM");
  expect(await node.waitForExit(45_000)).toBe(70);
  const failed = eventLines(node.stdout + node.stderr, "drain_failed");
  expect(failed).toHaveLength(1);
  expect((JSON.parse(failed[0] as string) as { unwritten_visits: number }).unwritten_visits).toBe(200);
}, 60_000);
