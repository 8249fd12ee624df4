/**
 * The visit writer's thread (see visit-writer.ts): its own connection to the database, in SCHED_IDLE, writing the
 * chunks of visit flushes the event loop's thread hands it, with the same stores and sinks that thread would run:
 * the links' counters, the raw rows and roll-ups (VisitRecorder), the webhook outbox.
 *
 * On a node that owns its checkpoints it also runs the PASSIVE checkpoint after a chunk, at most once an interval.
 * Here nothing this thread writes can commit during it and leave it short, so the WAL starts over at the next
 * chunk, and it costs the event loop no CPU: on the background checkpointer (storage/checkpointer.ts), at the usual
 * priority, it took ~30 ms a second of the event loop's CPU at 24 000 redirects a second, in stretches redirects
 * queued behind (the tapped p99 fell from 2.05-2.31 to 1.67-2.06 ms when it moved here; bench/RESULTS.md).
 */
import type { Database } from "bun:sqlite";
import { jobFailure, type StartReply } from "../lib/job-thread";
import { type EventLoopCourtesy, eventLoopCourtesy, runOnlyWhenIdle } from "../lib/thread-priority";
import { startYoungCollections } from "../lib/young-collections";
import {
  type CheckpointResult,
  type LockAttempt,
  openDatabase,
  passiveCheckpoint,
  relaxedWriteTransactionIfFree,
} from "../storage/database";
import { ShortUrlStore } from "../storage/short-url-store";
import { VisitStore } from "../storage/visit-store";
import { WebhookStore } from "../storage/webhook-store";
import type { LinkEvent } from "./link-events";
import { CHUNK_STATUS, type ChunkMessage, type ChunkReply, chunkVisits, partCounts, SHARED_SLOTS } from "./visit-chunk";
import { visitLocator } from "./visit-location";
import { type PrivacySettings, VisitRecorder } from "./visit-recorder";
import { visitEventOutbox, type WebhookOutbox } from "./webhooks-outbox";

declare const self: Worker;

export interface WriterStart {
  op: "start";
  path: string;
  /** journal_size_limit, as the event loop's connection has it (when the node owns its checkpoints). */
  walSizeLimitBytes: number | undefined;
  privacy: PrivacySettings;
  geoipDb: string | null;
  baseUrl: string;
  /** The Int32 slots of SHARED_SLOTS. */
  shared: SharedArrayBuffer;
  /** A PASSIVE checkpoint after a chunk at most this often; null when something else owns the checkpoints. */
  checkpointEveryMs: number | null;
}

/** A link this process deleted: its buffered visits must not count for its domain (VisitRecorder). */
export interface LinkDeleted {
  op: "deleted";
  id: number;
}

export type WriterRequest = WriterStart | ChunkMessage | LinkDeleted | "stop";
export type WriterReply =
  | StartReply
  | { op: "answer"; seq: number; reply: ChunkReply }
  | { op: "checkpointed"; result: CheckpointResult }
  | { op: "checkpointFailed"; message: string }
  | "stopped";

interface Writer {
  db: Database;
  /** Steps aside while the event loop waits for this thread's CPU (null: not in SCHED_IDLE, or not possible). */
  courtesy: EventLoopCourtesy | null;
  shortUrls: ShortUrlStore;
  recorder: VisitRecorder;
  outbox: WebhookOutbox;
  slots: Int32Array;
  /** The link.deleted events this thread has handed its recorder (SHARED_SLOTS.deletions counts those posted). */
  deletionsHeard: number;
  checkpointEveryMs: number | null;
  checkpointedAt: number;
}

/** How often this thread's heap is collected whole, and its page cache's size. */
const FULL_COLLECTION_MS = 10_000;
const CACHE_KIB = 512;
/** How many links' counters are updated between two checks whether the event loop waits for this CPU. */
const LINKS_BETWEEN_COURTESIES = 32;
/** How long a chunk waits here for another connection's write lock, and how often it tries for it meanwhile. */
const LOCK_WAIT_MS = 50;
const LOCK_POLL_MS = 0.25;

let writer: Writer | null = null;
let enqueued = false;

function start(message: WriterStart): void {
  const db = openDatabase(message.path, {
    create: false,
    migrate: false,
    noAutomaticCheckpoints: true,
    walSizeLimitBytes: message.walSizeLimitBytes,
  });
  const threadId = runOnlyWhenIdle();
  const courtesy = threadId === null ? null : eventLoopCourtesy();
  writer = {
    db,
    courtesy,
    shortUrls: new ShortUrlStore(db),
    recorder: new VisitRecorder(
      new VisitStore(db, courtesy === null ? null : () => courtesy.pause()),
      message.privacy,
      visitLocator(message.geoipDb),
    ),
    outbox: visitEventOutbox(new WebhookStore(db), message.baseUrl, message.privacy, () => {
      enqueued = true;
    }),
    slots: new Int32Array(message.shared),
    deletionsHeard: 0,
    checkpointEveryMs: message.checkpointEveryMs,
    checkpointedAt: performance.now(),
  };
  // Each chunk's visits die young: collected every second, as on the event loop's thread, they do not pile up in RSS;
  // a full collection now and then costs the event loop nothing here (this thread runs when it is idle).
  startYoungCollections();
  setInterval(() => Bun.gc(true), FULL_COLLECTION_MS).unref();
  // The pages a chunk writes are the ends of the visits tables and the links' index leaves: a small cache will do.
  db.exec(`PRAGMA cache_size = -${CACHE_KIB}`);
  postMessage({ op: "started", threadId } satisfies WriterReply);
}

/** A link.deleted event this thread has not yet heard was committed: the chunk is answered busy, and sent again. */
class DeletedMeanwhile extends Error {}

/**
 * One chunk in one transaction; the commit is counted in shared memory before the reply is posted.
 * While another connection holds the write lock, this thread tries again every LOCK_POLL_MS for up to LOCK_WAIT_MS
 * with `lockWait` set, and the event loop's thread pauses for it (lib/cpu-donation.ts). It has to: this thread
 * runs when that one sleeps, and under link writes that one sleeps mostly in its commit's fsync, holding the lock.
 * Answered busy and sent again, a chunk met the lock held that way for seconds (the crash-safety test's creates),
 * more than a kill -9 may lose.
 */
function write(w: Writer, chunk: ChunkMessage): ChunkReply {
  const visits = chunkVisits(chunk);
  w.courtesy?.refill();
  const slots = w.slots;
  const deadline = performance.now() + LOCK_WAIT_MS;
  let attempt: LockAttempt<void>;
  try {
    for (let tries = 0; ; tries++) {
      attempt = relaxedWriteTransactionIfFree(w.db, () => {
        // Its event must reach the recorder first: a deleted link's days leave its domain's roll-up.
        if (Atomics.load(slots, SHARED_SLOTS.deletions) !== w.deletionsHeard) throw new DeletedMeanwhile();
        for (let i = 0; i < chunk.ids.length; i++) {
          if (i % LINKS_BETWEEN_COURTESIES === 0) w.courtesy?.pause();
          const { take, bots } = partCounts(chunk, i);
          w.shortUrls.addVisits(chunk.ids[i] as number, take, bots);
        }
        w.recorder.write(visits);
        w.outbox.write(visits);
      });
      if (!("busy" in attempt) || performance.now() > deadline || tries > LOCK_WAIT_MS / LOCK_POLL_MS) break;
      Atomics.store(slots, SHARED_SLOTS.lockWait, 1);
      Atomics.wait(slots, SHARED_SLOTS.lockWait, 1, LOCK_POLL_MS);
    }
  } catch (error) {
    if (error instanceof DeletedMeanwhile) return { op: "busy", message: "a link was deleted while the chunk waited" };
    throw error;
  } finally {
    Atomics.store(slots, SHARED_SLOTS.lockWait, 0);
  }
  if ("busy" in attempt) return { op: "busy", message: attempt.busy.message };
  Atomics.add(slots, SHARED_SLOTS.commits, 1);
  w.recorder.committed();
  enqueued = false;
  w.outbox.committed();
  return { op: "written", enqueued };
}

self.onmessage = (event: MessageEvent<WriterRequest>) => {
  const message = event.data;
  if (message === "stop") {
    writer?.db.close();
    writer = null;
    postMessage("stopped" satisfies WriterReply);
    return;
  }
  if (message.op === "start") {
    try {
      start(message);
    } catch (error) {
      postMessage({ op: "startFailed", message: jobFailure(error).message } satisfies WriterReply);
    }
    return;
  }
  const w = writer;
  if (message.op === "deleted") {
    if (w === null) return;
    w.recorder.inTransaction({ type: "link.deleted", shortUrl: { id: message.id } } as LinkEvent);
    w.deletionsHeard++;
    return;
  }
  let reply: ChunkReply;
  try {
    reply = w === null ? { op: "failed", message: "the visit writer is not started", code: null } : write(w, message);
  } catch (error) {
    reply = jobFailure(error);
  }
  if (w !== null) {
    const slots = w.slots;
    Atomics.store(slots, SHARED_SLOTS.status, CHUNK_STATUS[reply.op]);
    Atomics.store(slots, SHARED_SLOTS.enqueued, reply.op === "written" && reply.enqueued ? 1 : 0);
    Atomics.add(slots, SHARED_SLOTS.done, 1);
    Atomics.notify(slots, SHARED_SLOTS.done);
  }
  postMessage({ op: "answer", seq: message.seq, reply } satisfies WriterReply);
  // After the answer: the event loop's next chunk waits for it here, rather than the answer.
  if (w !== null && reply.op === "written") checkpointIfDue(w);
};

/** The PASSIVE checkpoint after a written chunk, when one is due; its result (or failure) is posted. */
function checkpointIfDue(w: Writer): void {
  const started = performance.now();
  if (w.checkpointEveryMs === null || started - w.checkpointedAt < w.checkpointEveryMs) return;
  w.checkpointedAt = started;
  let reply: WriterReply;
  try {
    reply = { op: "checkpointed", result: passiveCheckpoint(w.db) };
  } catch (error) {
    reply = { op: "checkpointFailed", message: jobFailure(error).message };
  }
  postMessage(reply);
}
