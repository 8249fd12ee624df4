/**
 * The fixed shutdown order shared by SIGTERM and `shortener drain`:
 *   1. not ready: /readyz answers 503 and shortener_ready drops to 0;
 *   2. keep serving for --drain-grace, so a health-checking proxy moves traffic away first;
 *   3. end the live-feed streams, stop accepting; let in-flight requests finish (bounded by --shutdown-timeout, then closed);
 *   4. stop the flush and heartbeat timers and write every buffered visit;
 *   5. close the database;
 *   6. flush telemetry: export buffered spans (bounded, when tracing is on), then write buffered log lines.
 * The app's disposal does step 5 and the span export of step 6, in that order.
 * Calling it again returns the same promise.
 */
import type { Server } from "bun";
import type { AppContext } from "../app";
import type { Config } from "../config";
import { WORKER_STOP_TIMEOUT_MS } from "../lib/workers";
import { describeError, flushLogs, log } from "../telemetry/logger";
import { TRACE_EXPORT_TIMEOUT_MS } from "../telemetry/tracing";

export interface DrainResult {
  visitsFlushed: number;
}

/**
 * How long the final flush keeps retrying, and how often. The final flush does not wait for another process's write
 * lock (relaxedWriteTransactionIfFree): it tries again here, on a timer, so a drain that meets a lock held for seconds (the
 * other colour migrating) keeps trying for about as long as five attempts of the full 5 s busy_timeout used to wait.
 */
const FINAL_FLUSH_BUDGET_MS = 25_000;
const FINAL_FLUSH_MAX_ATTEMPTS = 100;
/** The app's worker threads, each stopped in turn at disposal: checkpointer, visit writer, background reader. */
const WORKER_THREADS = 3;

/**
 * The longest the sequence below can take, by its timers: the grace, the in-flight bound, the final flush's retry
 * budget (which includes waiting for a flush already under way), each worker thread's stop, and the span export.
 * `shortener drain` waits this long by default, and systemd's TimeoutStopSec must be longer (80 s by default).
 */
export function longestDrainMs(config: Pick<Config, "drainGraceMs" | "shutdownTimeoutMs">): number {
  const disposal = WORKER_THREADS * WORKER_STOP_TIMEOUT_MS + TRACE_EXPORT_TIMEOUT_MS;
  return config.drainGraceMs + config.shutdownTimeoutMs + FINAL_FLUSH_BUDGET_MS + disposal;
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Writes buffered visits, retrying a failed flush for up to FINAL_FLUSH_BUDGET_MS; throws if they cannot be written. */
async function flushRemaining(ctx: AppContext): Promise<number> {
  const started = performance.now();
  // A chunk the visit writer has is still buffered here until it answers: written twice otherwise.
  await ctx.visits.idle();
  const depth = ctx.visits.depth;
  for (let attempt = 1; ; attempt++) {
    try {
      ctx.visits.flush();
      return depth;
    } catch (error) {
      const wait = Math.min(100 * attempt, 1000);
      if (attempt >= FINAL_FLUSH_MAX_ATTEMPTS || performance.now() - started + wait > FINAL_FLUSH_BUDGET_MS) throw error;
      log.warn("final_visit_flush_retry", { attempt, depth: ctx.visits.depth, ...describeError(error) });
      await delay(wait);
    }
  }
}

export interface Drain {
  /** Starts the sequence (once) and resolves when it is done. */
  start(reason: string): Promise<DrainResult>;
  /** Settles when the sequence has finished, however it was started. */
  done: Promise<DrainResult>;
}

export function createDrain(ctx: AppContext, publicServer: Server<undefined>, stopTimers: () => Promise<void>): Drain {
  let running: Promise<DrainResult> | undefined;
  const finished = Promise.withResolvers<DrainResult>();
  const sequence = async (reason: string): Promise<DrainResult> => {
    const started = performance.now();
    ctx.lifecycle.draining = true;
    log.info("draining", { reason, grace_ms: ctx.config.drainGraceMs });
    await delay(ctx.config.drainGraceMs);
    let timer: Timer | undefined;
    const deadline = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(true), ctx.config.shutdownTimeoutMs);
    });
    // Live-feed streams never finish on their own: end them, or stopping would wait for the shutdown timeout.
    ctx.liveFeed.close();
    const timedOut = await Promise.race([publicServer.stop(false).then(() => false), deadline]);
    clearTimeout(timer);
    if (timedOut) {
      log.warn("shutdown_timeout", { timeout_ms: ctx.config.shutdownTimeoutMs });
      await publicServer.stop(true);
    }
    await stopTimers();
    // A standby never writes its database (the primary's copy): its last visits go to its spool, for the primary.
    let visitsFlushed = 0;
    if (ctx.spool !== null) log.info("visits_spooled", { visits: await ctx.spool.spill(), waiting: ctx.spool.waiting });
    else visitsFlushed = await flushRemaining(ctx);
    await ctx[Symbol.asyncDispose]();
    log.info("drained", { visits_flushed: visitsFlushed, duration_ms: Math.round(performance.now() - started) });
    flushLogs();
    return { visitsFlushed };
  };
  return {
    start(reason) {
      if (running === undefined) {
        running = sequence(reason);
        running.then(finished.resolve, finished.reject);
      }
      return running;
    },
    done: finished.promise,
  };
}
