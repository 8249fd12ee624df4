/**
 * A standby's spill thread (see visit-spill-thread.ts), in SCHED_IDLE: it turns a spill's visit records into the
 * shipment's visits (VisitShipper: privacy, location, visitor hash), encodes them and writes the spool file
 * atomically and durably. No database connection: the event loop's thread passes the day salts and the links.
 */
import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import { writeFileAtomic } from "../lib/atomic-file";
import { jobFailure, type StartReply } from "../lib/job-thread";
import { runOnlyWhenIdle } from "../lib/thread-priority";
import { startYoungCollections } from "../lib/young-collections";
import type { VisitedLink } from "./visit";
import { visitLocator } from "./visit-location";
import { decodeRecords } from "./visit-log";
import { dayOf, type PrivacySettings } from "./visit-recorder";
import { shipmentPieces } from "./visit-shipment";
import { VisitShipper } from "./visit-shipper";
import { SPILL_DONE, type SpillJob, type SpillReply } from "./visit-spill-thread";

declare const self: Worker;

export interface SpillStart {
  op: "start";
  privacy: PrivacySettings;
  geoipDb: string | null;
  /** One Int32 slot: the spills this thread has ended (SPILL_DONE), moved and notified as each ends. */
  shared: SharedArrayBuffer;
}

export type SpillRequest = SpillStart | SpillJob | "stop";
export type SpillWorkerReply = StartReply | SpillReply | "stopped";

/** How often this thread's heap is collected whole: each spill leaves megabytes of strings behind. */
const FULL_COLLECTION_MS = 10_000;

let shipper: VisitShipper | null = null;
let done: Int32Array | null = null;

/** The spill's file: every visit shipped with its day's salt, in the order they came, written a slice at a time. */
function spill(job: SpillJob, using: VisitShipper): number {
  const links: VisitedLink[] = job.links.flatMap((json) =>
    (JSON.parse(json) as [number, string, string][]).map(([id, shortCode, domain]) => ({ id, shortCode, domain })),
  );
  const salts = new Map(job.salts);
  let shipped = 0;
  // One slice's visits as JSON at a time. Built and written as one string (7 MB for a second's 24 000 visits), the
  // event loop's thread stalled for ~8 ms four times in each spill's last 40 ms (a probe timer's gaps, on the test
  // VM); in slices those stalls went. Why a large string here stalls that thread was not found.
  function* slices(): Generator<string[]> {
    for (const records of job.records) {
      const from = shipped;
      const visits = decodeRecords(records, (i) => links[job.linkOf[from + i] as number] ?? null);
      yield visits.map((visit) => {
        const salt = salts.get(dayOf(visit.at));
        if (salt === undefined) throw new Error(`no salt was given for day ${dayOf(visit.at)}`);
        return JSON.stringify(using.shipped(visit, salt));
      });
      shipped += visits.length;
    }
  }
  mkdirSync(dirname(job.path), { recursive: true, mode: 0o750 });
  writeFileAtomic(job.path, shipmentPieces(slices()));
  return shipped;
}

self.onmessage = (event: MessageEvent<SpillRequest>) => {
  const message = event.data;
  if (message === "stop") {
    postMessage("stopped" satisfies SpillWorkerReply);
    return;
  }
  if (message.op === "start") {
    try {
      const threadId = runOnlyWhenIdle();
      shipper = new VisitShipper(message.privacy, visitLocator(message.geoipDb));
      done = new Int32Array(message.shared);
      startYoungCollections();
      setInterval(() => Bun.gc(true), FULL_COLLECTION_MS).unref();
      postMessage({ op: "started", threadId } satisfies SpillWorkerReply);
    } catch (error) {
      postMessage({ op: "startFailed", message: jobFailure(error).message } satisfies SpillWorkerReply);
    }
    return;
  }
  let reply: SpillReply;
  try {
    if (shipper === null) throw new Error("the spill thread is not started");
    reply = { op: "spilled", visits: spill(message, shipper) };
  } catch (error) {
    reply = jobFailure(error);
  }
  if (done !== null) {
    Atomics.add(done, SPILL_DONE, 1);
    Atomics.notify(done, SPILL_DONE);
  }
  postMessage(reply satisfies SpillWorkerReply);
};
