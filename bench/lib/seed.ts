/**
 * Seeds links straight into SQLite, which is ~100x faster than the API and fine for a benchmark: the rows are
 * exactly what the API would write for a plain create (default domain '', forward_query default, no tags).
 * The binary runs once first so that its own migrations create the schema.
 */
import { Database } from "bun:sqlite";
import { join } from "node:path";
import { targetFor } from "./codes";
import { startShortener, stopServer } from "./servers";

/** Starts the binary on the empty `dataDir` (migrations run), stops it, then inserts one link per code. */
export async function seedLinks(dataDir: string, codes: readonly string[], cpu: number): Promise<number> {
  const server = await startShortener(dataDir, cpu);
  await stopServer(server);
  const started = performance.now();
  const db = new Database(join(dataDir, "shortener.db"), { strict: true });
  try {
    db.exec("PRAGMA busy_timeout = 5000");
    const insert = db.query<unknown, [string, string, number]>(
      "INSERT INTO short_urls (domain, short_code, long_url, created_at) VALUES ('', ?, ?, ?)",
    );
    const now = Date.now();
    db.transaction(() => {
      codes.forEach((code, i) => {
        insert.run(code, targetFor(i), now);
      });
    }).immediate();
    const count = (db.query("SELECT count(*) AS n FROM short_urls").get() as { n: number }).n;
    if (count !== codes.length) throw new Error(`seeded ${count} links, expected ${codes.length}`);
  } finally {
    db.close();
  }
  return (performance.now() - started) / 1000;
}
