/**
 * A node as deployed: dist/shortener replicated by a real `litestream replicate` to a real S3-compatible server on
 * loopback, with a webhook receiver on loopback. Litestream takes the database's write lock for a few milliseconds at
 * each checkpoint; under steady creates, redirects and webhook deliveries that must be waited out in silence. Before,
 * the webhook dispatcher logged `webhook_dispatch_failed` at error level almost every second it met that lock.
 */
import { expect, test } from "bun:test";
import { mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { TestServer, tempDir } from "./support/binary";
import { LitestreamProcess, writeLitestreamConfig } from "./support/litestream";
import { S3Server } from "./support/s3";
import { WebhookReceiver } from "./support/webhook-receiver";
import { createWebhook, LOOPBACK_RECEIVERS } from "./support/webhook-steps";

const SECONDS = 20;

test(`a replicated node with webhooks, under ${SECONDS} s of creates and redirects, logs no warning and no error`, async () => {
  const root = tempDir("shortener-steady-");
  await using _root = { [Symbol.asyncDispose]: async () => rmSync(root, { recursive: true, force: true }) };
  await using s3 = await S3Server.start();
  const dataDir = join(root, "node");
  mkdirSync(dataDir);
  const databasePath = join(dataDir, "shortener.db");
  const { configPath, socketPath } = writeLitestreamConfig({ dir: dataDir, databasePath, s3, prefix: "steady" });
  await using litestream = await new LitestreamProcess(configPath, socketPath).start();
  await using server = new TestServer({
    dataDir,
    args: ["--replication", "litestream", "--litestream-config", configPath],
    env: LOOPBACK_RECEIVERS,
  });
  server.apiKey = await server.createKey();
  await server.start();
  using receiver = new WebhookReceiver();
  await createWebhook(server, receiver, ["link.created", "link.visited"]);

  const codes: string[] = [];
  const refused: string[] = [];
  let redirects = 0;
  const until = Date.now() + SECONDS * 1000;
  const creator = async () => {
    for (let i = 0; i < SECONDS * 100 && Date.now() < until; i++) {
      const response = await server.api("/rest/v3/short-urls", {
        method: "POST",
        body: JSON.stringify({ longUrl: `https://example.com/${i}` }),
      });
      if (response.status === 200) codes.push(((await response.json()) as { shortCode: string }).shortCode);
      else refused.push(`create: ${response.status} ${await response.text()}`);
      await Bun.sleep(20);
    }
  };
  const visitor = async () => {
    for (let i = 0; i < SECONDS * 1000 && Date.now() < until; i++) {
      const code = codes[i % Math.max(1, codes.length)];
      if (code !== undefined) {
        const response = await fetch(`${server.baseUrl}/${code}`, { redirect: "manual" });
        if (response.status === 302) redirects++;
        else refused.push(`redirect: ${response.status}`);
      }
      await Bun.sleep(2);
    }
  };
  await Promise.all([creator(), visitor(), visitor()]);

  expect(refused).toEqual([]);
  expect(codes.length).toBeGreaterThan(SECONDS * 10);
  expect(redirects).toBeGreaterThan(SECONDS * 100);
  // Deliveries went on meanwhile (each result written back through the lock Litestream takes).
  expect(receiver.accepted.length).toBeGreaterThan(codes.length);
  expect(receiver.attempts.filter((a) => !a.verified)).toEqual([]);
  const complaints = (server.stdout + server.stderr).split("\n").filter((line) => /"level":"(warn|error)"/.test(line));
  expect(complaints).toEqual([]);
}, 120_000);
