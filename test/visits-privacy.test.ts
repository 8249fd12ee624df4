/**
 * Visit privacy and location, through the binary: a server behind a trusted proxy (X-Forwarded-For names the
 * visitor) with a tiny MaxMind-format database locates each visit when it is written, stores the address
 * anonymised by default, and stores no address, referrer or user agent when those switches are off. Addresses
 * in --skip-tracking-from are redirected but neither recorded nor counted; with --track-orphan-visits off, no orphan
 * visit is recorded. Checked in the database file itself.
 */
import { Database } from "bun:sqlite";
import { afterAll, describe, expect, test } from "bun:test";
import { rmSync } from "node:fs";
import { join } from "node:path";
import { runCli, startServer, type TestServer, tempDir, waitFor } from "./support/binary";
import { cityRecord, writeMmdb } from "./support/mmdb";

const dir = tempDir("visits-privacy-");
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const GEOIP = writeMmdb(join(dir, "city.mmdb"), [
  {
    network: "203.0.113.0/24",
    data: cityRecord({
      countryCode: "DE",
      country: "Germany",
      region: "Land Berlin",
      city: "Berlin",
      latitude: 52.5244,
      longitude: 13.4105,
      timezone: "Europe/Berlin",
    }),
  },
  {
    network: "2001:db8::/32",
    data: cityRecord({ countryCode: "FR", country: "France", latitude: 48.8566, longitude: 2.3522, timezone: "Europe/Paris" }),
  },
]);
const BEHIND_PROXY = ["--trusted-proxies", "127.0.0.0/8", "--visit-flush-interval", "100ms", "--geoip-db", GEOIP];
const HEADERS = { Referer: "https://news.example/item?id=1", "User-Agent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/133.0" };

interface VisitRow {
  remote_addr: string | null;
  referer: string | null;
  user_agent: string | null;
  country_code: string | null;
  country_name: string | null;
  region_name: string | null;
  city_name: string | null;
  latitude: number | null;
  longitude: number | null;
  timezone: string | null;
}

async function link(server: TestServer, slug: string): Promise<void> {
  const response = await server.api("/rest/v3/short-urls", {
    method: "POST",
    body: JSON.stringify({ longUrl: `https://example.com/${slug}`, customSlug: slug }),
  });
  expect(response.status).toBe(200);
}

async function visitFrom(server: TestServer, slug: string, ip: string): Promise<void> {
  const response = await fetch(`${server.baseUrl}/${slug}`, { redirect: "manual", headers: { ...HEADERS, "X-Forwarded-For": ip } });
  expect(response.status).toBe(302);
}

function query<T>(server: TestServer, sql: string, ...params: string[]): T[] {
  const db = new Database(join(server.dataDir, "shortener.db"), { readonly: true });
  try {
    return db.query(sql).all(...params) as T[];
  } finally {
    db.close();
  }
}

/** The raw visit rows of a link, once the flush has written `count` of them. */
async function rowsOf(server: TestServer, slug: string, count: number): Promise<VisitRow[]> {
  const sql = "SELECT v.* FROM visits v JOIN short_urls s ON s.id = v.short_url_id WHERE s.short_code = ? ORDER BY v.id";
  await waitFor(`${count} visit rows of ${slug}`, () => query(server, sql, slug).length >= count, 10_000);
  return query<VisitRow>(server, sql, slug);
}

describe("visit location and privacy", () => {
  test("locates the visitor a trusted proxy names and stores the address anonymised, with referrer and agent", async () => {
    await using server = await startServer({ args: BEHIND_PROXY });
    await link(server, "located");
    await visitFrom(server, "located", "203.0.113.77");
    await visitFrom(server, "located", "2001:db8:aa:bb::1");
    await visitFrom(server, "located", "192.0.2.9");
    const [berlin, paris, unknown] = await rowsOf(server, "located", 3);
    expect(berlin).toMatchObject({
      remote_addr: "203.0.113.0",
      referer: HEADERS.Referer,
      user_agent: HEADERS["User-Agent"],
      country_code: "DE",
      country_name: "Germany",
      region_name: "Land Berlin",
      city_name: "Berlin",
      latitude: 52.5244,
      longitude: 13.4105,
      timezone: "Europe/Berlin",
    });
    expect(paris).toMatchObject({ remote_addr: "2001:db8:aa::", country_code: "FR", city_name: null, timezone: "Europe/Paris" });
    expect(unknown).toMatchObject({ remote_addr: "192.0.2.0", country_code: null, latitude: null });
  });

  test("with anonymisation off the whole address is stored", async () => {
    await using server = await startServer({ args: [...BEHIND_PROXY, "--anonymize-remote-addr", "false"] });
    await link(server, "whole");
    await visitFrom(server, "whole", "203.0.113.77");
    expect((await rowsOf(server, "whole", 1))[0]?.remote_addr).toBe("203.0.113.77");
  });

  test("with the track switches off (set as variables) no address, referrer or agent is stored, yet the visit is located", async () => {
    await using server = await startServer({
      args: BEHIND_PROXY,
      env: { SHORTENER_TRACK_REMOTE_ADDR: "false", SHORTENER_TRACK_REFERRER: "false", SHORTENER_TRACK_USER_AGENT: "false" },
    });
    await link(server, "private");
    await visitFrom(server, "private", "203.0.113.77");
    expect((await rowsOf(server, "private", 1))[0]).toMatchObject({
      remote_addr: null,
      referer: null,
      user_agent: null,
      country_code: "DE",
      city_name: "Berlin",
    });
  });

  test("visits from --skip-tracking-from ranges are redirected but neither recorded nor counted, orphans included", async () => {
    await using server = await startServer({ args: [...BEHIND_PROXY, "--skip-tracking-from", "198.51.100.0/24, 2001:db8:ff::/48"] });
    await link(server, "office");
    await visitFrom(server, "office", "198.51.100.5");
    await visitFrom(server, "office", "2001:db8:ff::7");
    const orphan = await fetch(`${server.baseUrl}/no-such-code`, { headers: { "X-Forwarded-For": "198.51.100.5" } });
    expect(orphan.status).toBe(404);
    await visitFrom(server, "office", "203.0.113.9");
    // The tracked visit came last: once its row is written, the skipped ones would have been too.
    expect((await rowsOf(server, "office", 1)).map((row) => row.remote_addr)).toEqual(["203.0.113.0"]);
    expect(
      query<{ n: number }>(
        server,
        "SELECT v.total AS n FROM short_urls s JOIN link_visits v ON v.short_url_id = s.id WHERE s.short_code = 'office'",
      )[0]?.n,
    ).toBe(1);
    expect(query<{ n: number }>(server, "SELECT count(*) AS n FROM visits WHERE orphan_type IS NOT NULL")[0]?.n).toBe(0);
  });

  test("with --track-orphan-visits false, unknown codes, the base URL and other paths answer 404 and record nothing", async () => {
    await using server = await startServer({ args: BEHIND_PROXY, env: { SHORTENER_TRACK_ORPHAN_VISITS: "false" } });
    await link(server, "known");
    for (const path of ["/", "/no-such-code", "/wp-login.php/x", "/no-such-code/"]) {
      expect((await fetch(`${server.baseUrl}${path}`, { headers: HEADERS })).status).toBe(404);
    }
    await visitFrom(server, "known", "203.0.113.9");
    // The link's visit came last: once its row is written, the orphan ones would have been too.
    expect(await rowsOf(server, "known", 1)).toHaveLength(1);
    expect(query<{ n: number }>(server, "SELECT count(*) AS n FROM visits WHERE orphan_type IS NOT NULL")[0]?.n).toBe(0);
    const orphans = (await (await server.api("/rest/v3/visits/orphan")).json()) as { visits: { pagination: { totalItems: number } } };
    expect(orphans.visits.pagination.totalItems).toBe(0);
  });

  test("a missing or invalid --geoip-db stops the command with exit 1 and one line naming the setting", async () => {
    const missing = await runCli(["serve", "--data-dir", join(dir, "data"), "--geoip-db", join(dir, "GeoLite2-City.mmdb")]);
    expect(missing.exitCode).toBe(1);
    expect(missing.stderr).toBe(`shortener: invalid setting --geoip-db: cannot read ${join(dir, "GeoLite2-City.mmdb")}: no such file\n`);
    const invalid = await runCli(["check", "--data-dir", join(dir, "data")], { SHORTENER_GEOIP_DB: join(dir, "..") });
    expect(invalid.exitCode).toBe(1);
    expect(invalid.stdout).toContain("invalid setting SHORTENER_GEOIP_DB:");
  });
});
