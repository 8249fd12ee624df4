import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { controlSocketFor, expandEnv, leaseLocationFor, readLitestreamConfig, shipmentLocationFor } from "./litestream-config";

const dir = mkdtempSync(join(tmpdir(), "ls-config-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let files = 0;

/** A config file holding `text`, each in its own name under one temp dir removed after the tests. */
function file(text: string): string {
  const path = join(dir, `litestream-${++files}.yml`);
  writeFileSync(path, text);
  return path;
}

describe("readLitestreamConfig", () => {
  test("reads databases and the control socket, expanding environment references", () => {
    const config = readLitestreamConfig(
      file("socket:\n  enabled: true\n  path: ${SOCK}\ndbs:\n  - path: $DATA/shortener.db\n    replica:\n      type: s3\n"),
      { SOCK: "/run/ls.sock", DATA: "/var/lib/shortener" },
    );
    expect(config.socketPath).toBe("/run/ls.sock");
    expect(config.databases).toEqual(["/var/lib/shortener/shortener.db"]);
  });

  test("has no socket unless it is enabled", () => {
    expect(readLitestreamConfig(file("dbs:\n  - path: /a.db\n"), {}).socketPath).toBeNull();
  });

  test("fails with a hint for a missing file, bad YAML, or no databases", () => {
    expect(() => readLitestreamConfig("/nonexistent/litestream.yml", {})).toThrow(/--litestream-config/);
    expect(() => readLitestreamConfig(file("dbs: [\n"), {})).toThrow(/not valid YAML/);
    expect(() => readLitestreamConfig(file("socket: {}\n"), {})).toThrow(/lists no database/);
  });

  test("finds each replica's S3 server as Litestream does: endpoint, the url's endpoint, else AWS in its region", () => {
    const endpointOf = (replica: string) =>
      readLitestreamConfig(file(`dbs:\n  - path: /a.db\n    ${replica}\n`), { EP: "http://127.0.0.1:9000" }).endpoints.get("/a.db");
    expect(endpointOf("replica: {type: s3, endpoint: $EP, bucket: b}")).toBe("http://127.0.0.1:9000");
    expect(endpointOf("replica: {url: 's3://b/p?endpoint=minio.lan:9000&region=x'}")).toBe("https://minio.lan:9000");
    expect(endpointOf("replica: {url: 's3://b/p?endpoint=http://10.0.0.2:9000'}")).toBe("http://10.0.0.2:9000");
    expect(endpointOf("replica: {type: s3, bucket: b, region: eu-central-1}")).toBe("https://s3.eu-central-1.amazonaws.com");
    expect(endpointOf("replica: {url: 's3://b/p'}")).toBe("https://s3.us-east-1.amazonaws.com");
    expect(endpointOf("replicas: [{type: s3, endpoint: 'http://old:9000'}]")).toBe("http://old:9000");
    expect(endpointOf("replica: {type: file, path: /backup}")).toBeNull();
    expect(endpointOf("replica: {url: 'file:///backup'}")).toBeNull();
    expect(endpointOf("busy-timeout: 5s")).toBeNull();
  });

  test("names the variables a replica's server comes from when they are unset, rather than guess the server", () => {
    const config = readLitestreamConfig(
      file("dbs:\n  - path: /a.db\n    replica: {type: s3, endpoint: $EP, region: '${REGION}', bucket: $B}\n"),
      {
        REGION: "eu-west-1",
      },
    );
    expect(config.endpoints.get("/a.db")).toBeNull();
    expect(config.endpointNeeds.get("/a.db")).toEqual(["EP"]);
    const set = readLitestreamConfig(file("dbs:\n  - path: /a.db\n    replica: {type: s3, endpoint: $EP}\n"), {
      EP: "http://10.0.0.9:9000",
    });
    expect(set.endpoints.get("/a.db")).toBe("http://10.0.0.9:9000");
    expect(set.endpointNeeds.get("/a.db")).toEqual([]);
  });

  test("expands unset variables to empty strings", () => {
    expect(expandEnv("a${X}b$Y", {})).toBe("ab");
  });
});

describe("controlSocketFor", () => {
  const socketed = "socket:\n  enabled: true\n  path: /run/litestream/litestream.sock\ndbs:\n  - path: /var/lib/shortener/shortener.db\n";

  test("returns the socket of a config that lists the database", () => {
    expect(controlSocketFor(file(socketed), "/var/lib/shortener/./shortener.db", {})).toBe("/run/litestream/litestream.sock");
  });

  test("refuses a config that does not list the database, naming the path to set", () => {
    expect(() => controlSocketFor(file(socketed), "/srv/other.db", {})).toThrow(/does not list \/srv\/other\.db.*Try: set dbs\[\]\.path/);
  });

  test("refuses a config without an enabled control socket", () => {
    expect(() => controlSocketFor(file("dbs:\n  - path: /a.db\n"), "/a.db", {})).toThrow(/has no control socket/);
  });
});

describe("leaseLocationFor", () => {
  const s3 = (path: string, extra = "") =>
    file(
      `dbs:\n  - path: /a.db\n    replica:\n      type: s3\n      endpoint: \${EP}\n      bucket: backups\n      path: ${path}\n${extra}`,
    );
  const env = {
    EP: "http://127.0.0.1:9000",
    BASE: "shortener/prod",
    LITESTREAM_ACCESS_KEY_ID: "id",
    LITESTREAM_SECRET_ACCESS_KEY: "secret",
  };

  test("puts the lease beside the epochs of a replica whose path ends in epoch-${REPLICA_EPOCH}, with the replica's store and credentials", () => {
    expect(leaseLocationFor(s3("${BASE}/epoch-${REPLICA_EPOCH}"), "/a.db", env)).toEqual({
      endpoint: "http://127.0.0.1:9000",
      bucket: "backups",
      region: "us-east-1",
      accessKeyId: "id",
      secretAccessKey: "secret",
      key: "shortener/prod/lease.json",
    });
    const named = leaseLocationFor(
      s3("epoch-$REPLICA_EPOCH", "      region: eu-central-1\n      access-key-id: own\n      secret-access-key: own-secret\n"),
      "/a.db",
      env,
    );
    expect(named).toMatchObject({ key: "lease.json", region: "eu-central-1", accessKeyId: "own", secretAccessKey: "own-secret" });
  });

  test("reads a replica given as an s3:// url", () => {
    const config = file("dbs:\n  - path: /a.db\n    replica:\n      url: s3://bucket-b/p/epoch-${REPLICA_EPOCH}?endpoint=127.0.0.1:9000\n");
    expect(leaseLocationFor(config, "/a.db", env)).toMatchObject({
      bucket: "bucket-b",
      key: "p/lease.json",
      endpoint: "https://127.0.0.1:9000",
    });
  });

  test("has no lease for a replica without epochs, or one not on S3, and refuses a config that does not list the database", () => {
    expect(leaseLocationFor(s3("${BASE}"), "/a.db", env)).toBeNull();
    expect(leaseLocationFor(s3("${BASE}/epoch-3"), "/a.db", env)).toBeNull();
    expect(
      leaseLocationFor(
        file("dbs:\n  - path: /a.db\n    replica:\n      type: file\n      path: /b/epoch-${REPLICA_EPOCH}\n"),
        "/a.db",
        env,
      ),
    ).toBeNull();
    expect(() => leaseLocationFor(s3("${BASE}/epoch-${REPLICA_EPOCH}"), "/other.db", env)).toThrow(/does not list \/other\.db/);
  });

  test("standbys' visits go beside the lease, or beside a replica path without epochs (never inside Litestream's own); none off S3", () => {
    expect(shipmentLocationFor(s3("${BASE}/epoch-${REPLICA_EPOCH}"), "/a.db", env)).toEqual({
      endpoint: "http://127.0.0.1:9000",
      bucket: "backups",
      region: "us-east-1",
      accessKeyId: "id",
      secretAccessKey: "secret",
      prefix: "shortener/prod/standby-visits/",
    });
    expect(shipmentLocationFor(s3("${BASE}"), "/a.db", env)).toMatchObject({ prefix: "shortener/prod-standby-visits/" });
    expect(shipmentLocationFor(s3("epoch-${REPLICA_EPOCH}"), "/a.db", env)).toMatchObject({ prefix: "standby-visits/" });
    const onFile = file("dbs:\n  - path: /a.db\n    replica:\n      type: file\n      path: /b/epoch-${REPLICA_EPOCH}\n");
    expect(shipmentLocationFor(onFile, "/a.db", env)).toBeNull();
    expect(() => shipmentLocationFor(s3("${BASE}"), "/other.db", env)).toThrow(/does not list \/other\.db/);
  });
});
