/**
 * `serve --role standby` on the copy that `litestream restore -f` keeps (DESIGN.md, Failover; deploy/systemd/
 * litestream-follow.service): wait for its first restore, read it in rollback-journal mode, and drop what was cached
 * from it whenever Litestream changes it.
 */
import { existsSync } from "node:fs";
import type { AppContext } from "../app";
import { FollowPosition, useRollbackJournal } from "../storage/replica-copy";
import { promotedHere } from "../storage/replica-epoch";
import { FailureStreak } from "../telemetry/failure-streak";
import { describeError, log } from "../telemetry/logger";

/** How often the wait for the first restore says so in the log. */
const WAITING_LOG_EVERY_MS = 10_000;
const WAITING_POLL_MS = 250;

/**
 * Waits until the copy at `path` exists (Litestream's first restore renames it into place whole), then switches it
 * out of WAL mode (storage/replica-copy.ts). Resolves false when SIGTERM or SIGINT comes first: nothing to drain yet.
 */
export async function replicaCopyReady(path: string): Promise<boolean> {
  let stopped = false;
  const stop = () => {
    stopped = true;
  };
  process.once("SIGTERM", stop);
  process.once("SIGINT", stop);
  try {
    let lastLogged = Number.NEGATIVE_INFINITY;
    while (!existsSync(path)) {
      if (stopped) return false;
      if (performance.now() - lastLogged >= WAITING_LOG_EVERY_MS) {
        lastLogged = performance.now();
        log.info("waiting_for_replica", {
          database: path,
          hint: "a standby serves the copy that `litestream restore -f` writes (systemctl status litestream-follow)",
        });
      }
      await Bun.sleep(WAITING_POLL_MS);
    }
    await useRollbackJournal(path);
    return !stopped;
  } finally {
    process.off("SIGTERM", stop);
    process.off("SIGINT", stop);
  }
}

/**
 * Every `everyMs`, drops the links and robots.txt codes cached from the copy once Litestream has applied more of the
 * primary's transactions. A copy replaced by a fresh restore cannot be read through the open connection: readiness
 * then fails, saying what to do (ctx.replicaCopy). Unless `shortener promote` replaced it: then the copy this node
 * reads is the old primary's state as of the follow's stop, and the node goes on serving it (writes still refused)
 * until it is restarted as the primary, so that redirects never lack a ready node in between.
 */
export function watchReplicaCopy(ctx: AppContext, everyMs: number): ReturnType<typeof setInterval> {
  const position = new FollowPosition(ctx.config.databasePath);
  // A copy that cannot be read now (readiness says so) is looked at again at the next tick.
  const failures = new FailureStreak("replica_watch");
  let promoted = false;
  return setInterval(() => {
    try {
      if (position.moved()) {
        ctx.shortUrls.forgetCached();
        for (const domain of ctx.shortUrls.domains()) ctx.customDomains.add(domain);
      }
      if (!ctx.replicaCopy.replaced && !promoted && position.replaced()) {
        promoted = promotedHere(ctx.config.dataDir);
        if (promoted) {
          log.warn("promoted_serving_old_copy", {
            database: ctx.config.databasePath,
            hint: "this node took the replica lease: it serves the copy it read, and refuses writes, until restarted as the primary (runbooks/promote-standby.md, step 4)",
          });
        } else {
          ctx.replicaCopy.replaced = true;
          log.error("replica_copy_replaced", { database: ctx.config.databasePath, hint: "restart this node to serve the new copy" });
        }
      }
      failures.succeeded();
    } catch (error) {
      failures.failed(describeError(error));
    }
  }, everyMs);
}
