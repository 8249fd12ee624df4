/**
 * Visit flush chunks written on a thread of their own, so that the thread serving redirects never holds them up.
 * On the event loop a chunk of ~2 ms held every redirect that arrived meanwhile: at half capacity the server-side
 * p99 was ~3.4 ms, the chunks' length plus the backlog behind them. A worker thread at the usual priority did no
 * better on one CPU (the kernel lets it finish its slice before a woken event loop runs), but one in SCHED_IDLE is
 * preempted the moment a request arrives (lib/thread-priority.ts): with the same background work the p99 stayed
 * at that of no work at all (bench/RESULTS.md, seventeenth session).
 *
 * A SCHED_IDLE thread gets the CPU only when no other thread wants it, and a saturated event loop always does. So
 * while a chunk waits longer than GRACE_MS, or the flush is behind (`urgent`), the event loop's thread donates it
 * CPU time (lib/cpu-donation.ts), as the event loop's own chunks and pauses used to take. It does so at once while
 * the writer waits for a write lock this thread has just held: under link writes, this thread holds the lock through
 * each commit's fsync, which is when the writer gets the CPU. Another process's lock (Litestream's checkpoints, the
 * other colour's migration) gets no such pause: it only slowed redirects (p99 from due time at 20 000 a second
 * a median of 7.18 ms with it, 4.45 ms without, under a lock held 3 s in every 3.5: bench/foreign-lock.ts).
 * The same timer reads how the chunk ended from shared memory: the worker's message saying so took ~50 ms to arrive
 * on a saturated event loop (the writer then wrote 20 chunks a second).
 * The writer in turn steps aside between batches of rows while the event loop waits for its CPU (eventLoopCourtesy).
 *
 * The writer's commits are counted in shared memory before it answers (VisitBuffer.pendingFor uses that), and it
 * hears of link deletions (a LinkEventListener) before any chunk posted after them.
 */
import { donateUntilEnded } from "../lib/cpu-donation";
import { JobThread, type StartReply } from "../lib/job-thread";
import { workerUrl } from "../lib/workers";
import { type CheckpointResult, wroteLately } from "../storage/database";
import type { LinkEvent, LinkEventListener, LinkEventType } from "./link-events";
import {
  CHUNK_STATUS,
  type ChunkMessage,
  type ChunkReply,
  type ChunkWriter,
  chunkTransfers,
  SHARED_SLOT_COUNT,
  SHARED_SLOTS,
} from "./visit-chunk";
import type { PrivacySettings } from "./visit-recorder";
import type { WriterReply, WriterRequest } from "./visit-writer-worker";

export interface VisitWriterOptions {
  path: string;
  walSizeLimitBytes: number | undefined;
  privacy: PrivacySettings;
  geoipDb: string | null;
  baseUrl: string;
  /** A PASSIVE checkpoint after a chunk at most this often, on the writer's thread; null when it runs none. */
  checkpointEveryMs: number | null;
}

export interface VisitWriterEvents {
  /** A chunk stored webhook events: the dispatcher can send them. */
  enqueued(): void;
  /** The thread ran its checkpoint after a chunk (checkpointEveryMs). */
  checkpointed(result: CheckpointResult): void;
  checkpointFailed(message: string): void;
  /** The writer's thread failed and will not write again (the buffer writes on its own connection then). */
  failed(message: string): void;
}

/**
 * How lately this thread must have written for the lock the writer waits for to count as its own. Link writes under
 * load commit a few milliseconds apart (each holds the lock through its fsync); a node that wrote nothing for longer
 * is not what keeps the writer out.
 */
const OWN_WRITES_WITHIN_MS = 10;

/** What the writer's thread says besides its start's answer. */
type WriterMessage = Exclude<WriterReply, StartReply | "stopped">;

export class VisitWriter extends JobThread<WriterRequest, WriterMessage, ChunkReply> implements ChunkWriter, LinkEventListener {
  readonly #slots = new Int32Array(new SharedArrayBuffer(4 * SHARED_SLOT_COUNT));
  #seq = 0;

  constructor(
    private readonly options: VisitWriterOptions,
    private readonly events: VisitWriterEvents,
  ) {
    super("visit writer");
  }

  /** Starts the thread; resolves once its connection is open, rejects (and stays unusable) if it cannot open it. */
  start(): Promise<void> {
    const { path, walSizeLimitBytes, privacy, geoipDb, baseUrl, checkpointEveryMs } = this.options;
    const shared = this.#slots.buffer as SharedArrayBuffer;
    const url = workerUrl(new URL("./visit-writer-worker.ts", import.meta.url), "./domain/visit-writer-worker.ts");
    return this.startThread(url, { op: "start", path, walSizeLimitBytes, privacy, geoipDb, baseUrl, shared, checkpointEveryMs });
  }

  protected replied(reply: WriterMessage): void {
    if (reply.op === "checkpointed") this.events.checkpointed(reply.result);
    else if (reply.op === "checkpointFailed") this.events.checkpointFailed(reply.message);
    else if (reply.seq === this.#seq) this.answer?.(reply.reply);
  }

  protected failed(message: string): void {
    this.events.failed(message);
  }

  get commits(): number {
    return Atomics.load(this.#slots, SHARED_SLOTS.commits);
  }

  /** True while the thread waits for another connection's write lock to write a chunk. */
  get waitingForLock(): boolean {
    return Atomics.load(this.#slots, SHARED_SLOTS.lockWait) === 1;
  }

  write(chunk: ChunkMessage, urgent: boolean): Promise<ChunkReply> {
    if (!this.usable) return Promise.resolve({ op: "failed", message: "the visit writer is not running", code: null });
    if (this.answer !== null) throw new Error("the visit writer takes one chunk at a time");
    const slots = this.#slots;
    const doneBefore = Atomics.load(slots, SHARED_SLOTS.done);
    chunk.seq = ++this.#seq;
    return new Promise((resolve) => {
      let stopDonating = () => {};
      const answer = (reply: ChunkReply) => {
        stopDonating();
        this.answer = null;
        if (reply.op === "written" && reply.enqueued) this.events.enqueued();
        resolve(reply);
      };
      // How the chunk ended, from shared memory; a failure's message comes with the worker's own answer.
      const ended = () => {
        if (Atomics.load(slots, SHARED_SLOTS.done) === doneBefore) return false;
        const status = Atomics.load(slots, SHARED_SLOTS.status);
        if (status === CHUNK_STATUS.written) answer({ op: "written", enqueued: Atomics.load(slots, SHARED_SLOTS.enqueued) === 1 });
        else if (status === CHUNK_STATUS.busy) answer({ op: "busy", message: "database is locked" });
        return true;
      };
      this.answer = answer;
      this.post(chunk, chunkTransfers(chunk));
      // While the writer waits for the write lock that this thread's own writes hold nearly all the time (link
      // writes back to back), this thread makes room. Another process's lock (Litestream's, the other colour's)
      // it cannot hurry, however late the run: pausing then would only take the CPU from redirects.
      const waiting = () => (Atomics.load(slots, SHARED_SLOTS.lockWait) === 1 ? wroteLately(OWN_WRITES_WITHIN_MS) : urgent);
      stopDonating = donateUntilEnded({ ended, urgent: waiting, slots, index: SHARED_SLOTS.done, value: doneBefore });
    });
  }

  wants(type: LinkEventType): boolean {
    return type === "link.deleted" && this.usable;
  }

  /** In the deletion's transaction: the writer's recorder must know before it writes another chunk. */
  inTransaction(event: LinkEvent): void {
    // Counted before the commit, so a chunk that takes the lock after it knows it has not heard of it yet.
    Atomics.add(this.#slots, SHARED_SLOTS.deletions, 1);
    this.post({ op: "deleted", id: event.shortUrl.id });
  }
}
