/**
 * Group commit: writes submitted in the same tick share one immediate transaction (one fsync under
 * synchronous=FULL), each inside its own savepoint so a failing write rolls back alone.
 * A write's promise settles only after the shared COMMIT, so nothing is acknowledged before it is durable.
 * An optional after-commit hook (replicated durability: wait for Litestream's upload) runs once per committed
 * batch, and the batch's writes settle only after it; the next batch does not wait for it.
 * Another process's write lock (the other colour migrating the shared database) is waited for on a timer, not in
 * SQLite's busy handler, so redirects go on meanwhile; a write still locked out after `lockWaitMs` (busy_timeout's
 * 5 s) fails with SQLITE_BUSY, having changed nothing.
 * With a tracer, each sampled writer gets a `sqlite transaction` span covering the shared transaction, and its
 * write runs inside that span (so its statements' spans are children of it, not of another request's).
 */
import type { Database } from "bun:sqlite";
import { type Context, context, ROOT_CONTEXT, type Span, SpanKind, type Tracer, trace } from "@opentelemetry/api";
import { recordSpanError } from "../telemetry/db-span";
import { BUSY_TIMEOUT_MS, type LockAttempt, lockRetryPause, writeTransactionIfFree } from "./database";

interface Pending {
  run: () => unknown;
  resolve: (value: unknown) => void;
  reject: (error: unknown) => void;
  /** performance.now() when submitted: how long it has waited for the write lock. */
  since: number;
  /** The writer's context, captured only when tracing is on. */
  context?: Context;
  span?: Span;
}

/** Runs once per committed batch, before its writes settle; throwing means the batch is not confirmed. */
export type AfterCommit = () => Promise<void>;

/**
 * A write of a batch that is committed locally, but whose after-commit hook failed. `value` is what the write
 * returned, or undefined when the write itself threw.
 */
export class UnconfirmedCommit extends Error {
  constructor(
    readonly value: unknown,
    readonly reason: unknown,
  ) {
    super(`committed locally but not confirmed: ${reason instanceof Error ? reason.message : String(reason)}`);
    this.name = "UnconfirmedCommit";
  }
}

type Outcome = { ok: true; value: unknown } | { ok: false; error: unknown };

export class GroupCommit {
  #queue: Pending[] = [];
  /** A drain is due: on the next setImmediate, or on a timer while another process holds the write lock. */
  #scheduled = false;
  /** Tries that met another process's write lock since the last commit: the next pause doubles with each. */
  #lockedTries = 0;

  /** `tracer` is null when tracing is off. */
  constructor(
    private readonly db: Database,
    private readonly tracer: Tracer | null = null,
    private readonly maxBatch = 256,
    private readonly afterCommit: AfterCommit | null = null,
    private readonly lockWaitMs = BUSY_TIMEOUT_MS,
  ) {}

  /** Runs `write` inside the next shared transaction and resolves with its result once committed (and confirmed, with a hook). */
  run<T>(write: () => T): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const pending: Pending = { run: write, resolve: resolve as (value: unknown) => void, reject, since: performance.now() };
      if (this.tracer !== null) pending.context = context.active();
      this.#queue.push(pending);
      if (!this.#scheduled) {
        this.#scheduled = true;
        setImmediate(() => this.#drain());
      }
    });
  }

  #drain(): void {
    this.#scheduled = false;
    while (this.#queue.length > 0) {
      const batch = this.#queue.slice(0, this.maxBatch);
      if (this.tracer !== null) this.#startSpans(this.tracer, batch);
      const outcomes: Outcome[] = [];
      let attempt: LockAttempt<void>;
      try {
        attempt = writeTransactionIfFree(this.db, () => {
          for (const item of batch) {
            try {
              // A nested bun:sqlite transaction is a SAVEPOINT: a throwing write is rolled back alone.
              const write = this.db.transaction(item.run);
              outcomes.push({ ok: true, value: item.context === undefined ? write() : this.#inWriterContext(item, write) });
            } catch (error) {
              outcomes.push({ ok: false, error });
            }
          }
        });
      } catch (error) {
        this.#queue.splice(0, batch.length);
        this.#fail(batch, error);
        continue;
      }
      if ("busy" in attempt) {
        this.#waitForLock(attempt.busy);
        return;
      }
      this.#lockedTries = 0;
      this.#queue.splice(0, batch.length);
      for (const item of batch) item.span?.end();
      this.#settle(batch, outcomes);
    }
  }

  /**
   * Another process holds the write lock: writes that have waited lockWaitMs fail with its SQLITE_BUSY (a 503 to
   * retry), and the rest try again after a pause that doubles with each try (lockRetryPause).
   */
  #waitForLock(busy: Error): void {
    const now = performance.now();
    let expired = 0;
    while (expired < this.#queue.length && now - (this.#queue[expired] as Pending).since >= this.lockWaitMs) expired++;
    if (expired > 0) this.#fail(this.#queue.splice(0, expired), busy);
    if (this.#queue.length === 0) return;
    this.#scheduled = true;
    setTimeout(() => this.#drain(), lockRetryPause(this.#lockedTries++));
  }

  #fail(batch: Pending[], error: unknown): void {
    for (const item of batch) {
      if (item.span !== undefined) recordSpanError(item.span, error);
      item.span?.end();
      item.reject(error);
    }
  }

  /**
   * Settles the writes of a committed batch: at once, or after the after-commit hook. When the hook fails, every
   * write rejects with an UnconfirmedCommit, even one that threw: its answer (say, "not found") rests on state
   * that is not confirmed either.
   */
  #settle(batch: Pending[], outcomes: Outcome[]): void {
    const settle = () =>
      batch.forEach((item, i) => {
        const outcome = outcomes[i];
        if (outcome?.ok) item.resolve(outcome.value);
        else item.reject(outcome?.error);
      });
    if (this.afterCommit === null) {
      settle();
      return;
    }
    Promise.resolve()
      .then(this.afterCommit)
      .then(settle, (reason: unknown) =>
        batch.forEach((item, i) => {
          const outcome = outcomes[i];
          item.reject(new UnconfirmedCommit(outcome?.ok ? outcome.value : undefined, reason));
        }),
      );
  }

  /** One span per sampled writer, each the whole shared transaction as that writer waited on it. */
  #startSpans(tracer: Tracer, batch: Pending[]): void {
    for (const item of batch) {
      // Started at the first try: a writer's span covers its wait for another process's lock too.
      if (item.span !== undefined || item.context === undefined || trace.getSpan(item.context)?.isRecording() !== true) continue;
      item.span = tracer.startSpan(
        "sqlite transaction",
        { kind: SpanKind.CLIENT, attributes: { "db.system.name": "sqlite", "db.operation.batch.size": batch.length } },
        item.context,
      );
    }
  }

  /** Runs a write in its own writer's span, or in no trace at all: never in whichever request scheduled the batch. */
  #inWriterContext(item: Pending, write: () => unknown): unknown {
    return context.with(item.span === undefined ? ROOT_CONTEXT : trace.setSpan(item.context ?? ROOT_CONTEXT, item.span), write);
  }
}
