/**
 * WAL checkpoints off the event loop, for a node that owns its checkpoints (not replicating with Litestream,
 * which owns them then). SQLite's automatic checkpoint runs inside whichever commit crosses ~1000 WAL pages, on
 * the thread that serves redirects: measured, a 30-130 ms stall, the p99's tail. With automatic checkpoints off,
 * a worker thread with its own connection runs a PASSIVE checkpoint every interval instead.
 */
import { existsSync } from "node:fs";
import { fileURLToPath, pathToFileURL } from "node:url";
import type { CheckpointResult, CheckpointStart } from "./checkpoint-worker";

/**
 * The worker's module. Run from source it sits beside this file. In the compiled binary (built with it as a second
 * entrypoint, scripts/build.ts) every module has the main entrypoint's URL, and entrypoints keep their paths
 * relative to src/, so it is found from the main module's directory.
 */
function workerUrl(): string {
  const beside = new URL("./checkpoint-worker.ts", import.meta.url);
  if (existsSync(fileURLToPath(beside))) return beside.href;
  return new URL("./storage/checkpoint-worker.ts", pathToFileURL(Bun.main)).href;
}

export interface CheckpointerEvents {
  checkpointed(result: CheckpointResult): void;
  failed(message: string): void;
}

/** How long stop() waits for the worker to close its connection before terminating it. */
const STOP_TIMEOUT_MS = 5_000;

export class BackgroundCheckpointer {
  #worker: Worker | null = null;

  constructor(
    private readonly path: string,
    private readonly intervalMs: number,
    private readonly events: CheckpointerEvents,
  ) {}

  start(): void {
    if (this.#worker !== null) return;
    const worker = new Worker(workerUrl());
    worker.onmessage = (event: MessageEvent<CheckpointResult | { error: string } | "stopped">) => {
      const data = event.data;
      if (data === "stopped") return;
      if ("error" in data) this.events.failed(data.error);
      else this.events.checkpointed(data);
    };
    worker.onerror = (event) => this.events.failed(`checkpoint worker: ${event.message}`);
    // The worker must not keep a draining process alive (Bun's Worker has unref, the DOM type does not).
    (worker as unknown as { unref(): void }).unref();
    worker.postMessage({ path: this.path, intervalMs: this.intervalMs } satisfies CheckpointStart);
    this.#worker = worker;
  }

  /** Stops the worker after it closed its connection (or after a timeout). */
  async stop(): Promise<void> {
    const worker = this.#worker;
    if (worker === null) return;
    this.#worker = null;
    await new Promise<void>((resolve) => {
      const timeout = setTimeout(resolve, STOP_TIMEOUT_MS);
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
}
