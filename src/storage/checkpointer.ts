/**
 * WAL checkpoints off the event loop, for a node that owns its checkpoints (not replicating with Litestream,
 * which owns them then). SQLite's automatic checkpoint runs inside whichever commit crosses ~1000 WAL pages, on
 * the thread that serves redirects: measured, a 30-130 ms stall, the p99's tail. With automatic checkpoints off,
 * a worker thread with its own connection runs a PASSIVE checkpoint instead.
 *
 * When it runs matters. SQLite starts the WAL over only once a checkpoint has copied every frame in it; a frame
 * committed while a checkpoint runs leaves that checkpoint short, and the WAL grows on. A checkpoint on its own
 * timer, started with the visit flush's timer, landed at the start of a flush run every time: under steady
 * traffic the WAL never restarted (172 MB after 12 s at 24 000 redirects a second, 1.4 GB after a minute at
 * capacity). So `afterWrites()` asks for one as a flush run ends, at most once an interval, and the worker's
 * own timer only runs one when none was asked for in twice the interval.
 *
 * With the visit writer's thread running, that thread checkpoints after its chunks (domain/visit-writer-worker.ts):
 * it runs in SCHED_IDLE, and nothing it writes can race its checkpoint. This one then only runs one when nothing
 * was checkpointed in twice the interval (`postpone()` says one was), and for catchUp().
 */
import { stopWorker, workerUrl } from "../lib/workers";
import type { CheckpointStart } from "./checkpoint-worker";
import type { CheckpointResult } from "./database";

export interface CheckpointerEvents {
  checkpointed(result: CheckpointResult): void;
  failed(message: string): void;
}

/** How many checkpoints catchUp() runs at most, and how long it waits for each. */
const CATCH_UP_TRIES = 3;
const CATCH_UP_WAIT_MS = 2_000;

export class BackgroundCheckpointer {
  #worker: Worker | null = null;
  #askedAt = Number.NEGATIVE_INFINITY;
  /** Callers waiting for the next checkpoint's result (null: it failed, or the checkpointer stopped). */
  #waiting: ((result: CheckpointResult | null) => void)[] = [];

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
      this.#answer("error" in data ? null : data);
    };
    worker.onerror = (event) => this.events.failed(`checkpoint worker: ${event.message}`);
    // The worker must not keep a draining process alive (Bun's Worker has unref, the DOM type does not).
    (worker as unknown as { unref(): void }).unref();
    worker.postMessage({ path: this.path, intervalMs: 2 * this.intervalMs } satisfies CheckpointStart);
    this.#worker = worker;
  }

  /**
   * A burst of writes (a visit flush run) has just ended: checkpoint now, while nothing is being written, so the
   * checkpoint can copy the whole WAL and the next write starts it over. At most once an interval.
   */
  afterWrites(): void {
    const now = performance.now();
    if (this.#worker === null || now - this.#askedAt < this.intervalMs) return;
    this.#askedAt = now;
    this.#worker.postMessage("now");
  }

  /** A checkpoint ran on another connection (the visit writer's): this one's own timer starts its wait again. */
  postpone(): void {
    this.#worker?.postMessage("later");
  }

  /**
   * For a writer that never leaves a gap on its own (a retention purge): checkpoints now, and again while a write
   * in between left the checkpoint short (at most CATCH_UP_TRIES), so the WAL starts over at the next write. True
   * when a checkpoint copied the whole WAL. The caller writes nothing meanwhile.
   */
  async catchUp(): Promise<boolean> {
    for (let i = 0; i < CATCH_UP_TRIES; i++) {
      const result = await this.#checkpointNow();
      if (result === null) return false;
      if (result.checkpointed === result.log) return true;
    }
    return false;
  }

  /** The result of a checkpoint run now (null: failed, stopped, or no answer within CATCH_UP_WAIT_MS). */
  #checkpointNow(): Promise<CheckpointResult | null> {
    const worker = this.#worker;
    if (worker === null) return Promise.resolve(null);
    this.#askedAt = performance.now();
    return new Promise((resolve) => {
      const timeout = setTimeout(() => {
        this.#waiting = this.#waiting.filter((waiter) => waiter !== answer);
        resolve(null);
      }, CATCH_UP_WAIT_MS);
      const answer = (result: CheckpointResult | null) => {
        clearTimeout(timeout);
        resolve(result);
      };
      this.#waiting.push(answer);
      worker.postMessage("now");
    });
  }

  #answer(result: CheckpointResult | null): void {
    for (const waiter of this.#waiting.splice(0)) waiter(result);
  }

  /** Stops the worker after it closed its connection (or after a timeout). */
  async stop(): Promise<void> {
    const worker = this.#worker;
    if (worker === null) return;
    this.#worker = null;
    this.#answer(null);
    await stopWorker(worker);
  }
}
