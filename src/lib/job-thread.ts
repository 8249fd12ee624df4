/**
 * A worker thread that takes jobs from the event loop's thread one at a time (domain/visit-writer.ts,
 * domain/visit-spill-thread.ts): started once, and broken for good once an error escapes it or its thread exits,
 * after which its owner does the work on the event loop instead. Its module answers a start message with
 * `{ op: "started", threadId }` or `{ op: "startFailed", message }`, and "stop" with "stopped".
 */
import { stopWorker } from "./workers";

/** How long a start waits for the thread. */
const START_TIMEOUT_MS = 10_000;

/** How a job ended when the thread could not do it (or, from the thread, when the job failed). */
export interface JobFailure {
  op: "failed";
  message: string;
  code: string | null;
}

export type StartReply = { op: "started"; threadId: number | null } | { op: "startFailed"; message: string };

/** What an error thrown on a thread says of itself, as a job's failure. */
export function jobFailure(error: unknown): JobFailure {
  const code = (error as { code?: unknown }).code;
  return { op: "failed", message: error instanceof Error ? error.message : String(error), code: typeof code === "string" ? code : null };
}

/** `Request`s go to the thread, `Message`s come back (besides its start's answer); a job ends with an `Answer`. */
export abstract class JobThread<Request, Message, Answer> {
  #worker: Worker | null = null;
  #broken = false;
  /** The start under way: a thread that fails before it has started rejects it (and is not reported as failed). */
  #starting: PromiseWithResolvers<void> | null = null;
  /** The thread's id, when it runs in SCHED_IDLE (null otherwise, or before start). */
  threadId: number | null = null;
  /** Resolves the job under way; null between jobs. */
  protected answer: ((answer: Answer | JobFailure) => void) | null = null;
  /** The start startOnce() made: whether the thread came up. */
  #firstStart: Promise<boolean> | null = null;

  /** `name` says which thread, in errors and in `failed`'s message. */
  constructor(private readonly name: string) {}

  /** Starts the thread (startThread with its module and start message); rejects if it does not come up. */
  abstract start(): Promise<void>;

  /**
   * For an owner that starts the thread with its first job (a thread most processes never need): starts it at the first
   * call, and later calls wait for that start. Resolves whether the thread is usable; a start that fails is told to
   * `failed`, as a failure after it would be, and the owner does the work on the event loop from then on.
   */
  startOnce(): Promise<boolean> {
    this.#firstStart ??= this.start().then(
      () => this.usable,
      (error: unknown) => {
        this.failed(error instanceof Error ? error.message : String(error));
        return false;
      },
    );
    return this.#firstStart;
  }

  /** A message from the thread other than its start's answer. */
  protected abstract replied(message: Message): void;

  /** The thread failed and will not take another job. */
  protected abstract failed(message: string): void;

  /** Starts the thread at `url` with `start`; rejects (and stays unusable) if it does not say it started in time. */
  protected async startThread(url: string, start: Request): Promise<void> {
    if (this.#worker !== null) return;
    const worker = new Worker(url);
    this.#worker = worker;
    const started = Promise.withResolvers<void>();
    this.#starting = started;
    const timeout = setTimeout(() => started.reject(new Error(`the ${this.name} did not start in time`)), START_TIMEOUT_MS);
    worker.onmessage = (event: MessageEvent<Message | StartReply | "stopped">) => {
      const reply = event.data;
      if (reply === "stopped") return;
      const op = (reply as { op?: unknown }).op;
      if (op === "started") {
        this.threadId = (reply as { threadId: number | null }).threadId;
        started.resolve();
      } else if (op === "startFailed") {
        started.reject(new Error(`the ${this.name} could not start: ${(reply as { message: string }).message}`));
      } else {
        this.replied(reply as Message);
      }
    };
    worker.onerror = (event) => this.#fail(`${this.name}: ${event.message}`);
    // Not stopped by stop() (which marks the thread broken first): the thread is gone.
    worker.addEventListener("close", () => this.#fail(`${this.name}: its thread exited`));
    // The worker must not keep a draining process alive (Bun's Worker has unref, the DOM type does not).
    (worker as unknown as { unref(): void }).unref();
    this.post(start);
    try {
      await started.promise;
    } catch (error) {
      this.#broken = true;
      throw error;
    } finally {
      clearTimeout(timeout);
      this.#starting = null;
    }
  }

  get usable(): boolean {
    return this.#worker !== null && !this.#broken;
  }

  /** Stops the thread once it has closed what it holds (after startOnce's start, if one is under way); the caller has waited for the last job. */
  async stop(): Promise<void> {
    await this.#firstStart;
    const worker = this.#worker;
    if (worker === null) return;
    this.#broken = true;
    await stopWorker(worker);
    this.#worker = null;
  }

  protected post(message: Request, transfer: Transferable[] = []): void {
    this.#worker?.postMessage(message, transfer);
  }

  #fail(message: string): void {
    if (this.#broken) return;
    this.#broken = true;
    // A module that cannot load ends here at once, where the start would otherwise wait for its timeout.
    if (this.#starting !== null) {
      this.#starting.reject(new Error(`the ${message}`));
      return;
    }
    this.answer?.({ op: "failed", message, code: null });
    this.failed(message);
  }
}
