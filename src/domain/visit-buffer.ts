/**
 * Visits are counted off the hot path: a redirect adds to this in-memory buffer, and `flush` writes what is
 * buffered in a transaction (per-link counters now; raw visit rows and other sinks plug in as VisitSinks, written
 * in the same transaction as their links' counters).
 * Pending counts per link are kept so that a link reloaded into the cache sees its exact total.
 */
import type { Database } from "bun:sqlite";
import type { Tracer } from "@opentelemetry/api";
import { relaxedWriteTransaction } from "../storage/database";
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
  #depth = 0;
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
    this.#depth++;
    // Visit objects are only kept for sinks that want them; the counters need none (hot path).
    if (this.#sinks.length > 0) this.#visits.push({ shortUrlId, at, bot });
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
    return this.#depth;
  }

  /**
   * Writes buffered visits in one immediate transaction and returns how many were written: those of at most
   * `maxLinks` links (lowest ids first), or all. Counters are removed from the buffer only after the commit, so
   * pendingFor stays exact; on failure nothing is dropped and the batch stays buffered for the next attempt.
   */
  flush(maxLinks = Number.POSITIVE_INFINITY): number {
    if (this.#depth === 0) return 0;
    return this.#traced(() => this.#write(this.#sortedIds().slice(0, maxLinks)));
  }

  #traced(write: () => number): number {
    if (this.tracer === null) return write();
    const span = startBackgroundDbSpan(this.tracer, "visits.flush", "short_urls", "update", {
      "db.operation.batch.size": this.#pending.size,
      "shortener.visits": this.#depth,
    });
    try {
      return write();
    } catch (error) {
      recordSpanError(span, error);
      throw error;
    } finally {
      span.end();
    }
  }

  /** Pending link ids in id order: neighbouring rows share B-tree pages, which roughly halves a flush's time. */
  #sortedIds(): number[] {
    return [...this.#pending.keys()].sort((a, b) => a - b);
  }

  /**
   * Writes everything buffered in chunks of `chunkLinks` links, yielding to the event loop between chunks, so a
   * busy second's flush never stalls redirects for more than one chunk (about a millisecond).
   */
  async flushInChunks(chunkLinks: number): Promise<number> {
    // Sorted once per run; links first visited during the run wait for the next one.
    const ids = this.#sortedIds();
    let written = 0;
    for (let start = 0; start < ids.length && this.#depth > 0; start += chunkLinks) {
      const slice = ids.slice(start, start + chunkLinks).filter((id) => this.#pending.has(id));
      written += this.#traced(() => this.#write(slice));
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
    return written;
  }

  #write(ids: readonly number[]): number {
    const pending = this.#pending;
    if (ids.length === 0) return 0;
    const all = ids.length === pending.size;
    const chunk = all ? null : new Set(ids);
    const visits = chunk === null ? this.#visits : this.#visits.filter((v) => chunk.has(v.shortUrlId));
    let written = 0;
    relaxedWriteTransaction(this.db, () => {
      for (const id of ids) {
        const count = pending.get(id) as PendingCount;
        this.shortUrls.addVisits(id, count.total, count.bots);
        written += count.total;
      }
      for (const sink of this.#sinks) sink.write(visits);
    });
    // bun:sqlite is synchronous: nothing was recorded between the commit and these removals.
    if (chunk === null) {
      this.#visits = [];
      this.#pending = new Map();
    } else {
      if (this.#visits.length > 0) this.#visits = this.#visits.filter((v) => !chunk.has(v.shortUrlId));
      for (const id of ids) pending.delete(id);
    }
    this.#depth -= written;
    return written;
  }
}
