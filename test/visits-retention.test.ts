/**
 * Visit retention through the binary: raw rows older than --visits-retention vanish in the background (oldest
 * first, in batches), while the link's counter, its per-day counts, the totals and the API's summary stay whole;
 * a deleted link's raw rows and roll-ups go too. Checked in the database file and on /metrics.
 */
import { Database } from "bun:sqlite";
import { afterAll, describe, expect, test } from "bun:test";
import { rmSync } from "node:fs";
import { join } from "node:path";
import { startServer, TestServer, tempDir, waitFor } from "./support/binary";

const DAY = 86_400_000;
const seededDir = tempDir("visits-retention-");
afterAll(() => rmSync(seededDir, { recursive: true, force: true }));

function one(server: TestServer, sql: string, ...params: (string | number)[]): number {
  const db = new Database(join(server.dataDir, "shortener.db"), { readonly: true });
  try {
    return ((db.query(sql).get(...params) as { n: number | null } | null)?.n ?? 0) as number;
  } finally {
    db.close();
  }
}

async function createLink(server: TestServer, slug: string): Promise<number> {
  const response = await server.api("/rest/v3/short-urls", {
    method: "POST",
    body: JSON.stringify({ longUrl: `https://example.com/${slug}`, customSlug: slug }),
  });
  expect(response.status).toBe(200);
  return one(server, "SELECT id AS n FROM short_urls WHERE short_code = ?", slug);
}

async function visit(server: TestServer, path: string, times: number): Promise<void> {
  for (let i = 0; i < times; i++) await (await fetch(`${server.baseUrl}/${path}`, { redirect: "manual" })).arrayBuffer();
}

async function summaryTotal(server: TestServer, slug: string): Promise<number> {
  const body = (await (await server.api(`/rest/v3/short-urls/${slug}`)).json()) as { visitsSummary: { total: number } };
  return body.visitsSummary.total;
}

const purgedMetric = (server: TestServer, reason: string) => server.metric(`shortener_visits_purged_total{reason="${reason}"}`);

describe("visit retention", () => {
  test("raw rows past the retention period vanish; the counter, per-day counts, totals and summary stay", async () => {
    await using server = await startServer({ args: ["--visits-retention", "2s", "--visit-flush-interval", "100ms"] });
    const id = await createLink(server, "aging");
    await visit(server, "aging", 20);
    await visit(server, "nowhere/at-all", 3);
    await waitFor(
      "every raw row purged and counted",
      () => one(server, "SELECT count AS n FROM visits_purged WHERE short_url_id = ?", id) === 20,
      20_000,
    );
    expect(one(server, "SELECT count(*) AS n FROM visits WHERE short_url_id = ?", id)).toBe(0);
    expect(one(server, "SELECT total AS n FROM link_visits WHERE short_url_id = ?", id)).toBe(20);
    expect(one(server, "SELECT sum(total) AS n FROM visit_days WHERE short_url_id = ?", id)).toBe(20);
    expect(one(server, "SELECT total AS n FROM visit_totals WHERE kind = 'non_orphan'")).toBe(20);
    expect(one(server, "SELECT count AS n FROM visit_kinds_purged WHERE kind = 'non_orphan'")).toBe(20);
    expect(await summaryTotal(server, "aging")).toBe(20);
    // Orphan visits age out the same way, and their totals stay too.
    await waitFor("orphan rows purged", () => one(server, "SELECT count(*) AS n FROM visits") === 0, 20_000);
    expect(one(server, "SELECT total AS n FROM visit_totals WHERE kind = 'regular_404'")).toBe(3);
    expect(one(server, "SELECT sum(total) AS n FROM orphan_visit_days")).toBe(3);
    expect(await purgedMetric(server, "retention")).toBe(23);
  });

  test("with the default 90 days, rows older than that are purged in batches at start and younger ones stay", async () => {
    const first = new TestServer({ dataDir: seededDir });
    await first.createKey();
    await first.start();
    const id = await createLink(first, "old");
    await first[Symbol.asyncDispose]();
    const now = Date.now();
    const db = new Database(join(seededDir, "shortener.db"));
    db.transaction(() => {
      const insert = db.query("INSERT INTO visits (short_url_id, at, potential_bot, visited_url) VALUES (?, ?, 0, 'http://x/old')");
      for (let i = 0; i < 5_000; i++) insert.run(id, now - 100 * DAY + i);
      for (let i = 0; i < 10; i++) insert.run(id, now - DAY + i);
      db.query("INSERT INTO link_visits (short_url_id, total) VALUES (?1, 5010) ON CONFLICT DO UPDATE SET total = 5010").run(id);
      db.query("INSERT INTO visit_days (short_url_id, day, total) VALUES (?, ?, 5000), (?, ?, 10)").run(
        id,
        Math.floor((now - 100 * DAY) / DAY),
        id,
        Math.floor((now - DAY) / DAY),
      );
      db.query("INSERT INTO visit_totals (kind, total, bots) VALUES ('non_orphan', 5010, 0)").run();
    }).immediate();
    db.close();

    await using server = new TestServer({ dataDir: seededDir });
    server.apiKey = first.apiKey;
    await server.start();
    await waitFor("the old rows purged", () => one(server, "SELECT count AS n FROM visits_purged WHERE short_url_id = ?", id) === 5_000);
    expect(one(server, "SELECT count(*) AS n FROM visits WHERE short_url_id = ?", id)).toBe(10);
    expect(one(server, "SELECT min(at) AS n FROM visits")).toBe(now - DAY);
    expect(one(server, "SELECT total AS n FROM link_visits WHERE short_url_id = ?", id)).toBe(5_010);
    expect(await summaryTotal(server, "old")).toBe(5_010);
    expect(await purgedMetric(server, "retention")).toBe(5_000);
  });

  test("a deleted link's raw rows and roll-ups are purged, and its visits leave the totals", async () => {
    // Passes run every 10 s after the one before ends: the second one finds the deletion. The rows must then be
    // younger than 10 s, so that retention leaves the kept link's rows alone. Written while the first pass still ran,
    // the oldest were over 10 s old at the second on a busy machine; written right after it ended, one still went
    // when the second pass's timer fired late (its cutoff then falls after the first rows). Waiting two seconds
    // after the first pass is the margin for that lateness: an age the test needs, not a readiness it guesses.
    await using server = await startServer({ args: ["--visits-retention", "10s", "--visit-flush-interval", "100ms"] });
    await waitFor("the first retention pass ended", async () => (await server.metric("shortener_visit_purge_duration_seconds_count")) >= 1);
    await Bun.sleep(2_000);
    const kept = await createLink(server, "kept");
    const gone = await createLink(server, "gone");
    await visit(server, "kept", 4);
    await visit(server, "gone", 6);
    await waitFor("the visits written", () => one(server, "SELECT count(*) AS n FROM visits") === 10);
    expect((await server.api("/rest/v3/short-urls/gone", { method: "DELETE" })).status).toBe(204);
    await waitFor(
      "the deleted link's roll-ups purged",
      () => one(server, "SELECT count(*) AS n FROM visit_days WHERE short_url_id = ?", gone) === 0,
      30_000,
      200,
    );
    expect(one(server, "SELECT count(*) AS n FROM visits WHERE short_url_id = ?", gone)).toBe(0);
    expect(one(server, "SELECT count(*) AS n FROM visits WHERE short_url_id = ?", kept)).toBe(4);
    expect(one(server, "SELECT total AS n FROM visit_totals WHERE kind = 'non_orphan'")).toBe(4);
    expect(one(server, "SELECT sum(total) AS n FROM visit_days")).toBe(4);
    expect(await purgedMetric(server, "deleted_link")).toBe(6);
  });
});
