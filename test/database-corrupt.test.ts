/**
 * A damaged database file, found by a request: a page of the links table overwritten with zeros while the server was
 * stopped. The request that reads it answers an opaque 500, and the log says `database_corrupt` with what to do
 * (check, keep a copy, restore), not `unhandled_error`; links on sound pages go on redirecting.
 */
import { Database } from "bun:sqlite";
import { expect, test } from "bun:test";
import { closeSync, openSync, writeSync } from "node:fs";
import { join } from "node:path";
import { loggedErrors, TestServer } from "./support/binary";

const LINKS = 2_000;

test("a request that reads a damaged page answers 500 and logs database_corrupt with the way out; sound links still redirect", async () => {
  await using node = new TestServer();
  await node.createKey();
  await node.start();
  expect(await node.stop()).toBe(0);

  // Enough links, with long URLs, to spread the table over many pages.
  const path = join(node.dataDir, "shortener.db");
  const db = new Database(path);
  const insert = db.query("INSERT INTO short_urls (short_code, long_url, created_at) VALUES (?, ?, ?)");
  db.transaction(() => {
    for (let i = 0; i < LINKS; i++) insert.run(`c${i}`, `https://example.com/${i}/${"x".repeat(300)}`, Date.now());
  })();
  const leaves = (
    db.query("SELECT pageno FROM dbstat WHERE name = 'short_urls' AND pagetype = 'leaf' ORDER BY pageno").all() as { pageno: number }[]
  ).map((r) => r.pageno);
  const pageSize = (db.query("PRAGMA page_size").get() as { page_size: number }).page_size;
  db.close();
  expect(leaves.length).toBeGreaterThan(10);
  const damaged = leaves[Math.floor(leaves.length / 2)] as number;
  const fd = openSync(path, "r+");
  writeSync(fd, Buffer.alloc(pageSize), 0, pageSize, (damaged - 1) * pageSize);
  closeSync(fd);

  // Which links sit on the damaged page: their rows cannot be read.
  const reader = new Database(path, { readonly: true });
  const row = reader.query("SELECT long_url FROM short_urls WHERE short_code = ?");
  const unreadable: string[] = [];
  const readable: string[] = [];
  for (let i = 0; i < LINKS; i++) {
    try {
      row.get(`c${i}`);
      readable.push(`c${i}`);
    } catch (error) {
      expect((error as { code?: string }).code).toStartWith("SQLITE_CORRUPT");
      unreadable.push(`c${i}`);
    }
  }
  reader.close();
  expect(unreadable.length).toBeGreaterThan(0);

  await node.start();
  const broken = await fetch(`${node.baseUrl}/${unreadable[0]}`, { redirect: "manual", headers: { Accept: "application/json" } });
  expect(broken.status).toBe(500);
  const problem = (await broken.json()) as { type: string; detail: string; requestId: string };
  expect(problem.type).toBe("https://shlink.io/api/error/internal-server-error");
  expect(problem.detail).toBe("An unexpected error occurred.");
  const sound = await fetch(`${node.baseUrl}/${readable[0]}`, { redirect: "manual" });
  expect(sound.status).toBe(302);

  expect(await node.stop()).toBe(0);
  const output = node.stdout + node.stderr;
  const logged = loggedErrors(output, "database_corrupt");
  expect(logged.map((l) => l.request_id)).toContain(problem.requestId);
  expect(logged[0]?.code).toStartWith("SQLITE_CORRUPT");
  expect(logged[0]?.hint).toContain("restore from the replica");
  expect(output).not.toContain("unhandled_error");
});
