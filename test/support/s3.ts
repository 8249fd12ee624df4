/**
 * A real S3-compatible server for tests: moto's server (the one Litestream's own CI uses), pinned and installed into
 * .tools/bin by scripts/setup-tools.ts, on a free loopback port with a fresh bucket. Its data lives in memory, so an
 * outage is simulated by pausing the process (SIGSTOP: requests hang, as with a dead network path) and resuming it.
 */

import { afterAll, beforeAll } from "bun:test";
import { rmSync } from "node:fs";
import type { Subprocess } from "bun";
import { type LeaseLocation, LeaseStore } from "../../src/storage/replica-lease";
import { freePort, tempDir, waitFor } from "./binary";
import { toolPath } from "./tools";

export const S3_ACCESS_KEY = "shortener-test";
export const S3_SECRET_KEY = "shortener-test-secret";
export const S3_REGION = "us-east-1";

export class S3Server implements AsyncDisposable {
  readonly port = freePort();
  readonly endpoint = `http://127.0.0.1:${this.port}`;
  #proc: Subprocess<"ignore", "pipe", "pipe"> | null = null;
  #paused = false;

  static async start(bucket = "replica"): Promise<S3Server> {
    const server = new S3Server();
    await server.#start();
    await server.createBucket(bucket);
    return server;
  }

  async #start(): Promise<void> {
    this.#proc = Bun.spawn([toolPath("moto_server"), "-H", "127.0.0.1", "-p", String(this.port)], {
      env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/tmp" },
      stdin: "ignore",
      stdout: "pipe",
      stderr: "pipe",
    });
    await waitFor(
      "the S3 server",
      async () => {
        if (this.#proc?.exitCode !== null) throw new Error(`moto_server exited (${this.#proc?.exitCode})`);
        try {
          return (await fetch(`${this.endpoint}/`, { signal: AbortSignal.timeout(1000) })).ok;
        } catch {
          return false;
        }
      },
      30_000,
      50,
    );
  }

  async createBucket(name: string): Promise<void> {
    const response = await fetch(`${this.endpoint}/${name}`, { method: "PUT" });
    if (!response.ok) throw new Error(`cannot create bucket ${name}: HTTP ${response.status}`);
  }

  /** Where a lease object at `key` in `bucket` is read and written with the test credentials (at `endpoint`). */
  leaseLocation(key: string, bucket = "replica", endpoint = this.endpoint): LeaseLocation {
    return { endpoint, bucket, region: S3_REGION, accessKeyId: S3_ACCESS_KEY, secretAccessKey: S3_SECRET_KEY, key };
  }

  /** Keys under `prefix` in `bucket`. */
  async list(bucket: string, prefix = ""): Promise<string[]> {
    const text = await (await fetch(`${this.endpoint}/${bucket}?list-type=2&prefix=${encodeURIComponent(prefix)}`)).text();
    return [...text.matchAll(/<Key>([^<]+)<\/Key>/g)].map((m) => m[1] as string);
  }

  /** Makes the server unresponsive without losing its data. */
  pause(): void {
    this.#proc?.kill("SIGSTOP");
    this.#paused = true;
  }

  resume(): void {
    this.#proc?.kill("SIGCONT");
    this.#paused = false;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    if (this.#proc === null) return;
    if (this.#paused) this.resume();
    this.#proc.kill("SIGKILL");
    await this.#proc.exited;
    this.#proc = null;
  }
}

/**
 * For a test file of lease stores: one S3 server started before its tests and stopped after them, a fresh lease key
 * for each store, and temp dirs removed at the end.
 */
export function leaseStoresForFile(): { store(): LeaseStore; dir(prefix: string): string } {
  let s3: S3Server | undefined;
  let keys = 0;
  const dirs: string[] = [];
  beforeAll(async () => {
    s3 = await S3Server.start();
  }, 60_000);
  afterAll(async () => {
    await s3?.[Symbol.asyncDispose]();
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });
  return {
    store() {
      if (s3 === undefined) throw new Error("the S3 server starts before the tests");
      return new LeaseStore(s3.leaseLocation(`lease${++keys}/lease.json`));
    },
    dir(prefix) {
      const dir = tempDir(prefix);
      dirs.push(dir);
      return dir;
    },
  };
}
