/**
 * Worker threads with a database connection of their own (storage/checkpointer.ts, storage/background-reader.ts).
 * The URL of a worker module under src/. Run from source it sits beside the caller. In the compiled binary (built
 * with each worker as an extra entrypoint, scripts/build.ts) every module has the main entrypoint's URL, and
 * entrypoints keep their paths relative to src/, so it is found from the main module's directory.
 */
import { existsSync } from "node:fs";
import { fileURLToPath, pathToFileURL } from "node:url";

/** `besideCaller` is `new URL("./x-worker.ts", import.meta.url)` of the caller; `fromSrc` its path under src/. */
export function workerUrl(besideCaller: URL, fromSrc: string): string {
  if (existsSync(fileURLToPath(besideCaller))) return besideCaller.href;
  return new URL(fromSrc, pathToFileURL(Bun.main)).href;
}

/** How long stopWorker waits for the worker to close its connection before terminating it. */
export const WORKER_STOP_TIMEOUT_MS = 5_000;

/** Asks the worker to stop ("stop"), waits for its "stopped" (closed its connection) or a timeout, then terminates it. */
export async function stopWorker(worker: Worker): Promise<void> {
  await new Promise<void>((resolve) => {
    const timeout = setTimeout(resolve, WORKER_STOP_TIMEOUT_MS);
    worker.addEventListener("message", (event: MessageEvent) => {
      if (event.data === "stopped") {
        clearTimeout(timeout);
        resolve();
      }
    });
    worker.postMessage("stop");
  });
  worker.terminate();
}
