/**
 * Webhook management against the compiled binary: the REST API (secrets shown once, 4xx problems naming the
 * field), the CLI, the schema migration, and runbooks/webhook-failures.md run on a node with a dead delivery.
 */
import { Database } from "bun:sqlite";
import { describe, expect, test } from "bun:test";
import { rmSync } from "node:fs";
import { join } from "node:path";
import { NEW_TABLE_MIGRATIONS } from "../src/storage/new-table-migrations";
import { BINARY, runCli, startServer, TestServer, tempDir, waitFor } from "./support/binary";
import { expectStepPasses, parseRunbook } from "./support/runbook-steps";
import { WebhookReceiver } from "./support/webhook-receiver";
import { createWebhook, deliveries, FAST_RETRIES, LOOPBACK_RECEIVERS } from "./support/webhook-steps";

describe("webhook management API", () => {
  test("creation answers the secret once; lists and reads never show it, nor does the server's output", async () => {
    await using server = await startServer();
    const response = await server.api("/rest/v3/webhooks", {
      method: "POST",
      body: JSON.stringify({ url: "https://hooks.example.com/in", events: ["link.visited", "link.created"], name: "crm" }),
    });
    expect(response.status).toBe(201);
    const created = (await response.json()) as Record<string, unknown>;
    expect(created).toEqual({
      id: expect.stringMatching(/^\d+$/),
      name: "crm",
      url: "https://hooks.example.com/in",
      events: ["link.created", "link.visited"],
      dateCreated: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00$/),
      disabled: false,
      previousSecretValidUntil: null,
      deliveriesSummary: { pending: 0, dead: 0 },
      secret: expect.stringMatching(/^whsec_[A-Za-z0-9+/]{43}=$/),
    });
    const secret = created.secret as string;
    const list = await (await server.api("/rest/v3/webhooks")).text();
    const one = await (await server.api(`/rest/v3/webhooks/${created.id}`)).text();
    const { secret: _, ...shown } = created;
    expect(JSON.parse(list)).toEqual({ webhooks: { data: [shown] } });
    expect(JSON.parse(one)).toEqual(shown);
    expect(list + one).not.toContain(secret);

    expect((await server.api(`/rest/v3/webhooks/${created.id}`, { method: "DELETE" })).status).toBe(204);
    expect((await server.api(`/rest/v3/webhooks/${created.id}`)).status).toBe(404);
    expect(server.stdout + server.stderr).not.toContain(secret);
  });

  test.each([
    ["a non-http URL", { url: "ftp://example.com/x", events: ["link.created"] }, "url"],
    ["a missing URL", { events: ["link.created"] }, "url"],
    ["a URL that does not parse", { url: "http://exa mple.com", events: ["link.created"] }, "url"],
    ["a URL with credentials", { url: "https://user:pw@example.com/", events: ["link.created"] }, "url"],
    ["an unknown event", { url: "https://example.com/", events: ["link.exploded"] }, "events"],
    ["no events", { url: "https://example.com/", events: [] }, "events"],
    ["events not a list", { url: "https://example.com/", events: 3 }, "events"],
    ["a name that is not a string", { url: "https://example.com/", events: ["link.created"], name: 5 }, "name"],
    ["a URL to this machine's ops listener", { url: "http://127.0.0.1:8081/control/drain", events: ["link.created"] }, "url"],
    ["a URL to cloud metadata", { url: "http://169.254.169.254/latest/meta-data/", events: ["link.created"] }, "url"],
  ])("creating with %s answers 400 invalid-data naming the field", async (_, body, field) => {
    await using server = await startServer();
    const response = await server.api("/rest/v3/webhooks", { method: "POST", body: JSON.stringify(body) });
    expect(response.status).toBe(400);
    expect(response.headers.get("content-type")).toBe("application/problem+json");
    const problem = (await response.json()) as { type: string; invalidElements: string[] };
    expect(problem.type).toBe("https://shlink.io/api/error/invalid-data");
    expect(problem.invalidElements).toEqual([field]);
  });

  test("refuses other bad requests with 4xx problems: body, ids, query, key and role", async () => {
    await using server = await startServer();
    const readOnly = await server.createKey("reader", "read-only");
    const cases: [string, string, RequestInit, number, string][] = [
      ["POST", "/rest/v3/webhooks", { body: "{nope" }, 400, "malformed-request-body"],
      ["GET", "/rest/v3/webhooks/42", {}, 404, "webhook-not-found"],
      ["GET", "/rest/v3/webhooks/abc", {}, 404, "webhook-not-found"],
      ["DELETE", "/rest/v3/webhooks/42", {}, 404, "webhook-not-found"],
      ["GET", "/rest/v3/webhooks/42/deliveries", {}, 404, "webhook-not-found"],
      ["POST", "/rest/v3/webhooks/42/deliveries/1/retry", {}, 404, "webhook-not-found"],
      ["GET", "/rest/v3/webhooks", { headers: { "X-Api-Key": readOnly } }, 403, "forbidden-operation"],
      ["GET", "/rest/v3/webhooks", { headers: { "X-Api-Key": "" } }, 401, "missing-authentication"],
    ];
    for (const [method, path, init, status, type] of cases) {
      const response = await server.api(path, { method, ...init });
      expect({ path, method, status: response.status }).toEqual({ path, method, status });
      expect(((await response.json()) as { type: string }).type).toBe(`https://shlink.io/api/error/${type}`);
    }
    const created = (await (
      await server.api("/rest/v3/webhooks", {
        method: "POST",
        body: JSON.stringify({ url: "https://e.example/", events: ["link.created"] }),
      })
    ).json()) as { id: string };
    const badQueries: [string, string][] = [
      ["state=bogus", "state"],
      ["itemsPerPage=0", "itemsPerPage"],
      ["beforeId=x", "beforeId"],
    ];
    for (const [query, field] of badQueries) {
      const response = await server.api(`/rest/v3/webhooks/${created.id}/deliveries?${query}`);
      expect(response.status).toBe(400);
      expect(((await response.json()) as { invalidElements: string[] }).invalidElements).toEqual([field]);
    }
  });
});

describe("secret rotation", () => {
  test("a new secret is shown once; both sign deliveries for a day, so a receiver on either verifies them", async () => {
    using receiver = new WebhookReceiver();
    await using server = await startServer({ env: FAST_RETRIES });
    const id = await createWebhook(server, receiver, ["link.created"]);
    const oldSecret = receiver.secret;
    const response = await server.api(`/rest/v3/webhooks/${id}/rotate-secret`, { method: "POST" });
    expect(response.status).toBe(200);
    const rotated = (await response.json()) as { secret: string; previousSecretValidUntil: string };
    expect(rotated.secret).toMatch(/^whsec_/);
    expect(rotated.secret).not.toBe(oldSecret);
    const until = Date.parse(rotated.previousSecretValidUntil);
    expect(until - Date.now()).toBeGreaterThan(86_400_000 - 60_000);
    expect(until - Date.now()).toBeLessThanOrEqual(86_400_000);
    expect(JSON.stringify(await (await server.api(`/rest/v3/webhooks/${id}`)).json())).not.toContain(rotated.secret);

    // The receiver still on the old secret verifies (test/support/webhook-receiver.ts refuses what it cannot).
    const post = (code: string) =>
      server.api("/rest/v3/short-urls", { method: "POST", body: JSON.stringify({ longUrl: "https://example.com/r", customSlug: code }) });
    await post("rot-1");
    await waitFor("accepted with the old secret", () => receiver.accepted.length === 1);
    receiver.secret = rotated.secret;
    await post("rot-2");
    await waitFor("accepted with the new secret", () => receiver.accepted.length === 2);
    expect(receiver.attempts.filter((a) => !a.verified)).toEqual([]);

    // The CLI rotates too, printing only the secret; now the first one no longer signs.
    const cli = await runCli(["webhooks", "rotate-secret", id, "--data-dir", server.dataDir]);
    expect(cli.exitCode).toBe(0);
    expect(cli.stdout).toMatch(/^whsec_[A-Za-z0-9+/]{43}=\n$/);
    receiver.secret = oldSecret;
    await post("rot-3");
    await waitFor("an attempt the first secret cannot verify", () => receiver.attempts.some((a) => !a.verified));
    expect(receiver.accepted).toHaveLength(2);
  });
});

describe("on a standby", () => {
  test("webhook writes are refused with 503 and Retry-After, and by the CLI with exit 2; reads work", async () => {
    const primary = await startServer();
    const created = await primary.api("/rest/v3/webhooks", {
      method: "POST",
      body: JSON.stringify({ url: "https://hooks.example/in", events: ["link.created"] }),
    });
    const { id } = (await created.json()) as { id: string };
    await primary.stop();
    const standby = new TestServer({ dataDir: primary.dataDir, args: ["--role", "standby"] });
    standby.apiKey = primary.apiKey;
    try {
      await standby.start();
      const writes = await Promise.all([
        standby.api("/rest/v3/webhooks", { method: "POST", body: JSON.stringify({ url: "https://h.example/", events: ["link.created"] }) }),
        standby.api(`/rest/v3/webhooks/${id}`, { method: "PATCH", body: JSON.stringify({ disabled: true }) }),
        standby.api(`/rest/v3/webhooks/${id}`, { method: "DELETE" }),
      ]);
      for (const response of writes) {
        expect(response.status).toBe(503);
        expect(response.headers.get("retry-after")).not.toBeNull();
      }
      expect(((await (await standby.api("/rest/v3/webhooks")).json()) as { webhooks: { data: unknown[] } }).webhooks.data).toHaveLength(1);
      // The CLI too: writes exit 2 before opening the database, reads work.
      const env = { SHORTENER_ROLE: "standby" };
      const dir = ["--data-dir", standby.dataDir];
      for (const args of [
        ["create", "--url", "https://h.example/", "--events", "link.created"],
        ["disable", id],
        ["delete", id],
      ]) {
        const refused = await runCli(["webhooks", ...args, ...dir], env);
        expect([refused.exitCode, refused.stderr.split("\n")[0]]).toEqual([
          2,
          `shortener webhooks: a standby takes no writes: run \`shortener webhooks ${args[0]}\` on the primary (what it writes reaches this node with the replica)`,
        ]);
      }
      const listed = await runCli(["webhooks", "list", "--json", ...dir], env);
      expect(listed.exitCode).toBe(0);
      expect(JSON.parse(listed.stdout)).toHaveLength(1);
    } finally {
      await standby[Symbol.asyncDispose]();
      await primary[Symbol.asyncDispose]();
    }
  });
});

describe("shortener webhooks (CLI)", () => {
  test("create prints only the secret; a running server sends to it at once; list shows it without the secret; delete removes it", async () => {
    using receiver = new WebhookReceiver();
    await using server = await startServer({ env: FAST_RETRIES });
    const dir = ["--data-dir", server.dataDir];
    const created = await runCli(
      ["webhooks", "create", "--url", receiver.url, "--events", "link.created", "--name", "cli", ...dir],
      LOOPBACK_RECEIVERS,
    );
    expect(created.exitCode).toBe(0);
    expect(created.stdout).toMatch(/^whsec_[A-Za-z0-9+/]{43}=\n$/);
    receiver.secret = created.stdout.trim();

    // The server notices a webhook created by another process at its next event.
    const first = await server.api("/rest/v3/short-urls", {
      method: "POST",
      body: JSON.stringify({ longUrl: "https://example.com/c", customSlug: "cli-1" }),
    });
    expect(first.status).toBe(200);
    await waitFor("the event accepted", () => receiver.accepted.length === 1);
    expect(receiver.accepted[0]).toMatchObject({ type: "link.created", link: "/cli-1" });

    const list = await runCli(["webhooks", "list", "--json", ...dir]);
    expect(list.exitCode).toBe(0);
    const [webhook] = JSON.parse(list.stdout) as { id: number; url: string; events: string[]; name: string }[];
    expect(webhook).toMatchObject({ url: receiver.url, events: ["link.created"], name: "cli" });
    expect(list.stdout).not.toContain(receiver.secret);
    const table = await runCli(["webhooks", "list", ...dir]);
    expect(table.stdout).toContain(receiver.url);
    expect(table.stdout).not.toContain(receiver.secret);

    const deliveries = await runCli(["webhooks", "deliveries", String(webhook?.id), "--state", "delivered", "--json", ...dir]);
    expect(JSON.parse(deliveries.stdout)).toEqual([expect.objectContaining({ eventType: "link.created", state: "delivered" })]);

    expect((await runCli(["webhooks", "delete", String(webhook?.id), ...dir])).exitCode).toBe(0);
    expect(JSON.parse((await runCli(["webhooks", "list", "--json", ...dir])).stdout)).toEqual([]);
    // Deleted in another process: the server stores no event for the next link.
    // (Had it kept the deleted webhook's id, the outbox row's foreign key would have failed the create.)
    const afterDelete = await server.api("/rest/v3/short-urls", {
      method: "POST",
      body: JSON.stringify({ longUrl: "https://example.com/d", customSlug: "cli-2" }),
    });
    expect(afterDelete.status).toBe(200);
    const db = new Database(join(server.dataDir, "shortener.db"), { readonly: true });
    try {
      expect(db.query("SELECT count(*) AS n FROM webhook_outbox").get()).toEqual({ n: 0 });
    } finally {
      db.close();
    }
  });

  test.each<[string[], string]>([
    [["webhooks", "create", "--url", "http://192.0.2.1:9/x", "--events", "link.nope"], "events"],
    [["webhooks", "create", "--url", "http://127.0.0.1:8081/control/drain", "--events", "link.created"], "--webhook-allow-loopback"],
    [["webhooks", "create", "--url", "gopher://x", "--events", "link.created"], "url"],
    [["webhooks", "delete", "77"], "77"],
    [["webhooks", "delete", "x"], '"x" is not a webhook ID'],
    [["webhooks", "frobnicate"], 'unknown webhooks action "frobnicate"'],
  ])("%p exits 2 with a message naming the problem", async (args, named) => {
    const dataDir = tempDir();
    try {
      const result = await runCli([...args, "--data-dir", dataDir]);
      expect(result.exitCode).toBe(2);
      expect(result.stderr).toContain(named);
      expect(result.stderr).toContain("usage: shortener webhooks");
      expect(result.stdout).toBe("");
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});

describe("schema v4", () => {
  test("on a database from before webhooks, check names the pending migration and serve adds the tables", async () => {
    const dataDir = tempDir();
    try {
      expect((await runCli(["keys", "list", "--data-dir", dataDir])).exitCode).toBe(0);
      const db = new Database(join(dataDir, "shortener.db"));
      // Schema 3 as it was: no webhooks (4), visit counters still in short_urls (5), no ordering (6) or crawlable (7)
      // indexes, visits indexed by link first (8), day roll-ups keyed by link first (9), none by domain (10), no redirect
      // rules (11), domain redirects (12), or any table of 14 on (each a new table only).
      for (const { sql } of NEW_TABLE_MIGRATIONS)
        for (const [, table] of sql.matchAll(/CREATE TABLE (\w+)/g)) db.exec(`DROP TABLE ${table}`);
      db.exec(`DROP TABLE domain_redirects; DROP TABLE redirect_rules; DROP TRIGGER short_urls_deleted; DROP TABLE domain_visit_days;
        DROP TABLE webhook_outbox; DROP TABLE webhooks; DROP TABLE link_visits;
        DROP INDEX short_urls_short_code; DROP INDEX short_urls_title; DROP INDEX short_urls_crawlable;
        DROP INDEX visits_link; CREATE INDEX visits_short_url ON visits(short_url_id, id, potential_bot);
        DROP TABLE visit_days;
        CREATE TABLE visit_days (short_url_id INTEGER NOT NULL, day INTEGER NOT NULL, total INTEGER NOT NULL DEFAULT 0,
          bots INTEGER NOT NULL DEFAULT 0, visitors INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (short_url_id, day)) STRICT, WITHOUT ROWID;
        CREATE INDEX visit_days_day ON visit_days(day);
        ALTER TABLE short_urls ADD COLUMN visits_total INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE short_urls ADD COLUMN visits_bots INTEGER NOT NULL DEFAULT 0;
        PRAGMA user_version = 3`);
      db.close();
      const check = await runCli(["check", "--data-dir", dataDir, "--ops-listen", "127.0.0.1:1"]);
      expect(check.exitCode).toBe(1);
      expect(check.stdout).toMatch(/schema version 3, this binary expects \d+ \(\d+ migration\(s\) pending\)/);
      expect(check.stdout).not.toContain("no such table");
      await using server = await startServer({ dataDir });
      expect((await server.api("/rest/v3/webhooks")).status).toBe(200);
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});

describe("runbooks/webhook-failures.md", () => {
  test("every command runs, exits and prints as documented, on a node with a dead delivery", async () => {
    using receiver = new WebhookReceiver();
    receiver.mode = { kind: "down" };
    await using server = await startServer({ env: { ...FAST_RETRIES, SHORTENER_WEBHOOK_MAX_ATTEMPTS: "2" } });
    // The situation the runbook is for: webhook 1's first delivery (1) is dead, and its receiver works again.
    expect(await createWebhook(server, receiver, ["link.created"])).toBe("1");
    await server.api("/rest/v3/short-urls", {
      method: "POST",
      body: JSON.stringify({ longUrl: "https://example.com/rb", customSlug: "rb" }),
    });
    await waitFor("a dead letter", async () => (await deliveries(server, "1", "&state=dead")).length === 1);
    const [dead] = await deliveries(server, "1", "&state=dead");
    expect(dead?.id).toBe("1");
    receiver.mode = { kind: "up" };

    const steps = parseRunbook("webhook-failures.md");
    expect(steps.filter((s) => s.kind === "unit")).toEqual([]);
    // The runbook writes blue's addresses (deploy/systemd/blue.env.example); they stand for this node's.
    const addresses: [string, string][] = [
      ["127.0.0.1:8081", `127.0.0.1:${server.opsPort}`],
      ["127.0.0.1:8080", `127.0.0.1:${server.port}`],
    ];
    const map = (text: string) => addresses.reduce((t, [from, to]) => t.replaceAll(from, to), text);
    const env = {
      PATH: process.env.PATH ?? "",
      HOME: process.env.HOME ?? "/tmp",
      SHORTENER_BIN: BINARY,
      SHORTENER_DATA_DIR: server.dataDir,
      SHORTENER_LISTEN: `127.0.0.1:${server.port}`,
      SHORTENER_OPS_LISTEN: `127.0.0.1:${server.opsPort}`,
      SHORTENER_BASE_URL: server.baseUrl,
      NODE: server.baseUrl,
    };
    for (const step of steps) {
      await expectStepPasses(step, env, map);
      // The retried delivery reaches its receiver before the runbook goes on (its last step deletes the webhook).
      if (step.command.includes("webhooks retry")) await waitFor("the retried delivery accepted", () => receiver.accepted.length === 1);
    }
    expect(receiver.accepted.map((r) => r.id)).toEqual([dead?.messageId as string]);
    expect(JSON.parse((await runCli(["webhooks", "list", "--json", "--data-dir", server.dataDir])).stdout)).toEqual([]);
  });
});
