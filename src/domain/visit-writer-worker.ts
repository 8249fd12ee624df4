/**
 * The visit writer's thread (see visit-writer.ts): its own connection to the database, in SCHED_IDLE, writing the
 * chunks of visit flushes the event loop's thread hands it, with the same stores and sinks that thread would run:
 * the links' counters, the raw rows and roll-ups (VisitRecorder), the webhook outbox.
 */
import type { Database } from "bun:sqlite";
import { runOnlyWhenIdle } from "../lib/thread-priority";
import { startYoungCollections } from "../lib/young-collections";
import { openDatabase, relaxedWriteTransactionIfFree } from "../storage/database";
import { ShortUrlStore } from "../storage/short-url-store";
import { VisitStore } from "../storage/visit-store";
import { WebhookStore } from "../storage/webhook-store";
import type { LinkEvent } from "./link-events";
import { CHUNK_STATUS, type ChunkMessage, type ChunkReply, chunkVisits, SHARED_SLOTS } from "./visit-chunk";
import { visitLocator } from "./visit-location";
import { type PrivacySettings, VisitRecorder } from "./visit-recorder";
import { publicShortUrl, WebhookOutbox } from "./webhooks-outbox";

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
}

/** A link this process deleted: its buffered visits must not count for its domain (VisitRecorder). */
export interface LinkDeleted {
  op: "deleted";
  id: number;
}

export type WriterRequest = WriterStart | ChunkMessage | LinkDeleted | "stop";
export type WriterReply =
  | { op: "started"; threadId: number | null }
  | { op: "failed"; message: string; code: string | null }
  | { op: "answer"; seq: number; reply: ChunkReply }
  | "stopped";

interface Writer {
  db: Database;
  shortUrls: ShortUrlStore;
  recorder: VisitRecorder;
  outbox: WebhookOutbox;
  slots: Int32Array;
}

/** How often this thread's heap is collected whole, and its page cache's size. */
const FULL_COLLECTION_MS = 10_000;
const CACHE_KIB = 512;

let writer: Writer | null = null;
let enqueued = false;

function failure(error: unknown): { op: "failed"; message: string; code: string | null } {
  const code = (error as { code?: unknown }).code;
  return { op: "failed", message: error instanceof Error ? error.message : String(error), code: typeof code === "string" ? code : null };
}

function start(message: WriterStart): void {
  const db = openDatabase(message.path, {
    create: false,
    migrate: false,
    noAutomaticCheckpoints: true,
    walSizeLimitBytes: message.walSizeLimitBytes,
  });
  writer = {
    db,
    shortUrls: new ShortUrlStore(db),
    recorder: new VisitRecorder(new VisitStore(db), message.privacy, visitLocator(message.geoipDb)),
    outbox: new WebhookOutbox(new WebhookStore(db), {
      linkJson: () => {
        throw new Error("the visit writer stores visit events only");
      },
      shortUrlOf: (code, domain) => publicShortUrl(message.baseUrl, code, domain),
      privacy: message.privacy,
      onEnqueued: () => {
        enqueued = true;
      },
    }),
    slots: new Int32Array(message.shared),
  };
  // Each chunk's visits die young: collected every second, as on the event loop's thread, they do not pile up in RSS;
  // a full collection now and then costs the event loop nothing here (this thread runs when it is idle).
  startYoungCollections();
  setInterval(() => Bun.gc(true), FULL_COLLECTION_MS).unref();
  // The pages a chunk writes are the ends of the visits tables and the links' index leaves: a small cache will do.
  db.exec(`PRAGMA cache_size = -${CACHE_KIB}`);
  postMessage({ op: "started", threadId: runOnlyWhenIdle() } satisfies WriterReply);
}

/** One chunk in one transaction; the commit is counted in shared memory before the reply is posted. */
function write(w: Writer, chunk: ChunkMessage): ChunkReply {
  const visits = chunkVisits(chunk);
  const attempt = relaxedWriteTransactionIfFree(w.db, () => {
    for (let i = 0; i < chunk.ids.length; i++) {
      w.shortUrls.addVisits(chunk.ids[i] as number, chunk.counts[3 * i] as number, chunk.counts[3 * i + 1] as number);
    }
    w.recorder.write(visits);
    w.outbox.write(visits);
  });
  if ("busy" in attempt) return { op: "busy", message: attempt.busy.message };
  Atomics.add(w.slots, SHARED_SLOTS.commits, 1);
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
      postMessage(failure(error) satisfies WriterReply);
    }
    return;
  }
  const w = writer;
  if (message.op === "deleted") {
    w?.recorder.inTransaction({ type: "link.deleted", shortUrl: { id: message.id } } as LinkEvent);
    return;
  }
  let reply: ChunkReply;
  try {
    reply = w === null ? { op: "failed", message: "the visit writer is not started", code: null } : write(w, message);
  } catch (error) {
    reply = failure(error);
  }
  if (w !== null) {
    const slots = w.slots;
    Atomics.store(slots, SHARED_SLOTS.status, CHUNK_STATUS[reply.op]);
    Atomics.store(slots, SHARED_SLOTS.enqueued, reply.op === "written" && reply.enqueued ? 1 : 0);
    Atomics.add(slots, SHARED_SLOTS.done, 1);
    Atomics.notify(slots, SHARED_SLOTS.done);
  }
  postMessage({ op: "answer", seq: message.seq, reply } satisfies WriterReply);
};
