/**
 * `shortener import shlink`: links and visits copied from a server speaking Shlink's REST API v3 (here another node
 * of this shortener, whose API is Shlink's), compared field by field with what the source shows, through the binary;
 * and `shortener import db`, the same from another node's database file.
 */
import { Database } from "bun:sqlite";
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { renewLineage } from "../src/storage/database-lineage";
import { eventLines, runCli, startServer, TestServer, tempDir, waitFor } from "./support/binary";
import { BOT_UA, BROWSER_UA } from "./support/sdk";

const ANDROID_UA = "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Mobile Safari/537.36";
const DOMAIN = "im.example.net";

let source: TestServer;

/** [shortCode, domain]: the links the import must bring over. */
const IMPORTED: [string, string | null][] = [
  ["im-plain", null],
  ["im-ruled", null],
  ["im-moved", null],
  ["im-net", DOMAIN],
];

const linkPath = (code: string, domain: string | null) => `/rest/v3/short-urls/${code}${domain === null ? "" : `?domain=${domain}`}`;
const visitsPath = (code: string, domain: string | null) =>
  `/rest/v3/short-urls/${code}/visits${domain === null ? "" : `?domain=${domain}`}`;
const rulesPath = (code: string) => `/rest/v3/short-urls/${code}/redirect-rules`;

async function json(server: TestServer, path: string): Promise<Record<string, unknown>> {
  const response = await server.api(path);
  expect(response.status).toBe(200);
  return (await response.json()) as Record<string, unknown>;
}

/** A link as the API shows it, less its short URL (built from each node's own base URL). */
async function linkOf(server: TestServer, code: string, domain: string | null) {
  const { shortUrl: _, ...rest } = await json(server, linkPath(code, domain));
  return rest;
}

const visitsTotal = async (server: TestServer, code: string, domain: string | null) =>
  ((await linkOf(server, code, domain)).visitsSummary as { total: number }).total;

function importInto(dataDir: string, ...extra: string[]) {
  return runCli(["import", "shlink", source.baseUrl, "--data-dir", dataDir, ...extra], { SHLINK_API_KEY: source.apiKey }, 60_000);
}

const visit = (server: TestServer, code: string, headers: Record<string, string> = {}) =>
  fetch(`${server.baseUrl}/${code}`, { redirect: "manual", headers: { "User-Agent": BROWSER_UA, ...headers } });

beforeAll(async () => {
  source = await startServer();
  const create = async (body: object) =>
    expect((await source.api("/rest/v3/short-urls", { method: "POST", body: JSON.stringify(body) })).status).toBe(200);
  await create({
    longUrl: "https://example.com/plain",
    customSlug: "im-plain",
    tags: ["im-a", "im-b"],
    title: "Plain",
    crawlable: true,
    forwardQuery: false,
    maxVisits: 100,
    validUntil: "2030-01-01T00:00:00+00:00",
  });
  await create({ longUrl: "https://example.com/ruled", customSlug: "im-ruled" });
  await create({ longUrl: "https://example.com/moved", customSlug: "im-moved", redirectStatus: 301 });
  await create({ longUrl: "https://example.com/net", customSlug: "im-net", domain: DOMAIN });
  await create({ longUrl: "https://example.com/secret", customSlug: "im-locked", password: "correct horse" });
  const rules = {
    redirectRules: [{ longUrl: "https://example.com/android", conditions: [{ type: "device", matchKey: null, matchValue: "android" }] }],
  };
  expect((await source.api(rulesPath("im-ruled"), { method: "POST", body: JSON.stringify(rules) })).status).toBe(200);
  expect((await visit(source, "im-plain", { Referer: "https://ref.example/one" })).status).toBe(302);
  expect((await visit(source, "im-plain", { Referer: "https://ref.example/two" })).status).toBe(302);
  expect((await visit(source, "im-plain", { "User-Agent": BOT_UA })).status).toBe(302);
  expect((await visit(source, "im-net", { Host: DOMAIN })).status).toBe(302);
  // Written, not only counted: a link's visit list shows what the visit flush has written.
  const written = async (code: string, domain: string | null) =>
    ((await json(source, visitsPath(code, domain))).visits as { pagination: { totalItems: number } }).pagination.totalItems;
  await waitFor(
    "the source's visits written",
    async () => (await written("im-plain", null)) === 3 && (await written("im-net", DOMAIN)) === 1,
  );
});
afterAll(async () => {
  await source[Symbol.asyncDispose]();
});

describe("shortener import shlink", () => {
  test("copies each link as the source shows it, with its rules and visits, refuses a password-protected one, and repeats nothing", async () => {
    await using target = new TestServer();
    const first = await importInto(target.dataDir, "--visits");
    expect(first.stdout).toBe(
      "refused\tim-locked\tit is password-protected, and its password is never shown by the API\n" +
        "imported 4 links (4 visits); 0 already here; 0 conflicts; 1 refused\n",
    );
    expect(first.exitCode).toBe(1);
    expect(first.stderr).not.toContain(source.apiKey);
    // The visits were staged beside the database, and that scratch directory is gone.
    expect(readdirSync(target.dataDir).filter((name) => name.startsWith(".import-"))).toEqual([]);

    await target.createKey();
    await target.start();
    for (const [code, domain] of IMPORTED) {
      expect(await linkOf(target, code, domain)).toEqual(await linkOf(source, code, domain));
      expect(await json(target, visitsPath(code, domain))).toEqual(await json(source, visitsPath(code, domain)));
    }
    expect(await json(target, rulesPath("im-ruled"))).toEqual(await json(source, rulesPath("im-ruled")));
    expect((await target.api(linkPath("im-locked", null))).status).toBe(404);

    // Served as they were: per-link status, rules, forwardQuery off, the domain by its Host.
    const moved = await visit(target, "im-moved");
    expect([moved.status, moved.headers.get("location")]).toEqual([301, "https://example.com/moved"]);
    expect((await visit(target, "im-ruled", { "User-Agent": ANDROID_UA })).headers.get("location")).toBe("https://example.com/android");
    expect((await visit(target, "im-plain?utm=x")).headers.get("location")).toBe("https://example.com/plain");
    expect((await visit(target, "im-net", { Host: DOMAIN })).headers.get("location")).toBe("https://example.com/net");

    const audit = await runCli(["audit", "--json", "--data-dir", target.dataDir]);
    const events = JSON.parse(audit.stdout) as {
      action: string;
      actor: { type: string };
      subject: string;
      details: Record<string, unknown>;
    }[];
    expect(
      events
        .filter((e) => e.action !== "api-key.created")
        .map((e) => [e.action, e.actor.type, e.subject, e.details.from, e.details.visits])
        .sort(),
    ).toEqual([
      ["short-url.imported", "cli", "im-moved", source.baseUrl, 0],
      ["short-url.imported", "cli", "im-plain", source.baseUrl, 3],
      ["short-url.imported", "cli", "im-ruled", source.baseUrl, 0],
      ["short-url.imported", "cli", `${DOMAIN}/im-net`, source.baseUrl, 1],
    ]);

    // Again, with the server running: everything is already here, and no visit is counted twice.
    await waitFor("the visit made here written", async () => (await visitsTotal(target, "im-plain", null)) === 4);
    const before = await linkOf(target, "im-plain", null);
    const second = await importInto(target.dataDir, "--visits");
    expect(second.stdout).toContain("imported 0 links (0 visits); 4 already here; 0 conflicts; 1 refused\n");
    expect(second.exitCode).toBe(1);
    expect(await linkOf(target, "im-plain", null)).toEqual(before);
  });

  test("into a running server: a code taken here by another long URL is a conflict and stays; the rest is served at once", async () => {
    await using target = await startServer();
    const mine = { longUrl: "https://example.com/mine", customSlug: "im-plain" };
    expect((await target.api("/rest/v3/short-urls", { method: "POST", body: JSON.stringify(mine) })).status).toBe(200);
    // Before the import, the domain is unknown here: its Host falls back to the default domain, which has no im-net.
    expect((await visit(target, "im-net", { Host: DOMAIN })).status).toBe(404);

    const result = await importInto(target.dataDir, "--json");
    expect(result.exitCode).toBe(1);
    expect(JSON.parse(result.stdout)).toEqual({
      imported: 3,
      visits: 0,
      present: 0,
      conflicts: [{ shortCode: "im-plain", domain: null, reason: "taken here by another long URL", here: "https://example.com/mine" }],
      refused: [{ shortCode: "im-locked", domain: null, reason: "it is password-protected, and its password is never shown by the API" }],
    });
    expect((await linkOf(target, "im-plain", null)).longUrl).toBe("https://example.com/mine");
    // Without --visits, links come with no visits.
    expect(await visitsTotal(target, "im-net", DOMAIN)).toBe(0);
    expect((await visit(target, "im-moved")).status).toBe(301);
    // The running server reads the domains again every few seconds: no restart.
    await waitFor("the new domain routed", async () => (await visit(target, "im-net", { Host: DOMAIN })).status === 302, 10_000, 100);
  });

  test("a source that fails part way: the links read whole are written, and the next run goes on from there", async () => {
    await using target = new TestServer();
    // In front of the source: every request passes, but im-net's visits fail (500) however often they are asked for.
    const flaky = Bun.serve({
      hostname: "127.0.0.1",
      port: 0,
      async fetch(request) {
        const url = new URL(request.url);
        if (url.pathname === "/rest/v3/short-urls/im-net/visits") return Response.json({ detail: "disk on fire" }, { status: 500 });
        const answer = await fetch(`${source.baseUrl}${url.pathname}${url.search}`, { headers: request.headers });
        return new Response(await answer.arrayBuffer(), {
          status: answer.status,
          headers: { "Content-Type": answer.headers.get("content-type") ?? "" },
        });
      },
    });
    try {
      const failed = await runCli(
        ["import", "shlink", `http://127.0.0.1:${flaky.port}`, "--visits", "--data-dir", target.dataDir],
        { SHLINK_API_KEY: source.apiKey },
        60_000,
      );
      expect(failed.exitCode).toBe(70);
      expect(failed.stderr).toContain("/rest/v3/short-urls/im-net/visits?");
      expect(failed.stderr).toContain(
        "failed 4 times, the last: 500 (disk on fire). The 3 links imported so far stay; run the import again to go on",
      );
    } finally {
      flaky.stop(true);
    }
    const again = await importInto(target.dataDir, "--visits");
    expect(again.stdout).toContain("imported 1 links (1 visits); 3 already here; 0 conflicts; 1 refused\n");
  });

  test("a bad command line, a refused key or a source that is not Shlink fails clearly and writes nothing", async () => {
    await using target = new TestServer();
    const dir = ["--data-dir", target.dataDir];
    const noKey = await runCli(["import", "shlink", source.baseUrl, ...dir]);
    expect([noKey.exitCode, noKey.stderr.split("\n")[0]]).toEqual([
      2,
      "shortener import: set SHLINK_API_KEY to an API key of the source (it is never taken as a flag)",
    ]);
    const badUrl = await runCli(["import", "shlink", "ftp://example.com", ...dir], { SHLINK_API_KEY: "k" });
    expect([badUrl.exitCode, badUrl.stderr.split("\n")[0]]).toEqual([
      2,
      "shortener import: import shlink needs the source's base URL, e.g. https://s.example.com",
    ]);
    const cutForShlink = await runCli(["import", "shlink", source.baseUrl, ...dir, "--after-link-id", "3"], { SHLINK_API_KEY: "k" });
    expect([cutForShlink.exitCode, cutForShlink.stderr.split("\n")[0]]).toEqual([
      2,
      "shortener import: --after-link-id is for import db FILE",
    ]);
    const visitCutForShlink = await runCli(["import", "shlink", source.baseUrl, ...dir, "--visits", "--after-visit-id", "3"], {
      SHLINK_API_KEY: "k",
    });
    expect([visitCutForShlink.exitCode, visitCutForShlink.stderr.split("\n")[0]]).toEqual([
      2,
      "shortener import: --after-visit-id is for import db FILE",
    ]);
    const standby = await runCli(["import", "shlink", source.baseUrl, ...dir], {
      SHLINK_API_KEY: source.apiKey,
      SHORTENER_ROLE: "standby",
    });
    expect([standby.exitCode, standby.stderr.split("\n")[0]]).toEqual([
      2,
      "shortener import: a standby takes no writes: run `shortener import shlink` on the primary (what it writes reaches this node with the replica)",
    ]);

    const wrongKey = await runCli(["import", "shlink", source.baseUrl, ...dir], { SHLINK_API_KEY: "not-a-key" });
    expect(wrongKey.exitCode).toBe(70);
    expect(wrongKey.stderr).toContain("answered 401");
    expect(wrongKey.stderr).toContain("give an API key of the source in SHLINK_API_KEY");
    const notShlink = await runCli(["import", "shlink", `http://127.0.0.1:${source.opsPort}`, ...dir], { SHLINK_API_KEY: source.apiKey });
    expect(notShlink.exitCode).toBe(70);
    expect(notShlink.stderr).toContain("/rest/v3/short-urls?page=1&itemsPerPage=100&orderBy=dateCreated-ASC answered 404");

    const audit = await runCli(["audit", "--json", ...dir]);
    expect(JSON.parse(audit.stdout)).toEqual([]);
  });
});

/**
 * `shortener import db`: the links of another database of this shortener created after a given link id (an old
 * primary's, set aside at its demotion: what it acknowledged after the state a promotion restored).
 */
describe("shortener import db", () => {
  let old: TestServer;
  let file = "";
  /** The last link id the old node had given before the links that must come over. */
  let cut = 0;

  /** The set-aside file's bytes (with its -wal), to show that the import leaves them as they were. */
  const fingerprint = () =>
    [file, `${file}-wal`].map((path) =>
      existsSync(path) ? new Bun.CryptoHasher("sha256").update(readFileSync(path)).digest("hex") : null,
    );

  const importDb = (dataDir: string, ...extra: string[]) => runCli(["import", "db", file, "--data-dir", dataDir, ...extra], {}, 60_000);

  beforeAll(async () => {
    old = await startServer();
    const create = async (body: object) =>
      expect((await old.api("/rest/v3/short-urls", { method: "POST", body: JSON.stringify(body) })).status).toBe(200);
    await create({ longUrl: "https://example.com/db-before", customSlug: "db-before" });
    await create({ longUrl: "https://example.com/db-after", customSlug: "db-after", tags: ["db-tag"], title: "After", maxVisits: 50 });
    await create({ longUrl: "https://example.com/db-net", customSlug: "db-net", domain: DOMAIN });
    await create({ longUrl: "https://example.com/db-secret", customSlug: "db-locked", password: "correct horse" });
    expect((await visit(old, "db-before")).status).toBe(302);
    expect((await visit(old, "db-after", { Referer: "https://ref.example/db" })).status).toBe(302);
    expect((await visit(old, "db-after", { "User-Agent": BOT_UA })).status).toBe(302);
    await waitFor("the old node's visits written", async () => (await visitsTotal(old, "db-after", null)) === 2);
    await old.stop();
    file = join(old.dataDir, "shortener.db");
    const db = new Database(file, { readonly: true });
    try {
      cut = (db.query("SELECT id FROM short_urls WHERE short_code = 'db-before'").get() as { id: number }).id;
    } finally {
      db.close();
    }
    // What that read left (SQLite's shared-memory file): the file is as the old node left it, as set aside.
    rmSync(`${file}-shm`, { force: true });
  });
  afterAll(async () => {
    await old[Symbol.asyncDispose]();
  });

  test("copies the links with higher ids, with their visits, from a copy of the file, and repeats nothing", async () => {
    await using target = new TestServer();
    const before = fingerprint();
    const besideBefore = readdirSync(old.dataDir).sort();
    const first = await importDb(target.dataDir, "--after-link-id", String(cut), "--visits");
    expect(first.stdout).toBe(
      "refused\tdb-locked\tit is password-protected, and its password is never shown by the API\n" +
        "later visits to links through the cut: not imported; this node's replica.env names no restored visit id (promote keeps it there): give --after-visit-id N, the visit ids through which promote printed that it restored\n" +
        "imported 2 links (2 visits); 0 already here; 0 conflicts; 1 refused\n",
    );
    expect(first.exitCode).toBe(1);
    expect(first.stderr).toContain(`import: 3 links in ${file} have ids above ${cut}`);
    expect(fingerprint()).toEqual(before);
    // Nothing appears or is left beside the file: the copy it read is gone, and it never opened the file itself.
    expect(readdirSync(old.dataDir).sort()).toEqual(besideBefore);
    expect(readdirSync(target.dataDir).filter((name) => name.startsWith(".import-"))).toEqual([]);

    await target.createKey();
    await target.start();
    const after = await linkOf(target, "db-after", null);
    expect(after).toMatchObject({
      longUrl: "https://example.com/db-after",
      tags: ["db-tag"],
      title: "After",
      meta: { maxVisits: 50, validSince: null, validUntil: null },
      visitsSummary: { total: 2, bots: 1, nonBots: 1 },
    });
    const visits = (await json(target, visitsPath("db-after", null))).visits as { data: { referer: string; potentialBot: boolean }[] };
    expect(visits.data.map((v) => [v.referer, v.potentialBot]).sort()).toEqual([
      ["", true],
      ["https://ref.example/db", false],
    ]);
    expect((await visit(target, "db-net", { Host: DOMAIN })).headers.get("location")).toBe("https://example.com/db-net");
    // At or below the cut: the promoted node had it already (or deleted it since): never brought back.
    expect((await target.api(linkPath("db-before", null))).status).toBe(404);

    const second = await importDb(target.dataDir, "--after-link-id", String(cut), "--visits");
    expect(second.stdout).toContain("imported 0 links (0 visits); 2 already here; 0 conflicts; 1 refused\n");
    expect(await linkOf(target, "db-after", null)).toEqual(after);
  });

  test("takes the cut from the replica.env promote wrote, and says what to give without one", async () => {
    await using target = new TestServer();
    const none = await importDb(target.dataDir);
    expect([none.exitCode, none.stderr.split("\n")[0]]).toEqual([
      2,
      "shortener import: this node's replica.env names no restored link id (promote keeps it there when it restores an old epoch): give --after-link-id N, the ids through which promote printed that it restored",
    ]);
    writeFileSync(join(target.dataDir, "replica.env"), `REPLICA_EPOCH=2\nREPLICA_LEASE_HOLDER=test\nREPLICA_RESTORED_LINK_ID=${cut}\n`);
    const taken = await importDb(target.dataDir, "--json");
    expect(taken.exitCode).toBe(1);
    expect(JSON.parse(taken.stdout)).toMatchObject({ imported: 2, visits: 0, present: 0, conflicts: [] });
    // The visit cut too, with --visits: every visit of the old node is past 0, and its links through the cut are not here.
    writeFileSync(
      join(target.dataDir, "replica.env"),
      `REPLICA_EPOCH=2\nREPLICA_LEASE_HOLDER=test\nREPLICA_RESTORED_LINK_ID=${cut}\nREPLICA_RESTORED_VISIT_ID=0\n`,
    );
    const withVisits = await importDb(target.dataDir, "--visits", "--json");
    expect(JSON.parse(withVisits.stdout)).toMatchObject({ laterVisits: { afterVisitId: 0, imported: 0, alreadyHere: 0, linkGone: 1 } });
  });

  test("with --visits, the old primary's visits past the cut to the older links come too, once whatever cut each run was given; a link deleted here gets none", async () => {
    await using older = await startServer();
    const create = async (code: string, maxVisits?: number) =>
      expect(
        (
          await older.api("/rest/v3/short-urls", {
            method: "POST",
            body: JSON.stringify({ longUrl: `https://example.com/${code}`, customSlug: code, maxVisits }),
          })
        ).status,
      ).toBe(200);
    for (const code of ["lv-a", "lv-b", "lv-gone"]) await create(code);
    await create("lv-max", 2);
    for (let i = 0; i < 2; i++) expect((await visit(older, "lv-a")).status).toBe(302);
    await waitFor("the visits written", async () => (await visitsTotal(older, "lv-a", null)) === 2);
    await older.stop();
    // The promotion: the new primary starts from the old one's state as its Litestream last uploaded it.
    await using target = new TestServer();
    const oldFile = join(older.dataDir, "shortener.db");
    for (const suffix of ["", "-wal"]) {
      if (existsSync(`${oldFile}${suffix}`))
        writeFileSync(join(target.dataDir, `shortener.db${suffix}`), readFileSync(`${oldFile}${suffix}`));
    }
    const copy = new Database(join(target.dataDir, "shortener.db"), { readonly: true });
    const linkCut = (copy.query("SELECT seq FROM sqlite_sequence WHERE name = 'short_urls'").get() as { seq: number }).seq;
    const visitCut = (copy.query("SELECT max(id) AS id FROM visits").get() as { id: number }).id;
    copy.close();
    // Cut off from the bucket, the old primary went on serving: visits to its older links, and a new link.
    await older.start();
    expect((await visit(older, "lv-a", { Referer: "https://later.example/" })).status).toBe(302);
    expect((await visit(older, "lv-b")).status).toBe(302);
    expect((await visit(older, "lv-b", { "User-Agent": BOT_UA })).status).toBe(302);
    expect((await visit(older, "lv-gone")).status).toBe(302);
    expect((await visit(older, "lv-max")).status).toBe(302);
    await create("lv-new");
    expect((await visit(older, "lv-new")).status).toBe(302);
    await waitFor(
      "the later visits written",
      async () =>
        (await visitsTotal(older, "lv-b", null)) === 2 &&
        (await visitsTotal(older, "lv-max", null)) === 1 &&
        (await visitsTotal(older, "lv-new", null)) === 1,
    );
    await older.stop();
    rmSync(`${oldFile}-shm`, { force: true });

    // Here, one of the older links was deleted since the promotion (the copy has the old node's key: this one is new).
    await target.createKey("after-promotion");
    await target.start();
    expect((await target.api(linkPath("lv-gone", null), { method: "DELETE" })).status).toBe(204);
    // A link of two visits at most, visited once here too: cached, with a count of 1.
    expect((await visit(target, "lv-max")).status).toBe(302);
    const importFrom = (file: string, afterLinkId: number, afterVisitId: number, ...extra: string[]) =>
      runCli(
        [
          "import",
          "db",
          file,
          "--data-dir",
          target.dataDir,
          "--visits",
          "--after-link-id",
          String(afterLinkId),
          "--after-visit-id",
          String(afterVisitId),
          ...extra,
        ],
        {},
        60_000,
      );
    const run = (afterVisitId: number, ...extra: string[]) => importFrom(oldFile, linkCut, afterVisitId, ...extra);
    const noticed = (times: number) =>
      waitFor(
        "the server noticing the imported visits",
        () => eventLines(target.stdout, "imported_visits_noticed").length === times,
        10_000,
        50,
      );
    // First with a cut two visits too high: the three later visits above it are brought over (one to the link deleted here)…
    const tooHigh = await run(visitCut + 2, "--json");
    expect(tooHigh.exitCode).toBe(0);
    const early = JSON.parse(tooHigh.stdout).laterVisits as { imported: number; alreadyHere: number; linkGone: number };
    expect([early.imported + early.linkGone, early.alreadyHere]).toEqual([3, 0]);
    await noticed(1);
    // …then with the right one: the two below it come, and the rest are already here, whichever cut named their batch.
    const first = await run(visitCut);
    expect([first.exitCode, first.stdout]).toEqual([
      0,
      `later visits to links through id ${linkCut}: imported ${4 - early.imported} (ids above ${visitCut}); ${early.imported} already here; 1 to links deleted here\n` +
        "imported 0 links (0 visits); 1 already here; 0 conflicts; 0 refused\n",
    ]);
    // The running server notices the import's batches and reads the link again: the old primary's visit used it up.
    await noticed(2);
    expect((await visit(target, "lv-max")).status).toBe(404);
    expect((await linkOf(target, "lv-max", null)).visitsSummary).toEqual({ total: 2, nonBots: 2, bots: 0 });
    expect((await linkOf(target, "lv-a", null)).visitsSummary).toEqual({ total: 3, nonBots: 3, bots: 0 });
    expect((await linkOf(target, "lv-b", null)).visitsSummary).toEqual({ total: 2, nonBots: 1, bots: 1 });
    expect((await linkOf(target, "lv-new", null)).visitsSummary).toEqual({ total: 1, nonBots: 1, bots: 0 });
    const referers = ((await json(target, visitsPath("lv-a", null))).visits as { data: { referer: string }[] }).data.map((v) => v.referer);
    expect(referers).toEqual(["https://later.example/", "", ""]);
    expect((await target.api(linkPath("lv-gone", null))).status).toBe(404);

    // Again with yet another cut, and with the right one: nothing is written twice.
    const other = JSON.parse((await run(visitCut + 1, "--json")).stdout).laterVisits as {
      imported: number;
      alreadyHere: number;
      linkGone: number;
    };
    expect([other.imported, other.alreadyHere + other.linkGone]).toEqual([0, 4]);
    const last = await run(visitCut);
    expect(last.stdout).toBe(
      `later visits to links through id ${linkCut}: imported 0 (ids above ${visitCut}); 4 already here; 1 to links deleted here\n` +
        "imported 0 links (0 visits); 1 already here; 0 conflicts; 0 refused\n",
    );
    expect((await linkOf(target, "lv-a", null)).visitsSummary).toEqual({ total: 3, nonBots: 3, bots: 0 });
    expect((await linkOf(target, "lv-max", null)).visitsSummary).toEqual({ total: 2, nonBots: 2, bots: 0 });

    // With a lower link cut too: the batches are named by the file's lineage, not by the cut, so nothing comes twice.
    const lowerRun = await importFrom(oldFile, linkCut - 1, visitCut, "--json");
    expect(lowerRun.exitCode).toBe(0);
    const lower = JSON.parse(lowerRun.stdout).laterVisits as { imported: number; alreadyHere: number };
    expect(lower.imported).toBe(0);
    expect((await linkOf(target, "lv-a", null)).visitsSummary).toEqual({ total: 3, nonBots: 3, bots: 0 });

    // A file of another lineage (a later promotion's old primary, restored from this one's state): the same visit ids
    // name other visits there, and none of them is taken for one already here.
    const otherDir = tempDir();
    try {
      const otherFile = join(otherDir, "shortener.db");
      for (const suffix of ["", "-wal"])
        if (existsSync(`${oldFile}${suffix}`)) writeFileSync(`${otherFile}${suffix}`, readFileSync(`${oldFile}${suffix}`));
      const other = new Database(otherFile);
      other.run("UPDATE visits SET referer = 'https://other-lineage.example/' WHERE id > ?", [visitCut]);
      other.close();
      expect(renewLineage(otherFile)).not.toBeNull();
      rmSync(`${otherFile}-shm`, { force: true });
      const fromOther = await importFrom(otherFile, linkCut, visitCut);
      expect([fromOther.exitCode, fromOther.stdout.split("\n")[0]]).toEqual([
        0,
        `later visits to links through id ${linkCut}: imported 4 (ids above ${visitCut}); 0 already here; 1 to links deleted here`,
      ]);
      const after = ((await json(target, visitsPath("lv-a", null))).visits as { data: { referer: string }[] }).data.map((v) => v.referer);
      expect(after).toEqual(["https://other-lineage.example/", "https://later.example/", "", ""]);
    } finally {
      rmSync(otherDir, { recursive: true, force: true });
    }
  }, 60_000);

  test("a missing file, one that is not a shortener database, or a bad id fails clearly and writes nothing", async () => {
    await using target = new TestServer();
    const dir = ["--data-dir", target.dataDir, "--after-link-id", "0"];
    const missing = await runCli(["import", "db", join(target.dataDir, "nowhere.db"), ...dir]);
    expect([missing.exitCode, missing.stderr.split("\n")[0]]).toEqual([
      2,
      `shortener import: there is no database at ${join(target.dataDir, "nowhere.db")}`,
    ]);
    const text = join(target.dataDir, "notes.txt");
    writeFileSync(text, "not a database\n".repeat(100));
    const notDb = await runCli(["import", "db", text, ...dir]);
    expect(notDb.exitCode).toBe(2);
    expect(notDb.stderr).toContain(`shortener import: ${text} cannot be read as a SQLite database`);
    const empty = join(target.dataDir, "empty.db");
    new Database(empty).close();
    const notOurs = await runCli(["import", "db", empty, ...dir]);
    expect([notOurs.exitCode, notOurs.stderr.split("\n")[0]]).toEqual([
      2,
      `shortener import: ${empty} is not a shortener database (schema version 0)`,
    ]);
    const badId = await runCli(["import", "db", file, "--data-dir", target.dataDir, "--after-link-id", "two"]);
    expect([badId.exitCode, badId.stderr.split("\n")[0]]).toEqual([
      2,
      'shortener import: --after-link-id "two" is not a whole number from 0',
    ]);
    const badVisitId = await runCli(["import", "db", file, ...dir, "--visits", "--after-visit-id", "-1"]);
    expect([badVisitId.exitCode, badVisitId.stderr.split("\n")[0]]).toEqual([
      2,
      'shortener import: --after-visit-id "-1" is not a whole number from 0',
    ]);
    const noVisits = await runCli(["import", "db", file, ...dir, "--after-visit-id", "3"]);
    expect([noVisits.exitCode, noVisits.stderr.split("\n")[0]]).toEqual([2, "shortener import: --after-visit-id goes with --visits"]);
    // A copy that would leave the file's disk under --min-disk-free is not made.
    const noRoom = await runCli(["import", "db", file, ...dir, "--min-disk-free", "1000TiB"]);
    expect(noRoom.exitCode).toBe(2);
    expect(noRoom.stderr.split("\n")[0]).toMatch(
      new RegExp(
        `^shortener import: copying ${file} \\(.+\\) beside it would leave .+ free on that disk, under --min-disk-free \\(1000 TiB\\): move the file to a disk with room, and name it there$`,
      ),
    );
    expect(readdirSync(old.dataDir).filter((name) => name.startsWith(".import-"))).toEqual([]);
    const noFile = await runCli(["import", "db", "--data-dir", target.dataDir]);
    expect([noFile.exitCode, noFile.stderr.split("\n")[0]]).toEqual([
      2,
      "shortener import: import db needs the database file, e.g. /var/lib/shortener/before-demotion/shortener.db",
    ]);
    const audit = await runCli(["audit", "--json", "--data-dir", target.dataDir]);
    expect(JSON.parse(audit.stdout)).toEqual([]);
  });
});
