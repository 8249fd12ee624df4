/** Real Litestream for tests: a config per test replicating to the test S3 server, and a managed process. */

import { writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { collectText, waitFor } from "./binary";
import { S3_ACCESS_KEY, S3_REGION, S3_SECRET_KEY, type S3Server } from "./s3";
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
export class LitestreamProcess implements AsyncDisposable {
  proc: Subprocess<"ignore", "pipe", "pipe"> | null = null;
  output = "";

  constructor(
    readonly configPath: string,
    readonly socketPath: string,
    readonly exec?: string,
  ) {}

  async start(): Promise<this> {
    const args = [toolPath("litestream"), "replicate", "-config", this.configPath, ...(this.exec ? ["-exec", this.exec] : [])];
    this.proc = Bun.spawn(args, { env: cleanEnv(), stdin: "ignore", stdout: "pipe", stderr: "pipe" });
    void this.#collect(this.proc.stdout);
    void this.#collect(this.proc.stderr);
    await waitFor("litestream's control socket", async () => {
      if (this.proc?.exitCode !== null) throw new Error(`litestream exited (${this.proc?.exitCode}): ${this.output}`);
      try {
        return (await fetch("http://localhost/info", { unix: this.socketPath } as RequestInit)).ok;
      } catch {
        return false;
      }
    });
    return this;
  }

  #collect(stream: ReadableStream<Uint8Array>): Promise<void> {
    return collectText(stream, (text) => {
      this.output += text;
    });
  }

  async stop(signal: NodeJS.Signals = "SIGTERM", timeoutMs = 20_000): Promise<number> {
    const proc = this.proc;
    if (proc === null || proc.exitCode !== null) return proc?.exitCode ?? 0;
    proc.kill(signal);
    const timer = setTimeout(() => proc.kill("SIGKILL"), timeoutMs);
    const code = await proc.exited;
    clearTimeout(timer);
    return code;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }
}
