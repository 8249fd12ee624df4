/**
 * A SCHED_IDLE thread (lib/thread-priority.ts) gets the CPU only when no other thread wants it, and a saturated
 * event loop always does: it got 4 % of the CPU from one (bench/RESULTS.md, seventeenth session). So while work
 * handed to such a thread has waited longer than GRACE_MS, or is urgent (now), the event loop's thread blocks for up to
 * DONATE_MS every DONATE_EVERY_MS: the other thread gets up to half the CPU, as work done on the loop in chunks
 * with pauses would take.
 */

/** How long handed-over work may wait for an idle CPU before the event loop's thread makes room for it. */
export const GRACE_MS = 200;
const DONATE_EVERY_MS = 2;
const DONATE_MS = 1;

export interface Donation {
  /** Checked every DONATE_EVERY_MS: true once the work ended (the donation then stops). */
  ended(): boolean;
  /** Checked every DONATE_EVERY_MS: true to donate now, within the grace period. */
  urgent(): boolean;
  /** The slot the other thread changes (and notifies) when the work ends: a donation ends early then. */
  slots: Int32Array;
  index: number;
  /** The slot's value while the work goes on. */
  value: number;
}

/** Starts donating for `work` (after its grace period); returns a function that stops it. */
export function donateUntilEnded(work: Donation): () => void {
  const since = performance.now();
  const timer = setInterval(() => {
    if (work.ended()) return clearInterval(timer);
    if (performance.now() - since <= GRACE_MS && !work.urgent()) return;
    Atomics.wait(work.slots, work.index, work.value, DONATE_MS);
    if (work.ended()) clearInterval(timer);
  }, DONATE_EVERY_MS);
  return () => clearInterval(timer);
}
