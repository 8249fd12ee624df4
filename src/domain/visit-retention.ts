/**
 * The retention job: a background pass, run by `serve` every interval, that
 *   1. deletes raw visit rows older than --visits-retention, oldest first, in small transactions;
 *   2. for each link deleted since (heard as a link event, and looked for again at the next pass, for visits that
 *      were still buffered), deletes its raw rows the same way, then its roll-ups. Once an hour, and at the first
 *      pass, it walks every link that has roll-ups instead, for deletions it did not hear of (before a restart).
 *   3. once a day, and at the first pass, sums the previous day's per-domain roll-ups again from its links'
 *      (VisitPurgeStore.resumDomainDay: one transaction, a row per link visited that day).
 * Each transaction is sized to take about BATCH_TARGET_MS (a row dirties a random index page: measured ~11 µs and
 * ~2 KiB of WAL on a small VM, more on a busy one), and after each the job sleeps at least nine times as long as it
 * worked, so redirects wait behind at most one batch and the job takes at most a tenth of the event loop; when its
 * timer fires late (the loop is busy with requests) it sleeps longer still. It stops between batches when the node
 * drains. Roll-ups of live links are never reduced: totals stay exact.
 */
import type { Database } from "bun:sqlite";
import { politeSleep } from "../lib/polite-sleep";
import { type PurgeResult, VisitPurgeStore } from "../storage/visit-purge-store";
import { FailureStreak } from "../telemetry/failure-streak";
import { describeError, log } from "../telemetry/logger";
import type { Metrics } from "../telemetry/metrics";
import type { LinkEvent, LinkEventListener, LinkEventType } from "./link-events";
import { dayOf } from "./visit-recorder";

export type PurgeReason = "retention" | "deleted_link";

export interface RetentionHooks {
  /** A closed day's per-domain roll-ups were summed again: its visits in them before and after. */
  resummed?(day: number, before: number, after: number): void;
  /** Raw rows deleted by one transaction, and how long it took. */
  purged?(reason: PurgeReason, rows: number, seconds: number): void;
  /** One whole pass finished (whether or not it deleted anything). */
  passed?(seconds: number, rows: number): void;
  failed?(error: unknown): void;
}

export interface RetentionOptions {
  /** Raw rows older than this are deleted; null keeps them (deleted links are still purged). */
  retentionMs: number | null;
  /** At most this many raw rows per transaction. */
  batchRows?: number;
  /** Transactions are sized to take about this long. */
  batchTargetMs?: number;
  /** Links examined per read while looking for deleted ones. */
  batchLinks?: number;
  /** Time between passes; by default the retention period, kept within 1 s..60 s. */
  intervalMs?: number;
  /** Time between walks over every link for deletions not heard of. */
  sweepEveryMs?: number;
  now?: () => number;
  /** Between two transactions, given how long the last one took; by default politeSleep(). */
  pause?: (busyMs: number) => Promise<void>;
  /**
   * Called after every `settleEveryMs` of transactions, with nothing written until it resolves: a checkpoint's
   * turn. A checkpoint that something writes during does not let SQLite start the WAL over, and the job's
   * transactions come too often for one to finish between them, so the WAL would grow by all the job deletes.
   */
  settle?: () => Promise<unknown>;
  settleEveryMs?: number;
}

const BATCH_TARGET_MS = 2;
/** ~30 000 rows, ~60 MB of WAL at ~2 KiB a row: how far the WAL grows between two checkpoints' turns. */
const SETTLE_EVERY_MS = 100;
const SWEEP_EVERY_MS = 3_600_000;
const BATCH_MIN_ROWS = 20;
const FIRST_BATCH_ROWS = 100;
/** For the day's date in the log (days are counted as dayOf counts them). */
const DAY_MS = 86_400_000;

/** The pause between passes for a retention period. */
export function passIntervalMs(retentionMs: number | null): number {
  return Math.min(60_000, Math.max(1_000, retentionMs ?? 60_000));
}

export class VisitRetention implements LinkEventListener {
  readonly #batchRows: number;
  readonly #batchTargetMs: number;
  #size: number;
  readonly #batchLinks: number;
  readonly #intervalMs: number;
  readonly #now: () => number;
  readonly #pause: (busyMs: number) => Promise<void>;
  #timer: Timer | undefined;
  #running: Promise<number> | null = null;
  #stopped = false;
  /** Links deleted since the last passes, with the passes left to look at them. */
  readonly #deleted = new Map<number, number>();
  #nextSweepAt = Number.NEGATIVE_INFINITY;
  /** The last day whose per-domain roll-ups were summed again. */
  #resummedDay: number | undefined;
  /** Milliseconds of transactions since settle() last ran. */
  #sinceSettle = 0;

  constructor(
    private readonly store: VisitPurgeStore,
    private readonly options: RetentionOptions,
    private readonly hooks: RetentionHooks = {},
  ) {
    this.#batchRows = options.batchRows ?? 2_000;
    this.#batchTargetMs = options.batchTargetMs ?? BATCH_TARGET_MS;
    this.#size = Math.min(FIRST_BATCH_ROWS, this.#batchRows);
    this.#batchLinks = options.batchLinks ?? 500;
    this.#intervalMs = options.intervalMs ?? passIntervalMs(options.retentionMs);
    this.#now = options.now ?? Date.now;
    this.#pause = options.pause ?? politeSleep();
  }

  wants(type: LinkEventType): boolean {
    return type === "link.deleted";
  }

  /** A deleted link's rows are purged at the next pass, and looked for again at the one after. */
  afterCommit(event: LinkEvent): void {
    if (event.type === "link.deleted") this.#deleted.set(event.shortUrl.id, 2);
  }

  /** Runs a pass now, then one every interval after the previous one ends, until stop(). */
  start(): void {
    const tick = () => {
      this.#timer = undefined;
      void this.runPass().finally(() => {
        if (!this.#stopped) this.#timer = setTimeout(tick, this.#intervalMs);
      });
    };
    this.#timer = setTimeout(tick, 0);
  }

  /** Stops the job; resolves once a pass under way has returned (at its next pause, without touching SQLite). */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    await this.#running?.catch(() => 0);
  }

  /** One pass (or the one already running); resolves to the raw rows it deleted. Errors go to hooks.failed. */
  runPass(): Promise<number> {
    if (this.#running === null) {
      this.#running = this.#pass()
        .catch((error) => {
          this.hooks.failed?.(error);
          return 0;
        })
        .finally(() => {
          this.#running = null;
        });
    }
    return this.#running;
  }

  async #pass(): Promise<number> {
    const started = performance.now();
    let rows = 0;
    if (this.options.retentionMs !== null) {
      const cutoff = this.#now() - this.options.retentionMs;
      rows += await this.#batches("retention", (limit) => this.store.purgeOlderThan(cutoff, limit));
    }
    rows += await this.#purgeDeletedLinks();
    const yesterday = dayOf(this.#now()) - 1;
    if (!this.#stopped && this.#resummedDay !== yesterday) {
      const { before, after } = await this.store.resumDomainDay(yesterday);
      this.#resummedDay = yesterday;
      this.hooks.resummed?.(yesterday, before, after);
    }
    if (!this.#stopped) this.hooks.passed?.((performance.now() - started) / 1000, rows);
    return rows;
  }

  async #purgeDeletedLinks(): Promise<number> {
    let rows = 0;
    if (this.#now() >= this.#nextSweepAt) {
      this.#nextSweepAt = this.#now() + (this.options.sweepEveryMs ?? SWEEP_EVERY_MS);
      rows += await this.#sweep();
    }
    for (const [id, passesLeft] of [...this.#deleted]) {
      if (this.#stopped) return rows;
      rows += await this.#purgeLink(id);
      if (passesLeft <= 1) this.#deleted.delete(id);
      else this.#deleted.set(id, passesLeft - 1);
    }
    return rows;
  }

  /** Every link with roll-ups, in reads of batchLinks (~1 ms each): deleted ones are purged. */
  async #sweep(): Promise<number> {
    let rows = 0;
    for (let after = 0; !this.#stopped; ) {
      const links = this.store.linksAfter(after, this.#batchLinks);
      for (const link of links) {
        if (!link.live) rows += await this.#purgeLink(link.id);
        if (this.#stopped) return rows;
      }
      if (links.length < this.#batchLinks) break;
      after = (links.at(-1) as { id: number }).id;
      await this.#pause(0);
    }
    return rows;
  }

  /** A deleted link's raw rows in batches, then its roll-ups. */
  async #purgeLink(id: number): Promise<number> {
    const rows = await this.#batches("deleted_link", (limit) => this.store.purgeDeletedLinkRows(id, limit));
    if (!this.#stopped) await this.store.dropDeletedLinkRollups(id);
    return rows;
  }

  /** Runs `batch` until it has nothing more to delete (or the job stops), sizing each to the target duration. */
  async #batches(reason: PurgeReason, batch: (limit: number) => Promise<PurgeResult>): Promise<number> {
    let rows = 0;
    for (let more = true; more && !this.#stopped; ) {
      const started = performance.now();
      const result = await batch(this.#size);
      const busyMs = performance.now() - started;
      more = result.more;
      if (result.deleted > 0) {
        rows += result.deleted;
        this.hooks.purged?.(reason, result.deleted, busyMs / 1000);
        // The disk and the machine's load decide what a row costs: aim the next batch at the target.
        const perRowMs = Math.max(busyMs, 0.01) / result.deleted;
        this.#size = Math.max(
          Math.min(BATCH_MIN_ROWS, this.#batchRows),
          Math.min(this.#batchRows, Math.floor(this.#batchTargetMs / perRowMs)),
        );
      }
      await this.#pause(busyMs);
      this.#sinceSettle += busyMs;
      const due = this.#sinceSettle >= (this.options.settleEveryMs ?? SETTLE_EVERY_MS);
      if (this.options.settle !== undefined && result.deleted > 0 && due && !this.#stopped) {
        this.#sinceSettle = 0;
        await this.options.settle();
      }
    }
    return rows;
  }
}

/**
 * The job as `serve` runs it on a primary: batches and passes counted in metrics, failures logged, link deletions
 * heard through `linkEvents`.
 */
export function startVisitRetention(
  db: Database,
  retentionMs: number | null,
  metrics: Metrics,
  linkEvents: LinkEventListener[],
  settle?: () => Promise<unknown>,
): VisitRetention {
  const failures = new FailureStreak("visit_purge");
  const job = new VisitRetention(
    new VisitPurgeStore(db),
    { retentionMs, settle },
    {
      purged: (reason, rows, seconds) => metrics.recordVisitsPurged(reason, rows, seconds),
      passed: (seconds, rows) => {
        failures.succeeded();
        metrics.recordVisitPurgePass(seconds);
        if (rows > 0) log.info("visits_purged", { rows, duration_ms: Math.round(seconds * 1000) });
      },
      resummed: (day, before, after) => {
        if (before !== after) log.info("visit_rollups_resummed", { day: new Date(day * DAY_MS).toISOString().slice(0, 10), before, after });
      },
      failed: (error) => failures.failed(describeError(error)),
    },
  );
  linkEvents.push(job);
  job.start();
  return job;
}
