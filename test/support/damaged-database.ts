/**
 * A damaged database file: a page of the links table overwritten with zeros while the server is stopped, as a failing
 * disk or a bad copy leaves it. Requests that read that page fail with SQLITE_CORRUPT; the others go on.
 */
import { Database } from "bun:sqlite";
import { closeSync, openSync, writeSync } from "node:fs";
import { join } from "node:path";

/**
 * Adds `links` links (codes c0, c1, …, long URLs spread over many pages) to the stopped node's database in `dataDir`,
 * zeroes a leaf page of the links table in the middle, and says which codes can still be read.
 */
export function damageLinksPage(dataDir: string, links = 2_000): { readable: string[]; unreadable: string[] } {
  const path = join(dataDir, "shortener.db");
  const db = new Database(path);
  const insert = db.query("INSERT INTO short_urls (short_code, long_url, created_at) VALUES (?, ?, ?)");
  db.transaction(() => {
    for (let i = 0; i < links; i++) insert.run(`c${i}`, `https://example.com/${i}/${"x".repeat(300)}`, Date.now());
  })();
  const leaves = (
    db.query("SELECT pageno FROM dbstat WHERE name = 'short_urls' AND pagetype = 'leaf' ORDER BY pageno").all() as { pageno: number }[]
  ).map((r) => r.pageno);
  const pageSize = (db.query("PRAGMA page_size").get() as { page_size: number }).page_size;
  db.close();
  if (leaves.length <= 10) throw new Error(`the links table spans only ${leaves.length} leaf pages`);
  const damaged = leaves[Math.floor(leaves.length / 2)] as number;
  const fd = openSync(path, "r+");
  writeSync(fd, Buffer.alloc(pageSize), 0, pageSize, (damaged - 1) * pageSize);
  closeSync(fd);

  const reader = new Database(path, { readonly: true });
  const row = reader.query("SELECT long_url FROM short_urls WHERE short_code = ?");
  const readable: string[] = [];
  const unreadable: string[] = [];
  for (let i = 0; i < links; i++) {
    try {
      row.get(`c${i}`);
      readable.push(`c${i}`);
    } catch (error) {
      const code = (error as { code?: string }).code ?? "";
      if (!code.startsWith("SQLITE_CORRUPT")) throw error;
      unreadable.push(`c${i}`);
    }
  }
  reader.close();
  if (unreadable.length === 0) throw new Error("no link sits on the damaged page");
  return { readable, unreadable };
}
