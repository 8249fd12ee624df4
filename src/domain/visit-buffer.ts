/**
 * Visits are counted off the hot path: a redirect adds to this in-memory buffer, and `flush` writes what is
 * buffered in a transaction: per-link counters, and through VisitSinks the raw visit rows, roll-ups and outbox
 * events, all in the same transaction as their links' counters. After the commit, sinks hear of what was written
 * (the real-time feed fans out from there).
 * Pending counts per link are kept so that a link reloaded into the cache sees its exact total.
 */
import type { Database } from "bun:sqlite";
import type { Tracer } from "@opentelemetry/api";
import { politeSleep, type SleepFactors } from "../lib/polite-sleep";
import { type LockAttempt, RELAXED_LOCK_WAIT_MS, relaxedWriteTransactionIfFree, whenLockFree } from "../storage/database";
import type { ShortUrlStore } from "../storage/short-url-store";
import { recordSpanError, startBackgroundDbSpan } from "../telemetry/db-span";
import { addRecord, dropRecords, heldRecords, type LinkRecords, recordAt, VisitLog } from "./visit-log";

/** Shlink's orphan visit types: a visit to the base URL, to an unknown short code, or to any other unknown path. */
export type OrphanType = "base_url" | "invalid_short_url" | "regular_404";

/** The link a visit went to, as the redirect path knows it. */
export interface VisitedLink {
  id: number;
  shortCode: string;
  /** '' for the default domain. */
  domain: string;
}

/**
 * One visit as the public listener saw it. `ip` is the client's address as received: it is never stored as is
 * (the flush anonymises or drops it, per the privacy settings, after using it for location and unique visitors).
 */
export interface Visit {
  /** The link visited; null for an orphan visit. */
  link: VisitedLink | null;
  orphanType: OrphanType | null;
  /** Epoch milliseconds. */
  at: number;
  bot: boolean;
  referer: string | null;
  userAgent: string | null;
  ip: string | null;
  visitedUrl: string;
  /** The Location sent; null for orphan visits. */
  redirectUrl: string | null;
}

/** Something that persists a batch of visits inside the flush transaction. */
export interface VisitSink {
  /** Inside the flush transaction: throwing rolls the whole batch back (it stays buffered). */
  write(visits: readonly Visit[]): void;
  /** After the batch committed; must not throw (best-effort fan-out). */
  committed?(visits: readonly Visit[]): void;
}

export interface PendingCount {
  total: number;
  bots: number;
}

const NONE_PENDING: PendingCount = Object.freeze({ total: 0, bots: 0 });

/**
 * How long one chunk of a flush should hold the event loop. Chunks are sized from the time recent ones took per
 * unit of work (which varies with the machine and the page cache): a visit is a unit (its raw row), and each link
 * in the chunk adds LINK_UNITS more (its counters and day roll-up, in pages of their own), so a chunk of many
 * once-visited links is cut shorter than one of a few busy links. 1 ms halved the redirect tail again (p99 6.5 ms
 * against 7-12 ms at 8 000 req/s on the test VM) but, with twice the commits, cost throughput at saturation (the
 * WAL frames every commit rewrites); 2 ms did not.
 */
const CHUNK_TARGET_MS = 2;
const LINK_UNITS = 4;
/** Fewest units a chunk may be given, however slow recent chunks were. */
const MIN_CHUNK_UNITS = 32;
/** The most visits one flush transaction takes, however fast the machine: fewer, larger commits write less WAL. */
export const FLUSH_CHUNK_MAX_VISITS = 1000;
/** Weight of the newest chunk in the running time-per-unit estimate. */
const CHUNK_ESTIMATE_WEIGHT = 0.3;
/** After each chunk the flush sleeps as long as it took, never longer: it must keep up (a kill -9 loses an interval). */
const FLUSH_SLEEP: SleepFactors = { min: 1, max: 1 };

/** Most emptied link entries kept for reuse: more than a flush's links at thousands of visits a second. */
const SPARE_LIMIT = 10_000;

/** The first `take` buffered visits of a link, as one chunk writes them. */
interface Part {
  id: number;
  take: number;
}

/** A link's buffered counts and, when sinks want them, its visits' records in the log. */
interface PendingLink extends PendingCount, LinkRecords {
  link: VisitedLink | null;
}

export class VisitBuffer {
  /** Orphan visits' records in the log, in time order. */
  #orphans: number[] = [];
  readonly #log = new VisitLog();
  #depth = 0;
  /** Visits whose details are held (link and orphan visits), against `detailLimit`. */
  #detailed = 0;
  #detailsDropped = 0;
  #commits = 0;
  /** Running estimate of a flush chunk's milliseconds per unit of work; undefined until a chunk has been timed. */
  #msPerUnit: number | undefined;
  #pending = new Map<number, PendingLink>();
  /** Written links' entries, emptied for reuse: one per visit spread over many links outlived young collections too. */
  readonly #spare: PendingLink[] = [];
  readonly #sinks: VisitSink[] = [];
  readonly #sleep = politeSleep(FLUSH_SLEEP);

  /**
   * With a tracer (tracing on), each flush is a root `sqlite visits.flush` span, sampled like a request. At most
   * `detailLimit` visits' details are held (~300 bytes each): while flushes fail (a full disk), the buffer grows with
   * every redirect, and past the limit a visit is only counted on its link (see `capture`). `clock` (milliseconds)
   * times the chunks.
   */
  constructor(
    private readonly db: Database,
    private readonly shortUrls: ShortUrlStore,
    private readonly tracer: Tracer | null = null,
    private readonly detailLimit = Number.POSITIVE_INFINITY,
    private readonly clock: () => number = () => performance.now(),
  ) {}

  /** Adds a sink that receives every flushed batch (for example raw visit rows). */
  addSink(sink: VisitSink): void {
    this.#sinks.push(sink);
  }

  /** Counts a visit to a link; `capture` adds its details for the sinks. */
  record(shortUrlId: number, bot: boolean): void {
    this.#depth++;
    const pending = this.#pending.get(shortUrlId);
    if (pending) {
      pending.total++;
      if (bot) pending.bots++;
    } else {
      const fresh = this.#spare.pop() ?? { total: 0, bots: 0, link: null, first: -1, more: null };
      fresh.total = 1;
      fresh.bots = bot ? 1 : 0;
      this.#pending.set(shortUrlId, fresh);
    }
  }

  /**
   * Keeps a counted visit's details for the sinks (raw rows, roll-ups, events), in the same tick as its `record`.
   * Details are only kept when a sink wants them, and only up to the limit: past it the visit stays counted on its
   * link (its total, and maxVisits, stay exact) but gets no raw row, day roll-up, webhook or feed event.
   */
  capture(visit: Visit): void {
    if (this.#sinks.length === 0 || visit.link === null) return;
    const pending = this.#pending.get(visit.link.id);
    if (pending === undefined || !this.#admitDetails()) return;
    pending.link = visit.link;
    addRecord(pending, this.#log.append(visit));
  }

  /** An orphan visit (no link to count): kept for the sinks, written with the next flush's last chunk; dropped past the limit. */
  captureOrphan(visit: Visit): void {
    if (this.#sinks.length === 0 || !this.#admitDetails()) return;
    this.#orphans.push(this.#log.append(visit));
    this.#depth++;
  }

  /** Whether one more visit's details fit under the limit (then they are counted as held), else counts them dropped. */
  #admitDetails(): boolean {
    if (this.#detailed >= this.detailLimit) {
      this.#detailsDropped++;
      return false;
    }
    this.#detailed++;
    return true;
  }

  /** Visits whose details were dropped because the buffer held `detailLimit` already (orphan visits: dropped whole). */
  get detailsDropped(): number {
    return this.#detailsDropped;
  }

  /** Visits recorded for a link but not yet written. */
  pendingFor(shortUrlId: number): PendingCount {
    const pending = this.#pending.get(shortUrlId);
    return pending === undefined ? NONE_PENDING : { total: pending.total, bots: pending.bots };
  }

  get depth(): number {
    return this.#depth;
  }

  /** Flush transactions committed so far: while it stays the same, stored counters plus pendingFor are exact. */
  get commits(): number {
    return this.#commits;
  }

  /**
   * Writes buffered visits in one immediate transaction and returns how many were written: those of at most
   * `maxLinks` links (lowest ids first), or all. Counters are removed from the buffer only after the commit, so
   * pendingFor stays exact; on failure nothing is dropped and the batch stays buffered for the next attempt.
   */
  flush(maxLinks = Number.POSITIVE_INFINITY): number {
    if (this.#depth === 0) return 0;
    const ids = this.#sortedIds();
    const parts = Array.from(ids.subarray(0, Math.min(ids.length, maxLinks)), (id) => ({
      id,
      take: (this.#pending.get(id) as PendingLink).total,
    }));
    return this.#traced(() => {
      const attempt = this.#write(parts, ids.length <= maxLinks);
      if ("busy" in attempt) throw attempt.busy;
      return attempt.value;
    });
  }

  #traced<T>(write: () => T): T {
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
  #sortedIds(): Float64Array {
    // A typed array sorts numerically without a comparator call per pair.
    return Float64Array.from(this.#pending.keys()).sort();
  }

  /**
   * Writes everything buffered in chunks of at most `maxChunkVisits` visits, each sized to hold the event loop
   * for about CHUNK_TARGET_MS (the first, with nothing timed yet, takes the maximum), and after each chunk waits
   * as long as it took (at least a millisecond). So while a run lasts, the flush has at most half of the event
   * loop, and a redirect waits behind one chunk at most.
   * Handing the loop back only until the next tick (setImmediate) was not enough: under load, chunks of several
   * milliseconds then ran almost back to back, a backlog of requests built up over the whole run, and the p99
   * of redirects at half capacity was the run's length (30-50 ms on the test VM). A link with more visits than a
   * chunk holds is split across chunks (its counters too, so totals stay exact).
   * A chunk that meets another process's write lock is tried again on timers for up to `lockWaitMs`, then the run
   * fails with SQLITE_BUSY, everything not written still buffered.
   */
  async flushInChunks(maxChunkVisits: number, lockWaitMs = RELAXED_LOCK_WAIT_MS): Promise<number> {
    // Sorted once per run; links first visited during the run wait for the next one.
    const ids = this.#sortedIds();
    let written = 0;
    let next = 0;
    while (next < ids.length && this.#depth > 0) {
      let after = next;
      written += await this.#chunk(lockWaitMs, () => {
        const chunk = this.#linkChunk(ids, next, maxChunkVisits);
        after = chunk.next;
        return { units: chunk.units, write: () => this.#write(chunk.parts, false) };
      });
      next = after;
    }
    while (this.#orphans.length > 0) {
      written += await this.#chunk(lockWaitMs, () => {
        const max = Math.min(maxChunkVisits, this.#chunkUnits());
        return { units: Math.min(max, this.#orphans.length), write: () => this.#write([], true, max) };
      });
    }
    return written;
  }

  /**
   * The next chunk of links from `ids[from]` on, sized to the estimated pace (#chunkUnits) and `maxChunkVisits`: its
   * parts, units of work, and where the chunk after it starts.
   */
  #linkChunk(ids: Float64Array, from: number, maxChunkVisits: number): { parts: Part[]; units: number; next: number } {
    const parts: Part[] = [];
    let next = from;
    let visits = maxChunkVisits;
    let units = this.#chunkUnits();
    let used = 0;
    while (next < ids.length && visits > 0 && (units > LINK_UNITS || parts.length === 0)) {
      const id = ids[next] as number;
      const pending = this.#pending.get(id);
      if (pending === undefined) {
        next++;
        continue;
      }
      const take = Math.min(pending.total, visits, Math.max(1, units - LINK_UNITS));
      parts.push({ id, take });
      visits -= take;
      units -= take + LINK_UNITS;
      used += take + LINK_UNITS;
      if (take === pending.total) next++;
    }
    return { parts, units: used, next };
  }

  /** Units of work for the next chunk: CHUNK_TARGET_MS at the estimated pace, at least MIN_CHUNK_UNITS. */
  #chunkUnits(): number {
    if (this.#msPerUnit === undefined) return Number.POSITIVE_INFINITY;
    return Math.max(MIN_CHUNK_UNITS, Math.round(CHUNK_TARGET_MS / this.#msPerUnit));
  }

  /**
   * Writes one chunk once another process's write lock allows (whenLockFree: on timers, up to `lockWaitMs`), updates
   * the pace estimate, then sleeps as long as the chunk took (at least 1 ms). `build` makes the chunk again for each
   * try: a drain's flush() may have written some of its links while the lock was held.
   */
  async #chunk(lockWaitMs: number, build: () => { units: number; write: () => LockAttempt<number> }): Promise<number> {
    let units = 0;
    let took = 0;
    const written = await whenLockFree(() => {
      const chunk = build();
      units = chunk.units;
      const started = this.clock();
      const attempt = this.#traced(chunk.write);
      took = this.clock() - started;
      return attempt;
    }, lockWaitMs);
    if (units > 0) {
      const pace = took / units;
      this.#msPerUnit = this.#msPerUnit === undefined ? pace : this.#msPerUnit + CHUNK_ESTIMATE_WEIGHT * (pace - this.#msPerUnit);
    }
    await this.#sleep(took);
    return written;
  }

  /**
   * Writes the counters and details of the first `take` visits of each part's link, and up to `maxOrphans`
   * orphan visits when `orphans` is set, in one transaction; or, when another process holds the write lock, nothing.
   */
  #write(parts: readonly Part[], orphans: boolean, maxOrphans = Number.POSITIVE_INFINITY): LockAttempt<number> {
    const pending = this.#pending;
    const log = this.#log;
    const orphanRefs = orphans ? this.#orphans.slice(0, maxOrphans) : [];
    if (parts.length === 0 && orphanRefs.length === 0) return { value: 0 };
    // The records read back as objects for the sinks: they live only as long as this chunk.
    const visits: Visit[] = [];
    const bots: number[] = [];
    for (const { id, take } of parts) {
      const link = pending.get(id) as PendingLink;
      const held = Math.min(take, heldRecords(link));
      let heldBots = 0;
      for (let i = 0; i < held; i++) {
        const visit = log.read(recordAt(link, i), link.link);
        if (visit.bot) heldBots++;
        visits.push(visit);
      }
      // The whole link: its exact bot count. Part of it: the held visits' bots, or (details dropped) as many as fit.
      bots.push(take === link.total ? link.bots : held === take ? heldBots : Math.min(link.bots, take));
    }
    for (const ref of orphanRefs) visits.push(log.read(ref, null));
    let written = 0;
    const attempt = relaxedWriteTransactionIfFree(this.db, () => {
      parts.forEach(({ id, take }, i) => {
        this.shortUrls.addVisits(id, take, bots[i] as number);
        written += take;
      });
      for (const sink of this.#sinks) sink.write(visits);
    });
    if ("busy" in attempt) return attempt;
    // bun:sqlite is synchronous: nothing was recorded between the commit and these removals.
    parts.forEach(({ id, take }, i) => {
      const link = pending.get(id) as PendingLink;
      const held = Math.min(take, heldRecords(link));
      for (let j = 0; j < held; j++) log.release(recordAt(link, j));
      if (take === link.total) {
        pending.delete(id);
        if (this.#spare.length < SPARE_LIMIT) this.#spare.push(Object.assign(link, { link: null, first: -1, more: null }));
        return;
      }
      link.total -= take;
      link.bots -= bots[i] as number;
      dropRecords(link, held);
    });
    if (orphans) {
      for (const ref of orphanRefs) log.release(ref);
      this.#orphans = orphanRefs.length === this.#orphans.length ? [] : this.#orphans.slice(orphanRefs.length);
      written += orphanRefs.length;
    }
    this.#detailed -= visits.length;
    this.#depth -= written;
    this.#commits++;
    if (visits.length > 0) {
      for (const sink of this.#sinks) {
        try {
          sink.committed?.(visits);
        } catch {
          // Committed is committed: a failing fan-out must not make the flush look failed and write it twice.
        }
      }
    }
    return { value: written };
  }
}
