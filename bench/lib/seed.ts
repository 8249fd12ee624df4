/**
 * Seeds links straight into SQLite, which is ~100x faster than the API and fine for a benchmark: the rows are
 * exactly what the API would write for a plain create (default domain '', forward_query default, no tags).
 * The binary runs once first so that its own migrations create the schema.
 */
import { Database } from "bun:sqlite";
import { join } from "node:path";
import { generateCodes, targetFor, writeCodes } from "./codes";
import { tempDir } from "./processes";
import { type RunningServer, startShortener, stopServer } from "./servers";
import { range, visitCodes } from "./visit-codes";

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

/**
 * A new work dir (`prefix`) with `links` codes in codes.txt, seeded into its data dir, and the binary serving them on
 * `cpu` with the first `followed` codes followed once (in its LRU from then on).
 */
export async function seededServer(prefix: string, links: number, cpu: number, followed: number) {
  const work = tempDir(prefix);
  const codes = generateCodes(links);
  const codesFile = join(work, "codes.txt");
  writeCodes(codesFile, codes);
  const dataDir = join(work, "data");
  await seedLinks(dataDir, codes, cpu);
  const server: RunningServer = await startShortener(dataDir, cpu);
  await visitCodes(server.baseUrl, codes, range(followed));
  return { work, codes, codesFile, dataDir, server };
}
