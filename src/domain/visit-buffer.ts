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
import { type LockAttempt, lockRetryPause, RELAXED_LOCK_WAIT_MS, relaxedWriteTransactionIfFree } from "../storage/database";
import type { ShortUrlStore } from "../storage/short-url-store";
import { inBackgroundDbSpan } from "../telemetry/db-span";
import type { PendingCount, Visit, VisitedLink, VisitSink } from "./visit";
import { type ChunkReply, type ChunkWriter, encodeChunk, type PreparedChunk as Prepared, prepareChunk, readChunk } from "./visit-chunk";
import { ChunkPace, type ChunkPart } from "./visit-chunk-pace";
import { addRecord, dropRecords, heldBytesLimit, type LinkRecords, recordAt, VisitLog } from "./visit-log";

export type { OrphanType, PendingCount, Visit, VisitedLink, VisitSink } from "./visit";

const NONE_PENDING: PendingCount = Object.freeze({ total: 0, bots: 0 });

/** The most visits one flush transaction takes, however fast the machine: fewer, larger commits write less WAL. */
export const FLUSH_CHUNK_MAX_VISITS = 1000;
/** After each chunk the flush sleeps as long as it took, never longer: it must keep up (a kill -9 loses an interval). */
const FLUSH_SLEEP: SleepFactors = { min: 1, max: 1 };

/** Most emptied link entries kept for reuse: more than a flush's links at thousands of visits a second. */
const SPARE_LIMIT = 10_000;

/** A chunk to write: what to take, and how much work that is (units, for the pace estimate). */
type ChunkPlan = { parts: readonly ChunkPart[]; orphans: boolean; maxOrphans: number; units: number };

type RemoteAttempt = { value: number } | { busy: Error };

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
  readonly #pace = new ChunkPace();
  /** Writes chunks on another thread when set and usable (useWriter); this thread's own connection otherwise. */
  #writer: ChunkWriter | null = null;
  /** The chunk the writer has now, and its commit count before: once that moved, the chunk is in the database. */
  #inFlight: { chunk: Prepared; commitsBefore: number } | null = null;
  /** A link in a chunk being prepared or written: buffered until it is written. */
  readonly #linkOf = (id: number) => this.#pending.get(id) as PendingLink;
  /** The flushInChunks run going on, if any. */
  #run: Promise<number> | null = null;
  #pending = new Map<number, PendingLink>();
  /** Written links' entries, emptied for reuse: one per visit spread over many links outlived young collections too. */
  readonly #spare: PendingLink[] = [];
  readonly #sinks: VisitSink[] = [];
  readonly #sleep = politeSleep(FLUSH_SLEEP);

  /**
   * With a tracer (tracing on), each flush is a root `sqlite visits.flush` span, sampled like a request. At most
   * `detailLimit` visits' details are held (~300 bytes each), in at most `heldBytesLimit(detailLimit)` bytes: while
   * flushes fail (a full disk), the buffer grows with every redirect, and past either limit a visit is only
   * counted on its link (see `capture`). `clock` (milliseconds) times the chunks.
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
    if (this.#detailed >= this.detailLimit || this.#log.heldBytes >= heldBytesLimit(this.detailLimit)) {
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

  /**
   * Visits recorded for a link but not yet written: while the writer has a chunk whose commit it has counted but not
   * yet answered, that chunk's visits are in the stored counters already, so they are left out here.
   */
  pendingFor(shortUrlId: number): PendingCount {
    const pending = this.#pending.get(shortUrlId);
    if (pending === undefined) return NONE_PENDING;
    const flight = this.#inFlight;
    if (flight === null || this.#writer === null || this.#writer.commits === flight.commitsBefore) {
      return { total: pending.total, bots: pending.bots };
    }
    const i = flight.chunk.parts.findIndex((part) => part.id === shortUrlId);
    if (i < 0) return { total: pending.total, bots: pending.bots };
    return { total: pending.total - (flight.chunk.parts[i] as ChunkPart).take, bots: pending.bots - (flight.chunk.bots[i] as number) };
  }

  get depth(): number {
    return this.#depth;
  }

  /** Flush transactions committed so far: while it stays the same, stored counters plus pendingFor are exact. */
  get commits(): number {
    return this.#commits + (this.#writer?.commits ?? 0);
  }

  /** From now on chunks are written by `writer` (another thread, another connection) while it is usable. */
  useWriter(writer: ChunkWriter | null): void {
    this.#writer = writer;
  }

  /**
   * Writes buffered visits in one immediate transaction and returns how many were written: those of at most
   * `maxLinks` links (lowest ids first), or all. Counters are removed from the buffer only after the commit, so
   * pendingFor stays exact; on failure nothing is dropped and the batch stays buffered for the next attempt.
   */
  flush(maxLinks = Number.POSITIVE_INFINITY): number {
    if (this.#depth === 0) return 0;
    // Its visits are still buffered, and would be written twice.
    if (this.#inFlight !== null) throw new Error("a visit flush chunk is being written by the visit writer: await idle() first");
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

  /** `write` in a `sqlite visits.flush` span when tracing is on (a promise's span ends when it settles). */
  #traced<T>(write: () => T): T {
    const attributes = () => ({ "db.operation.batch.size": this.#pending.size, "shortener.visits": this.#depth });
    return inBackgroundDbSpan(this.tracer, "visits.flush", "short_urls", "update", attributes, write);
  }

  /** Pending link ids in id order: neighbouring rows share B-tree pages, which roughly halves a flush's time. */
  #sortedIds(): Float64Array {
    // A typed array sorts numerically without a comparator call per pair.
    const ids = new Float64Array(this.#pending.size);
    let i = 0;
    for (const id of this.#pending.keys()) ids[i++] = id;
    return ids.sort();
  }

  /**
   * Writes everything buffered in chunks of at most `maxChunkVisits` visits, each sized to hold the event loop
   * for about CHUNK_TARGET_MS (the first, with nothing timed yet, takes the maximum), and after each chunk waits
   * as long as it took (at least a millisecond). So while a run lasts, the flush has at most half of the event
   * loop, and a redirect waits behind one chunk at most.
   * Yielding only until the next tick (setImmediate) let chunks run back to back under load: the p99 of redirects
   * at half capacity was the run's length. A link with more visits than a chunk holds is split across chunks. A
   * chunk that meets another process's write lock is tried again on timers for up to `lockWaitMs`, then the run
   * fails with SQLITE_BUSY, everything not written still buffered.
   * With a visit writer (useWriter), its thread writes the chunks, each as large as `maxChunkVisits` allows, one at
   * a time and with no pause, while this one has nothing to do; this one gathers and encodes each chunk and settles
   * it after (bench/chunk-handoff.ts). After `urgentAfterMs` the run is behind, and the writer is told to take the
   * CPU even from a busy event loop.
   */
  async flushInChunks(
    maxChunkVisits: number,
    lockWaitMs = RELAXED_LOCK_WAIT_MS,
    urgentAfterMs = Number.POSITIVE_INFINITY,
  ): Promise<number> {
    const run = this.#flushRun(maxChunkVisits, lockWaitMs, urgentAfterMs);
    this.#run = run;
    try {
      return await run;
    } finally {
      if (this.#run === run) this.#run = null;
    }
  }

  /** Settles once the flushInChunks run going on (if any) has ended, however: a drain's final flush() waits for it. */
  async idle(): Promise<void> {
    await this.#run?.catch(() => 0);
  }

  async #flushRun(maxChunkVisits: number, lockWaitMs: number, urgentAfterMs: number): Promise<number> {
    const started = this.clock();
    const urgent = () => this.clock() - started > urgentAfterMs;
    const totalOf = (id: number) => this.#pending.get(id)?.total;
    // Sorted once per run; links first visited during the run wait for the next one.
    const ids = this.#sortedIds();
    let written = 0;
    let next = 0;
    while (next < ids.length && this.#depth > 0) {
      let after = next;
      written += await this.#chunk(lockWaitMs, urgent, () => {
        const chunk = this.#pace.linkChunk(ids, next, maxChunkVisits, this.#chunkUnits(), totalOf);
        after = chunk.next;
        return { parts: chunk.parts, orphans: false, maxOrphans: 0, units: chunk.units };
      });
      next = after;
    }
    while (this.#orphans.length > 0) {
      written += await this.#chunk(lockWaitMs, urgent, () => {
        const max = Math.min(maxChunkVisits, this.#chunkUnits());
        return { parts: [], orphans: true, maxOrphans: max, units: Math.min(max, this.#orphans.length) };
      });
    }
    return written;
  }

  /** The writer, while it can write. */
  #usableWriter(): ChunkWriter | null {
    return this.#writer?.usable === true ? this.#writer : null;
  }

  /** Units for the next chunk: the pace's on this thread, as many as a transaction may take on the writer's. */
  #chunkUnits(): number {
    return this.#usableWriter() === null ? this.#pace.units() : Number.POSITIVE_INFINITY;
  }

  /**
   * Writes one chunk once another process's write lock allows (on timers, up to `lockWaitMs`). On this thread it
   * then updates the pace estimate and sleeps as long as the chunk took (at least 1 ms). `build` makes the chunk
   * again for each try: a drain's flush() may have written some of its links while the lock was held.
   */
  async #chunk(lockWaitMs: number, urgent: () => boolean, build: () => ChunkPlan): Promise<number> {
    const started = this.clock();
    for (let tries = 0; ; tries++) {
      const plan = build();
      const writer = this.#usableWriter();
      let attempt: LockAttempt<number> | RemoteAttempt;
      if (writer !== null) {
        attempt = await this.#traced(() => this.#writeRemote(writer, plan.parts, plan.orphans, plan.maxOrphans, urgent()));
      } else {
        const began = this.clock();
        attempt = this.#traced(() => this.#write(plan.parts, plan.orphans, plan.maxOrphans));
        const took = this.clock() - began;
        if ("value" in attempt) {
          this.#pace.timed(plan.units, took);
          await this.#sleep(took);
        }
      }
      if ("value" in attempt) return attempt.value;
      const pause = lockRetryPause(tries);
      if (this.clock() - started + pause > lockWaitMs) throw attempt.busy;
      await Bun.sleep(pause);
    }
  }

  /**
   * Writes the counters and details of the first `take` visits of each part's link, and up to `maxOrphans`
   * orphan visits when `orphans` is set, in one transaction on this thread; or, when another process holds the
   * write lock, nothing.
   */
  #write(parts: readonly ChunkPart[], orphans: boolean, maxOrphans = Number.POSITIVE_INFINITY): LockAttempt<number> {
    const chunk = prepareChunk(parts, orphans ? this.#orphans.slice(0, maxOrphans) : [], this.#linkOf, this.#log);
    if (chunk === null) return { value: 0 };
    // The records read back as objects for the sinks: they live only as long as this chunk.
    const visits = readChunk(chunk, this.#log);
    const attempt = relaxedWriteTransactionIfFree(this.db, () => {
      chunk.parts.forEach(({ id, take }, i) => {
        this.shortUrls.addVisits(id, take, chunk.bots[i] as number);
      });
      for (const sink of this.#sinks) sink.write(visits);
    });
    if ("busy" in attempt) return attempt;
    // bun:sqlite is synchronous: nothing was recorded between the commit and these removals.
    this.#commits++;
    return { value: this.#settle(chunk, visits, this.#sinks) };
  }

  /**
   * The same chunk written by the visit writer's thread: the records are copied out for it, and stay here (counted
   * as pending) until it answers; meanwhile pendingFor leaves out what it has committed (#inFlight).
   */
  async #writeRemote(
    writer: ChunkWriter,
    parts: readonly ChunkPart[],
    orphans: boolean,
    maxOrphans: number,
    urgent: boolean,
  ): Promise<RemoteAttempt> {
    const chunk = prepareChunk(parts, orphans ? this.#orphans.slice(0, maxOrphans) : [], this.#linkOf, this.#log);
    if (chunk === null) return { value: 0 };
    const commitsBefore = writer.commits;
    this.#inFlight = { chunk, commitsBefore };
    let reply: ChunkReply;
    try {
      reply = await writer.write(encodeChunk(chunk, this.#log), urgent);
    } finally {
      this.#inFlight = null;
    }
    if (reply.op === "busy") return { busy: Object.assign(new Error(reply.message), { code: "SQLITE_BUSY" }) };
    // The commit count is what says whether the chunk is in the database (a thread can die between its commit and
    // its answer): written again, its visits would count twice.
    if (reply.op === "failed" && writer.commits === commitsBefore) {
      throw Object.assign(new Error(`visit writer: ${reply.message}`), { code: reply.code });
    }
    // Only the sinks that listen hear of it here (the writer's thread ran the others); they want the visits.
    const listeners = this.#sinks.filter((sink) => sink.wantsCommitted?.() === true);
    const visits = listeners.length === 0 ? [] : readChunk(chunk, this.#log);
    return { value: this.#settle(chunk, visits, listeners) };
  }

  /**
   * After a chunk committed: its visits leave the buffer (links that got more visits meanwhile keep those), their
   * records are released, and `listeners` hear of the visits. Returns how many visits were written.
   */
  #settle(chunk: Prepared<PendingLink>, visits: readonly Visit[], listeners: readonly VisitSink[]): number {
    const pending = this.#pending;
    const log = this.#log;
    let written = 0;
    chunk.parts.forEach(({ id, take }, i) => {
      const link = chunk.links[i] as PendingLink;
      const held = chunk.held[i] as number;
      for (let j = 0; j < held; j++) log.release(recordAt(link, j));
      written += take;
      if (take === link.total) {
        pending.delete(id);
        if (this.#spare.length < SPARE_LIMIT) {
          link.link = null;
          link.first = -1;
          link.more = null;
          this.#spare.push(link);
        }
        return;
      }
      link.total -= take;
      link.bots -= chunk.bots[i] as number;
      dropRecords(link, held);
    });
    const orphanRefs = chunk.orphanRefs;
    if (orphanRefs.length > 0) {
      for (const ref of orphanRefs) log.release(ref);
      this.#orphans = orphanRefs.length === this.#orphans.length ? [] : this.#orphans.slice(orphanRefs.length);
      written += orphanRefs.length;
    }
    this.#detailed -= chunk.held.reduce((sum, held) => sum + held, 0) + orphanRefs.length;
    this.#depth -= written;
    if (visits.length > 0) {
      for (const sink of listeners) {
        try {
          sink.committed?.(visits);
        } catch {
          // Committed is committed: a failing fan-out must not make the flush look failed and write it twice.
        }
      }
    }
    return written;
  }
}
