/**
 * Pauses between the transactions of background work that shares the event loop with requests: on a timer rather
 * than setImmediate, so the listener's I/O runs meanwhile, for a multiple of the time the last transaction took.
 */

/** A timer that fires this much late means the event loop had other work: requests come first. */
const BUSY_LATENESS_MS = 2;

export interface SleepFactors {
  /** The sleep-to-work ratio to start from and fall back to. */
  min: number;
  /** The most it grows to while timers fire late. */
  max: number;
}

/**
 * Background work that may fall behind (a purge): sleep nine times its work (at most a tenth of the loop), up to 64
 * times while the loop is busy. A retention purge taking up to a third of the loop put the redirect p99 at 7-8 ms,
 * a fifth at 3.1-4.6 ms, a tenth at 3.0-3.6 ms (bench/RESULTS.md, sixteenth session).
 */
export const YIELDING: SleepFactors = { min: 9, max: 64 };

/** The next sleep-to-work ratio: doubled after a late timer (the loop is busy), else halved back towards the minimum. */
export function nextSleepFactor(factor: number, lateMs: number, factors: SleepFactors = YIELDING): number {
  return lateMs > BUSY_LATENESS_MS ? Math.min(factors.max, factor * 2) : Math.max(factors.min, factor / 2);
}

/**
 * Sleeps `factor` times as long as the last transaction worked (at least 1 ms), and adapts the factor to how late
 * the timer fired, within `factors`.
 */
export function politeSleep(factors: SleepFactors = YIELDING): (busyMs: number) => Promise<void> {
  let factor = factors.min;
  return (busyMs) => {
    const sleepMs = Math.max(1, Math.ceil(factor * busyMs));
    const started = performance.now();
    return new Promise<void>((resolve) =>
      setTimeout(() => {
        factor = nextSleepFactor(factor, performance.now() - started - sleepMs, factors);
        resolve();
      }, sleepMs),
    );
  };
}
