/**
 * `serve`'s side of a standby's visits (domain/visit-shipment.ts): on a standby, every flush interval the spool
 * writes what it holds to a file (what a kill -9 can lose is one interval, as on a primary) and ships its files to
 * the bucket, a round at a time; on a primary, the inbox takes what standbys shipped every few seconds.
 */
import type { AppContext } from "../app";
import { FailureStreak } from "../telemetry/failure-streak";
import { describeError, log } from "../telemetry/logger";

/** How often a primary looks for standby visits in its own spool, and in the bucket while shipments keep coming. */
const INBOX_EVERY_MS = 2000;
/**
 * How often it lists the bucket's prefix otherwise: a listing is a billed request, and a standby ships only while it
 * serves (a failover). 8 640 a day, fewer than the lease's renewals and Litestream's own uploads.
 */
const BUCKET_EVERY_MS = 10_000;
/** How long a drain waits for a round under way (a request to the bucket is bounded at 10 s; a drain has its grace). */
const STOP_WAIT_MS = 3000;

export interface VisitShipping {
  /** Stops the rounds: waits for a spill under way, and a little for a shipping round. The drain spills the rest. */
  stop(): Promise<void>;
}

export function startVisitShipping(ctx: AppContext, flushEveryMs: number): VisitShipping {
  const { spool, inbox } = ctx;
  const spills = new FailureStreak("visit_spill");
  const rounds = new FailureStreak(spool === null ? "standby_visits_take" : "visit_shipping");
  let spilling: Promise<void> | null = null;
  let running: Promise<void> | null = null;
  let listedAt = Number.NEGATIVE_INFINITY;
  let busy = false;
  const round = async () => {
    if (spool !== null) {
      await spool.ship();
      return;
    }
    const listBucket = busy || performance.now() - listedAt >= BUCKET_EVERY_MS;
    if (listBucket) listedAt = performance.now();
    const taken = (await inbox?.take(listBucket)) ?? 0;
    busy = taken > 0;
    if (taken > 0) log.info("standby_visits_taken", { visits: taken });
  };
  const timer = setInterval(
    () => {
      // Spills and shipping rounds apart: a bucket that does not answer must not hold the spill (memory) up.
      if (spool !== null && spilling === null) {
        spilling = spool
          .spill()
          .then(
            () => spills.succeeded(),
            (error) => spills.failed({ held: spool.held, ...describeError(error) }),
          )
          .finally(() => {
            spilling = null;
          });
      }
      if (running !== null) return;
      running = round()
        .then(
          () => rounds.succeeded({ waiting: spool?.waiting }),
          (error) => rounds.failed({ waiting: spool?.waiting, ...describeError(error) }),
        )
        .finally(() => {
          running = null;
        });
    },
    spool === null ? INBOX_EVERY_MS : flushEveryMs,
  );
  return {
    async stop() {
      clearInterval(timer);
      await spilling;
      if (running !== null) await Promise.race([running, Bun.sleep(STOP_WAIT_MS)]);
    },
  };
}
