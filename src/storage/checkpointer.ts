/**
 * WAL checkpoints off the event loop, for a node that owns its checkpoints (not replicating with Litestream,
 * which owns them then). SQLite's automatic checkpoint runs inside whichever commit crosses ~1000 WAL pages, on
 * the thread that serves redirects: measured, a 30-130 ms stall, the p99's tail. With automatic checkpoints off,
 * a worker thread with its own connection runs a PASSIVE checkpoint every interval instead.
 */
import { stopWorker, workerUrl } from "../lib/workers";
import type { CheckpointResult, CheckpointStart } from "./checkpoint-worker";

export interface CheckpointerEvents {
  checkpointed(result: CheckpointResult): void;
  failed(message: string): void;
}

export class BackgroundCheckpointer {
  #worker: Worker | null = null;

  constructor(
    private readonly path: string,
    private readonly intervalMs: number,
    private readonly events: CheckpointerEvents,
  ) {}

  start(): void {
    if (this.#worker !== null) return;
    const worker = new Worker(workerUrl(new URL("./checkpoint-worker.ts", import.meta.url), "./storage/checkpoint-worker.ts"), {
      smol: true,
    });
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
    await stopWorker(worker);
  }
}
