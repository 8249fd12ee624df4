/**
 * `shortener import shlink --visits` benchmark; see bench/RESULTS.md.
 *   1. A source node: LINKS links seeded straight into SQLite, each with VISITS_PER_LINK raw visits, and one hot link
 *      with HOT_VISITS, with their roll-ups as the flush keeps them; served on SOURCE_CPU.
 *   2. A target node, serving on TARGET_CPU, while a client (this script) follows a link there in a loop and creates a
 *      link through its API every 100 ms: the import writes into the database that server is using.
 *   3. `shortener import shlink SOURCE --visits` into the target's data dir: wall time, links and visits per second;
 *      the slowest redirect and the slowest create meanwhile, and any that failed (the import's batches hold the
 *      write lock while they commit: creates wait for it, redirects do not).
 *   4. Check: the target holds every link and visit of the source.
 */
import { Database } from "bun:sqlite";
import { join } from "node:path";
import { run, runWithCleanup, tempDir } from "./lib/processes";
import { createApiKey, requireBinary, snapshotBinary, startShortener, stopServer } from "./lib/servers";
import { numberSetting } from "./lib/settings";

const cfg = {
  links: numberSetting("LINKS", 10_000),
  visitsPerLink: numberSetting("VISITS_PER_LINK", 10),
  hotVisits: numberSetting("HOT_VISITS", 200_000),
  sourceCpu: Number(process.env.SOURCE_CPU ?? 1),
  targetCpu: Number(process.env.TARGET_CPU ?? 0),
};

const DAY = 86_400_000;
const UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36";

/** Links and visits over the last 60 days, with roll-ups and counters as the visit flush writes them. */
function seed(dataDir: string): number {
  const db = new Database(join(dataDir, "shortener.db"), { strict: true });
  try {
    db.exec("PRAGMA busy_timeout = 5000; PRAGMA synchronous = OFF");
    const now = Date.now();
    const link = db.query<unknown, [string, string, number]>(
      "INSERT INTO short_urls (domain, short_code, long_url, created_at) VALUES ('', ?, ?, ?)",
    );
    const visit = db.query<unknown, [number, number, number, string, string, string]>(
      "INSERT INTO visits (short_url_id, at, potential_bot, referer, user_agent, visited_url, redirect_url) VALUES (?, ?, ?, ?, ?, ?, 'https://example.com/')",
    );
    db.transaction(() => {
      for (let i = 0; i < cfg.links; i++) link.run(`src${i}`, `https://example.com/${i}`, now - 90 * DAY + i);
      const ids = (db.query("SELECT id FROM short_urls ORDER BY id").all() as { id: number }[]).map((r) => r.id);
      const visitsOf = (index: number) => (index === 0 ? cfg.hotVisits : cfg.visitsPerLink);
      ids.forEach((id, index) => {
        const count = visitsOf(index);
        for (let v = 0; v < count; v++) {
          visit.run(
            id,
            Math.floor(now - 60 * DAY + (v * 59 * DAY) / count),
            v % 7 === 0 ? 1 : 0,
            `https://ref.example/${v % 13}`,
            UA,
            `http://s.test/src${index}`,
          );
        }
      });
      db.run(`INSERT INTO visit_days (short_url_id, day, total, bots, visitors)
              SELECT short_url_id, at / ${DAY}, count(*), sum(potential_bot), count(*) FROM visits GROUP BY 1, 2`);
      db.run("INSERT INTO visit_totals (kind, total, bots) SELECT 'non_orphan', count(*), sum(potential_bot) FROM visits");
      db.run("INSERT INTO link_visits (short_url_id, total, bots) SELECT short_url_id, sum(total), sum(bots) FROM visit_days GROUP BY 1");
      db.run(`INSERT INTO domain_visit_days (domain, day, total, bots) SELECT '', day, sum(total), sum(bots) FROM visit_days GROUP BY 2`);
    }).immediate();
    return (db.query("SELECT count(*) AS n FROM visits").get() as { n: number }).n;
  } finally {
    db.close();
  }
}

async function main(): Promise<void> {
  const dir = tempDir("import-bench-");
  snapshotBinary(dir);
  const sourceDir = join(dir, "source");
  const targetDir = join(dir, "target");
  // The binary's own migrations make the schema; then the seed.
  await stopServer(await startShortener(sourceDir, cfg.sourceCpu));
  const visits = seed(sourceDir);
  console.log(
    `source: ${cfg.links.toLocaleString("en")} links, ${visits.toLocaleString("en")} visits (one link ${cfg.hotVisits.toLocaleString("en")})`,
  );
  const sourceKey = await createApiKey(sourceDir);
  const source = await startShortener(sourceDir, cfg.sourceCpu);
  const targetKey = await createApiKey(targetDir);
  const target = await startShortener(targetDir, cfg.targetCpu);
  await fetch(`${target.baseUrl}/rest/v3/short-urls`, {
    method: "POST",
    headers: { "X-Api-Key": targetKey, "Content-Type": "application/json" },
    body: JSON.stringify({ longUrl: "https://example.com/here", customSlug: "here" }),
  });

  let importing = true;
  const slowest = { redirect: 0, create: 0 };
  const failed = { redirect: 0, create: 0 };
  const counts = { redirect: 0, create: 0 };
  const redirects = (async () => {
    while (importing) {
      const started = performance.now();
      const response = await fetch(`${target.baseUrl}/here`, { redirect: "manual" });
      slowest.redirect = Math.max(slowest.redirect, performance.now() - started);
      counts.redirect++;
      if (response.status !== 302) failed.redirect++;
    }
  })();
  const creates = (async () => {
    for (let i = 0; importing; i++) {
      const started = performance.now();
      const response = await fetch(`${target.baseUrl}/rest/v3/short-urls`, {
        method: "POST",
        headers: { "X-Api-Key": targetKey, "Content-Type": "application/json" },
        body: JSON.stringify({ longUrl: `https://example.com/new/${i}` }),
      });
      await response.arrayBuffer();
      slowest.create = Math.max(slowest.create, performance.now() - started);
      counts.create++;
      if (response.status !== 200) failed.create++;
      await Bun.sleep(100);
    }
  })();

  const started = performance.now();
  const output = await run([requireBinary(), "import", "shlink", source.baseUrl, "--visits", "--data-dir", targetDir], {
    env: { SHLINK_API_KEY: sourceKey },
    timeoutMs: 30 * 60_000,
  });
  const seconds = (performance.now() - started) / 1000;
  importing = false;
  await Promise.all([redirects, creates]);
  console.log(output.trim());
  await stopServer(target);
  await stopServer(source);

  const db = new Database(join(targetDir, "shortener.db"), { readonly: true });
  const links = (db.query("SELECT count(*) AS n FROM short_urls WHERE short_code LIKE 'src%'").get() as { n: number }).n;
  const rows = (
    db.query("SELECT count(*) AS n FROM visits v JOIN short_urls s ON s.id = v.short_url_id WHERE s.short_code LIKE 'src%'").get() as {
      n: number;
    }
  ).n;
  db.close();
  if (links !== cfg.links || rows !== visits) throw new Error(`the target holds ${links} links and ${rows} visits`);
  console.log(`\nimport: ${seconds.toFixed(1)} s: ${(cfg.links / seconds).toFixed(0)} links/s, ${(visits / seconds).toFixed(0)} visits/s`);
  console.log(
    `meanwhile on the target: ${counts.redirect} redirects (slowest ${slowest.redirect.toFixed(1)} ms, ${failed.redirect} failed), ` +
      `${counts.create} creates (slowest ${slowest.create.toFixed(1)} ms, ${failed.create} failed)`,
  );
}

await runWithCleanup(main);
