/**
 * Visits are counted off the hot path: a redirect adds to this in-memory buffer, and `flush` writes everything
 * buffered in one transaction (per-link counters now; raw visit rows and other sinks plug in as VisitSinks).
 * Pending counts per link are kept so that a link reloaded into the cache sees its exact total.
 */
import type { Database } from "bun:sqlite";
import type { Tracer } from "@opentelemetry/api";
import { writeTransaction } from "../storage/database";
import type { ShortUrlStore } from "../storage/short-url-store";
import { recordSpanError, startBackgroundDbSpan } from "../telemetry/db-span";

/** One counted redirect. */
export interface Visit {
  shortUrlId: number;
  at: number;
  bot: boolean;
}

/** Something that persists a batch of visits inside the flush transaction. */
export interface VisitSink {
  write(visits: readonly Visit[]): void;
}

export interface PendingCount {
  total: number;
  bots: number;
}

const NONE_PENDING: PendingCount = Object.freeze({ total: 0, bots: 0 });

export class VisitBuffer {
  #visits: Visit[] = [];
  #pending = new Map<number, PendingCount>();
  readonly #sinks: VisitSink[] = [];

  /** With a tracer (tracing on), each flush is a root `sqlite visits.flush` span, sampled like a request. */
  constructor(
    private readonly db: Database,
    private readonly shortUrls: ShortUrlStore,
    private readonly tracer: Tracer | null = null,
  ) {}

  /** Adds a sink that receives every flushed batch (for example raw visit rows). */
  addSink(sink: VisitSink): void {
    this.#sinks.push(sink);
  }

  record(shortUrlId: number, bot: boolean, at: number): void {
    this.#visits.push({ shortUrlId, at, bot });
    const pending = this.#pending.get(shortUrlId);
    if (pending) {
      pending.total++;
      if (bot) pending.bots++;
    } else {
      this.#pending.set(shortUrlId, { total: 1, bots: bot ? 1 : 0 });
    }
  }

  /** Visits recorded for a link but not yet written. */
  pendingFor(shortUrlId: number): PendingCount {
    return this.#pending.get(shortUrlId) ?? NONE_PENDING;
  }

  get depth(): number {
    return this.#visits.length;
  }

  /**
   * Writes all buffered visits in one immediate transaction and returns how many were written. On failure
   * nothing is dropped: the batch stays buffered for the next attempt.
   */
  flush(): number {
    if (this.#visits.length === 0) return 0;
    if (this.tracer === null) return this.#write();
    const span = startBackgroundDbSpan(this.tracer, "visits.flush", "short_urls", "update", {
      "db.operation.batch.size": this.#pending.size,
      "shortener.visits": this.#visits.length,
    });
    try {
      return this.#write();
    } catch (error) {
      recordSpanError(span, error);
      throw error;
    } finally {
      span.end();
    }
  }

  #write(): number {
    const visits = this.#visits;
    const pending = this.#pending;
    writeTransaction(this.db, () => {
      for (const [id, count] of pending) this.shortUrls.addVisits(id, count.total, count.bots);
      for (const sink of this.#sinks) sink.write(visits);
    });
    // bun:sqlite is synchronous, so no visit was recorded between the commit and this swap.
    this.#visits = [];
    this.#pending = new Map();
    return visits.length;
  }
}
