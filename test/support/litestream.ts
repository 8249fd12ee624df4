/** Real Litestream for tests: a config per test replicating to the test S3 server, and a managed process. */

import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { S3_ACCESS_KEY, S3_REGION, S3_SECRET_KEY, type S3Server } from "./s3";
import { shippedFile, substituted } from "./shipped-file";
import { ToolProcess } from "./tool-process";
import { toolPath } from "./tools";

export interface ReplicaOptions {
  /** Directory for the config and socket. */
  dir: string;
  databasePath: string;
  s3: S3Server;
  bucket?: string;
  /** Key prefix inside the bucket (one per test). */
  prefix: string;
}

/** Writes a litestream.yml for one database with an S3 replica and the control socket on; returns its path. */
export function writeLitestreamConfig(options: ReplicaOptions): { configPath: string; socketPath: string } {
  const socketPath = join(options.dir, "litestream.sock");
  const configPath = join(options.dir, "litestream.yml");
  writeFileSync(
    configPath,
    [
      "socket:",
      "  enabled: true",
      `  path: ${socketPath}`,
      "dbs:",
      `  - path: ${options.databasePath}`,
      "    replica:",
      "      type: s3",
      `      endpoint: ${options.s3.endpoint}`,
      `      bucket: ${options.bucket ?? "replica"}`,
      `      path: ${options.prefix}`,
      `      region: ${S3_REGION}`,
      "      force-path-style: true",
      `      access-key-id: ${S3_ACCESS_KEY}`,
      `      secret-access-key: ${S3_SECRET_KEY}`,
      "      sync-interval: 1s",
      "",
    ].join("\n"),
  );
  return { configPath, socketPath };
}

/** The environment Litestream and shortener get in tests: nothing from the session (e.g. no AWS_CA_BUNDLE). */
export function cleanEnv(extra: Record<string, string> = {}): Record<string, string> {
  return { PATH: `${join(toolPath("litestream"), "..")}:${process.env.PATH ?? ""}`, HOME: process.env.HOME ?? "/tmp", ...extra };
}

/** `litestream replicate -config X [-exec CMD]`, started and waited on until its control socket answers. */
export class LitestreamProcess extends ToolProcess {
  constructor(
    readonly configPath: string,
    readonly socketPath: string,
    readonly exec?: string,
    /** Variables beyond cleanEnv's, as a unit's EnvironmentFile gives them (REPLICA_EPOCH from replica.env). */
    readonly env: Record<string, string> = {},
  ) {
    super("litestream");
  }

  start(): Promise<this> {
    const args = [toolPath("litestream"), "replicate", "-config", this.configPath, ...(this.exec ? ["-exec", this.exec] : [])];
    return this.spawn(
      args,
      cleanEnv(this.env),
      async () => (await fetch("http://localhost/info", { unix: this.socketPath } as RequestInit)).ok,
    );
  }
}

/** litestream-follow.service's ExecStart, with the test's Litestream, config and copy in place of the VM's paths. */
export function followCommand(configPath: string, copyPath: string): string[] {
  const unit = "deploy/systemd/litestream-follow.service";
  const line = shippedFile(unit, [])
    .split("\n")
    .find((l) => l.startsWith("ExecStart="));
  if (line === undefined) throw new Error(`${unit} has no ExecStart`);
  const command = substituted(line.slice("ExecStart=".length), `${unit}'s ExecStart`, [
    ["/usr/local/bin/litestream", toolPath("litestream")],
    ["/etc/litestream.yml", configPath],
    ["/var/lib/shortener/shortener.db", copyPath],
  ]);
  return command.split(" ");
}
