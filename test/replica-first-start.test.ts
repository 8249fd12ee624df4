/**
 * A node whose data directory is empty while its replica holds the database (a replacement VM on the old one's
 * replica path, a data disk lost) must not create a new database: Litestream would upload it as the newest state.
 * Real Litestream replicating to a real S3-compatible server on loopback, through the compiled binary.
 */
import { expect, test } from "bun:test";
import { existsSync, readdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { freePort, runCli, TestServer, tempDir } from "./support/binary";
import { cleanEnv, LitestreamProcess, writeLitestreamConfig } from "./support/litestream";
import { syncReplica } from "./support/replica";
import { S3Server } from "./support/s3";

/** A node set up for replication (not started): its S3 server, Litestream config and `shortener serve` settings. */
async function replicatedNode(prefix: string) {
  const dir = tempDir("shortener-first-start-");
  const s3 = await S3Server.start();
  const configPath = join(dir, "litestream.yml");
  const replication = ["--replication", "litestream", "--litestream-config", configPath];
  const server = new TestServer({ args: replication, env: { PATH: cleanEnv().PATH as string } });
  const databasePath = join(server.dataDir, "shortener.db");
  const { socketPath } = writeLitestreamConfig({ dir, databasePath, s3, prefix });
  return {
    server,
    s3,
    configPath,
    replication,
    databasePath,
    socketPath,
    async [Symbol.asyncDispose]() {
      await server[Symbol.asyncDispose]();
      await s3[Symbol.asyncDispose]();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

test("with the replica holding the database, serve and keys refuse to create an empty one; restore --latest brings it back", async () => {
  await using node = await replicatedNode("first-start");
  const { server, configPath, replication, databasePath, socketPath } = node;
  await server.createKey();
  const litestream = await new LitestreamProcess(configPath, socketPath).start();
  await server.start();
  const created = await server.api("/rest/v3/short-urls", {
    method: "POST",
    body: JSON.stringify({ longUrl: "https://example.com/kept", customSlug: "kept" }),
  });
  expect(created.status).toBe(200);
  await syncReplica(socketPath, databasePath);
  expect(await server.stop()).toBe(0);
  expect(await litestream.stop()).toBe(0);

  // The replacement VM: the same replica, an empty data directory, Litestream running and waiting for the file.
  for (const file of readdirSync(server.dataDir)) rmSync(join(server.dataDir, file), { recursive: true, force: true });
  await using _again = await new LitestreamProcess(configPath, socketPath).start();
  for (const command of [["serve"], ["keys", "create", "--name", "second"]]) {
    const refused = await runCli([...command, ...server.settings, ...replication], cleanEnv());
    expect(refused.exitCode, `${command.join(" ")}: ${refused.stderr}`).toBe(70);
    expect(refused.stderr).toContain("but the replica holds one");
    expect(refused.stderr).toContain("Try: shortener restore --latest");
    expect(refused.stdout).toBe("");
    expect(existsSync(databasePath)).toBe(false);
  }

  const restored = await runCli(["restore", "--latest", ...server.settings, "--litestream-config", configPath], cleanEnv(), 120_000);
  expect(restored.exitCode, restored.stderr).toBe(0);
  await server.start();
  const redirect = await fetch(`${server.baseUrl}/kept`, { redirect: "manual" });
  expect(redirect.status).toBe(302);
  expect(redirect.headers.get("location")).toBe("https://example.com/kept");
});

test("with an empty replica, a new node creates its database and starts; with no answer from the store it refuses", async () => {
  await using node = await replicatedNode("brand-new");
  const { server, configPath, replication, socketPath } = node;
  await using _litestream = await new LitestreamProcess(configPath, socketPath).start();
  const key = await runCli(["keys", "create", "--name", "admin", ...server.settings, ...replication], cleanEnv());
  expect(key.exitCode, key.stderr).toBe(0);
  server.apiKey = key.stdout.trim();
  server.keys.push(server.apiKey);
  await server.start();
  expect((await fetch(`${server.baseUrl}/readyz`)).status).toBe(200);
  expect(await server.stop()).toBe(0);

  // A store that does not answer: whether the replica holds the database cannot be told, so nothing is created.
  const other = tempDir("shortener-first-start-");
  await using _other = { [Symbol.asyncDispose]: async () => rmSync(other, { recursive: true, force: true }) };
  const deadConfig = writeLitestreamConfig({
    dir: other,
    databasePath: join(other, "shortener.db"),
    s3: { endpoint: `http://127.0.0.1:${freePort()}` } as S3Server,
    prefix: "unreachable",
  }).configPath;
  const started = performance.now();
  const refused = await runCli(
    ["keys", "create", "--name", "x", "--data-dir", other, "--replication", "litestream", "--litestream-config", deadConfig],
    cleanEnv(),
    60_000,
  );
  expect(refused.exitCode, refused.stderr).toBe(70);
  expect(refused.stderr).toContain("whether the replica holds one cannot be told");
  expect(existsSync(join(other, "shortener.db"))).toBe(false);
  expect(performance.now() - started).toBeLessThan(45_000);
});
