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
 * The worker runs in SCHED_IDLE, so a saturated event loop donates it CPU time while a checkpoint asked for has
 * not ended (lib/cpu-donation.ts), and the next flush run waits for it (`settled`): a checkpoint that came after
 * the next run's first commit left the WAL growing by 16 MB a second at capacity.
 */
import { donateUntilEnded } from "../lib/cpu-donation";
import { stopWorker, workerUrl } from "../lib/workers";
import type { CheckpointResult, CheckpointStart } from "./checkpoint-worker";

export interface CheckpointerEvents {
  checkpointed(result: CheckpointResult): void;
  failed(message: string): void;
}

/** How long an asked checkpoint may wait for an idle CPU before the event loop's thread donates it some. */
const CHECKPOINT_GRACE_MS = 50;

/** How many checkpoints catchUp() runs at most, and how long it waits for each. */
const CATCH_UP_TRIES = 3;
const CATCH_UP_WAIT_MS = 2_000;

export class BackgroundCheckpointer {
  #worker: Worker | null = null;
  #askedAt = Number.NEGATIVE_INFINITY;
  /** Callers waiting for the next checkpoint's result (null: it failed, or the checkpointer stopped). */
  #waiting: ((result: CheckpointResult | null) => void)[] = [];
  /** How many checkpoints the worker ended (it counts them). */
  readonly #ended = new Int32Array(new SharedArrayBuffer(4));
  /** The checkpoint asked for last, until it ended: the count it ends, when it was asked, who waits for it. */
  #asked: { value: number; at: number; waiters: (() => void)[]; stopDonating(): void } | null = null;

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
    const shared = this.#ended.buffer as SharedArrayBuffer;
    worker.postMessage({ path: this.path, intervalMs: 2 * this.intervalMs, shared } satisfies CheckpointStart);
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
    this.#ask(this.#worker);
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
      this.#ask(worker);
    });
  }

  /**
   * Resolves once the checkpoint asked for last has ended, or `maxWaitMs` after it was asked; at once when none is
   * pending. A writer that starts after it lets the checkpoint copy the whole WAL.
   */
  settled(maxWaitMs: number): Promise<void> {
    const asked = this.#asked;
    const left = asked === null ? 0 : asked.at + maxWaitMs - performance.now();
    if (asked === null || left <= 0) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(done, left);
      asked.waiters.push(done);
    });
  }

  /** Asks for a checkpoint now, and gives the worker CPU time until one has ended. */
  #ask(worker: Worker): void {
    this.#settle();
    const slots = this.#ended;
    const value = Atomics.load(slots, 0);
    const ended = () => {
      if (Atomics.load(slots, 0) === value) return false;
      this.#settle();
      return true;
    };
    worker.postMessage("now");
    const stopDonating = donateUntilEnded({ ended, urgent: false, graceMs: CHECKPOINT_GRACE_MS, slots, index: 0, value });
    this.#asked = { value, at: performance.now(), waiters: [], stopDonating };
  }

  /** The checkpoint asked for last ended (or no longer matters): no more donations, and its waiters go on. */
  #settle(): void {
    const asked = this.#asked;
    if (asked === null) return;
    this.#asked = null;
    asked.stopDonating();
    for (const waiter of asked.waiters) waiter();
  }

  #answer(result: CheckpointResult | null): void {
    for (const waiter of this.#waiting.splice(0)) waiter(result);
  }

  /** Stops the worker after it closed its connection (or after a timeout). */
  async stop(): Promise<void> {
    const worker = this.#worker;
    if (worker === null) return;
    this.#worker = null;
    this.#settle();
    this.#answer(null);
    await stopWorker(worker);
  }
}
