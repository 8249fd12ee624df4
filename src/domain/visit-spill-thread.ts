/**
 * A standby's spills (domain/visit-spool.ts) worked out and written on a thread of their own. On the event loop a
 * spill of a second's visits at 24 000 redirects a second held the loop for 2.5 ms a slice, and for tens of
 * milliseconds joining and writing the file: the standby's tapped p99 at that rate was 4.6 ms, and 39 ms from due
 * time, where the primary's was 2.2 (bench/RESULTS.md, thirty-fifth session). Here the event loop only copies the
 * records out and looks the days' salts up; this thread, in SCHED_IDLE (lib/thread-priority.ts), ships, encodes and
 * writes them. While a spill waits longer than the grace period for an idle CPU (a saturated standby), the event
 * loop's thread makes room for it (lib/cpu-donation.ts), as it does for the primary's visit writer.
 */
import { donateUntilEnded } from "../lib/cpu-donation";
import { type JobFailure, JobThread } from "../lib/job-thread";
import { workerUrl } from "../lib/workers";
import type { PrivacySettings } from "./visit-recorder";
import type { SpillRequest } from "./visit-spill-worker";

/** A spill as its thread takes it: the records and what the thread needs to ship them. */
export interface SpillJob {
  op: "spill";
  /** The spool file to write. */
  path: string;
  /** The visits' records (VisitLog.copyOut), a slice each, in order; transferred. */
  records: Uint8Array[];
  /** Per visit: its link's index in `links`, or -1 for an orphan visit. */
  linkOf: Int32Array;
  /**
   * The visits' links, `[id, shortCode, domain]` each, as JSON arrays, in `linkOf`'s order: a few strings cross to
   * the thread as one copy each, where 24 000 links' strings in arrays took 6-15 ms of the event loop to post.
   */
  links: string[];
  /** The salt of every day a visit falls on. */
  salts: [number, Uint8Array][];
}

export type SpillReply = { op: "spilled"; visits: number } | JobFailure;

/** The shared slot the thread moves (and notifies) as each spill ends. */
export const SPILL_DONE = 0;

export class VisitSpillThread extends JobThread<SpillRequest, SpillReply, SpillReply> {
  readonly #slots = new Int32Array(new SharedArrayBuffer(4));

  constructor(
    private readonly options: { privacy: PrivacySettings; geoipDb: string | null },
    /** The thread failed and will not spill again (the spool spills on the event loop then). */
    private readonly onFailed: (message: string) => void,
  ) {
    super("spill thread");
  }

  /** Starts the thread; rejects (and stays unusable) if it does not start. */
  start(): Promise<void> {
    const { privacy, geoipDb } = this.options;
    const url = workerUrl(new URL("./visit-spill-worker.ts", import.meta.url), "./domain/visit-spill-worker.ts");
    return this.startThread(url, { op: "start", privacy, geoipDb, shared: this.#slots.buffer as SharedArrayBuffer });
  }

  /** Writes one spill's file on the thread; its records' buffers are transferred (unusable here after). */
  spill(job: SpillJob): Promise<SpillReply> {
    if (!this.usable) return Promise.resolve({ op: "failed", message: "the spill thread is not running", code: null });
    if (this.answer !== null) throw new Error("the spill thread takes one spill at a time");
    const slots = this.#slots;
    const doneBefore = Atomics.load(slots, SPILL_DONE);
    return new Promise((resolve) => {
      const stopDonating = donateUntilEnded({
        ended: () => Atomics.load(slots, SPILL_DONE) !== doneBefore,
        urgent: () => false,
        slots,
        index: SPILL_DONE,
        value: doneBefore,
      });
      this.answer = (reply) => {
        stopDonating();
        this.answer = null;
        resolve(reply);
      };
      this.post(job, [...job.records.map((records) => records.buffer as ArrayBuffer), job.linkOf.buffer as ArrayBuffer]);
    });
  }

  protected replied(reply: SpillReply): void {
    this.answer?.(reply);
  }

  protected failed(message: string): void {
    this.onFailed(message);
  }
}
