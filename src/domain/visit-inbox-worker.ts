/**
 * The visit inbox's thread (see visit-inbox-thread.ts): its own connection to the database, in SCHED_IDLE, reading,
 * parsing and writing one shipment a job, part by part (domain/shipment-parts.ts), with the stores the event loop's
 * inbox would use. Between batches of rows it steps aside while the event loop waits for its CPU (eventLoopCourtesy);
 * while another connection holds the write lock it waits on timers, as the event loop's inbox would.
 */
import type { Database } from "bun:sqlite";
import { jobFailure, type StartReply } from "../lib/job-thread";
import { eventLoopCourtesy, runOnlyWhenIdle } from "../lib/thread-priority";
import { startYoungCollections } from "../lib/young-collections";
import { lockRetryPause, openDatabase, writeTransactionIfFree } from "../storage/database";
import { ShipmentLedger } from "../storage/shipment-ledger";
import { ShortUrlStore } from "../storage/short-url-store";
import { VisitStore } from "../storage/visit-store";
import { WebhookStore } from "../storage/webhook-store";
import { type PartStores, readShipment, shipmentParts, writePart } from "./shipment-parts";
import { INBOX_STOP, type InboxJob, type InboxReply, type InboxThreadOptions, type PartTaken } from "./visit-inbox-thread";
import { VisitRecorder } from "./visit-recorder";
import { visitEventOutbox } from "./webhooks-outbox";

declare const self: Worker;

export interface InboxStart extends InboxThreadOptions {
  op: "start";
  /** One Int32 slot (INBOX_STOP): set by the event loop to cut a take short. */
  shared: SharedArrayBuffer;
}

export type InboxRequest = InboxStart | InboxJob | "stop";
export type InboxWorkerReply = StartReply | InboxReply | PartTaken | "stopped";

/** How long a part waits for another connection's write lock before the take fails (the inbox's next round retries). */
const LOCK_WAIT_MS = 5000;
/** How often this thread's heap is collected whole: each shipment leaves megabytes of strings behind. */
const FULL_COLLECTION_MS = 10_000;

interface Inbox {
  db: Database;
  stores: PartStores;
  refill: () => void;
  slots: Int32Array;
}

let inbox: Inbox | null = null;
let enqueued = false;

function start(message: InboxStart): void {
  const db = openDatabase(message.databasePath, { create: false, migrate: false, noAutomaticCheckpoints: true });
  const threadId = runOnlyWhenIdle();
  const courtesy = threadId === null ? null : eventLoopCourtesy();
  const visits = new VisitStore(db, courtesy === null ? null : () => courtesy.pause());
  inbox = {
    db,
    stores: {
      // Shipped visits come with the privacy settings applied and their visitor hashes worked out (writeShipped).
      recorder: new VisitRecorder(visits),
      visits,
      links: new ShortUrlStore(db),
      ledger: new ShipmentLedger(db),
      webhooks: visitEventOutbox(new WebhookStore(db), message.baseUrl, message.privacy, () => {
        enqueued = true;
      }),
    },
    refill: () => courtesy?.refill(),
    slots: new Int32Array(message.shared),
  };
  startYoungCollections();
  setInterval(() => Bun.gc(true), FULL_COLLECTION_MS).unref();
  postMessage({ op: "started", threadId } satisfies InboxWorkerReply);
}

/** Every part of the shipment not yet in the ledger, each in its own transaction, until a stop cuts it short. */
function take(w: Inbox, job: InboxJob): InboxReply {
  const read = readShipment(job);
  if ("refused" in read) return { op: "refused", reason: read.refused };
  const stopped = () => Atomics.load(w.slots, INBOX_STOP) !== 0;
  for (const [key, part] of shipmentParts(job.name, read.visits)) {
    const deadline = performance.now() + LOCK_WAIT_MS;
    for (let tries = 0; ; tries++) {
      if (stopped()) return { op: "taken", complete: false };
      w.refill();
      enqueued = false;
      const attempt = writeTransactionIfFree(w.db, () => writePart(w.stores, key, part));
      if ("value" in attempt) {
        w.stores.webhooks.committed?.([]);
        const { visits, links } = attempt.value;
        if (visits > 0) postMessage({ op: "part", visits, links, enqueued } satisfies InboxWorkerReply);
        break;
      }
      const pause = lockRetryPause(tries);
      if (performance.now() + pause > deadline) throw attempt.busy;
      Atomics.wait(w.slots, INBOX_STOP, 0, pause);
    }
  }
  return { op: "taken", complete: true };
}

self.onmessage = (event: MessageEvent<InboxRequest>) => {
  const message = event.data;
  if (message === "stop") {
    inbox?.db.close();
    inbox = null;
    postMessage("stopped" satisfies InboxWorkerReply);
    return;
  }
  if (message.op === "start") {
    try {
      start(message);
    } catch (error) {
      postMessage({ op: "startFailed", message: jobFailure(error).message } satisfies InboxWorkerReply);
    }
    return;
  }
  let reply: InboxReply;
  try {
    if (inbox === null) throw new Error("the visit inbox thread is not started");
    reply = take(inbox, message);
  } catch (error) {
    reply = jobFailure(error);
  }
  postMessage(reply satisfies InboxWorkerReply);
};
