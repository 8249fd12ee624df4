/**
 * A primary's inbox (domain/visit-inbox.ts) takes standbys' shipments on a thread of its own. On the event loop one
 * shipment of a second's visits at 48 000 a second (19 MB) held the loop for 1.7 s: 130 ms to parse it, then 48
 * parts of 15-40 ms each, one after another (a scratch script, thirty-sixth session); a primary back from a failover
 * with minutes of them in its spool or the bucket would have failed its readiness checks while it caught up. Here,
 * in SCHED_IDLE (lib/thread-priority.ts), this thread reads, parses and writes them on its own connection; the
 * event loop lists the shipments, removes each once it is written and drops the changed links' cached counts.
 *
 * The event loop gives it no CPU of its own (lib/cpu-donation.ts): the shipments wait durably in the spool or the
 * bucket, so on a saturated primary they wait for an idle moment rather than take the CPU from redirects.
 */
import { type JobFailure, JobThread } from "../lib/job-thread";
import { workerUrl } from "../lib/workers";
import type { ShipmentSource, TakenLink } from "./shipment-parts";
import type { InboxRequest } from "./visit-inbox-worker";
import type { PrivacySettings } from "./visit-recorder";

/** A shipment to take: from a spool file, or the bytes fetched from the bucket (transferred). */
export type InboxJob = { op: "take"; name: string } & ShipmentSource;

export type InboxReply =
  /** `complete` is false when a stop cut it short: the parts not written are taken later. */
  | { op: "taken"; complete: boolean }
  /** Not a shipment of ours, or damaged: `reason` says how. */
  | { op: "refused"; reason: string }
  | JobFailure;

/** A part's commit that wrote visits, posted at once: its links' cached counts are stale from then on. */
export interface PartTaken {
  op: "part";
  visits: number;
  links: TakenLink[];
  /** It stored webhook events: the dispatcher can send them. */
  enqueued: boolean;
}

/** The shared slot the event loop sets to cut a take short (between parts, or while it waits for the write lock). */
export const INBOX_STOP = 0;

export interface InboxThreadOptions {
  databasePath: string;
  baseUrl: string;
  privacy: PrivacySettings;
}

export class VisitInboxThread extends JobThread<InboxRequest, InboxReply | PartTaken, InboxReply> {
  readonly #slots = new Int32Array(new SharedArrayBuffer(4));

  constructor(
    private readonly options: InboxThreadOptions,
    /** Each part's commit, as the thread tells of it. */
    private readonly onPart: (part: PartTaken) => void,
    /** The thread failed and will not take another shipment (the inbox takes them on the event loop then). */
    private readonly onFailed: (message: string) => void,
  ) {
    super("visit inbox thread");
  }

  /** Starts the thread; rejects (and stays unusable) if it cannot open its connection. */
  start(): Promise<void> {
    const url = workerUrl(new URL("./visit-inbox-worker.ts", import.meta.url), "./domain/visit-inbox-worker.ts");
    return this.startThread(url, { op: "start", ...this.options, shared: this.#slots.buffer as SharedArrayBuffer });
  }

  /** Takes one shipment on the thread; `job.bytes` is transferred (unusable here after). */
  take(job: InboxJob): Promise<InboxReply> {
    if (!this.usable) return Promise.resolve({ op: "failed", message: "the visit inbox thread is not running", code: null });
    if (this.answer !== null) throw new Error("the visit inbox thread takes one shipment at a time");
    return new Promise((resolve) => {
      this.answer = (reply) => {
        this.answer = null;
        resolve(reply);
      };
      this.post(job, job.bytes === null ? [] : [job.bytes]);
    });
  }

  /** Cuts the take under way short after the part being written; the thread takes no more until it is stopped. */
  interrupt(): void {
    Atomics.store(this.#slots, INBOX_STOP, 1);
    Atomics.notify(this.#slots, INBOX_STOP);
  }

  protected replied(reply: InboxReply | PartTaken): void {
    if (reply.op === "part") this.onPart(reply);
    else this.answer?.(reply);
  }

  protected failed(message: string): void {
    this.onFailed(message);
  }
}
