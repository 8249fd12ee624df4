/**
 * For the benchmarks built on the tests' managed processes (test/support: the S3 server, Litestream, TestServer):
 * what a run started, disposed of in reverse order when it ends, fails, or gets SIGINT/SIGTERM.
 */
import { rmSync } from "node:fs";

const started: AsyncDisposable[] = [];

/** Remembers `resource` for cleanup(); returns it. */
export function track<T extends AsyncDisposable>(resource: T): T {
  started.push(resource);
  return resource;
}

/** Remembers a temp dir, removed with everything else. */
export function trackDir(dir: string): string {
  track({ [Symbol.asyncDispose]: async () => rmSync(dir, { recursive: true, force: true }) });
  return dir;
}

export async function cleanup(): Promise<void> {
  for (const resource of started.splice(0).reverse()) {
    try {
      await resource[Symbol.asyncDispose]();
    } catch (error) {
      console.error(`cleanup: ${(error as Error).message}`);
    }
  }
}

for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.on(signal, () => {
    void cleanup().finally(() => process.exit(130));
  });
}
