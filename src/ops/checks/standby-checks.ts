/**
 * On a standby (README, "A standby VM"): `standby.copy`, whether its copy of the replica still follows the primary,
 * and `standby.visits`, whether the visits it serves leave its spool for the primary.
 * The primary rewrites its heartbeat row every second, so the newest heartbeat in the copy is how far behind the
 * primary the standby serves. Litestream's follow can stop advancing without a word (it keeps polling), so a copy
 * that is only read must be looked at.
 */
import { statSync } from "node:fs";
import { join } from "node:path";
import { spooled } from "../../domain/visit-spool";
import type { HeartbeatStore } from "../../storage/heartbeat-store";
import { type Check, type CheckResult, fail, pass } from "./check-result";

const RUNBOOK = "runbooks/standby-behind.md";

export function standbyCopyCheck(heartbeat: HeartbeatStore, maxAgeMs: number, now: () => number = Date.now): Check {
  const name = "standby.copy";
  return {
    name,
    async run(): Promise<CheckResult> {
      const at = heartbeat.latest();
      if (at === null) {
        return fail(
          name,
          "the copy holds no heartbeat of the primary",
          `a primary writes one every second: is it running, and does litestream-follow run here (sudo systemctl status litestream-follow)? ${RUNBOOK}`,
        );
      }
      const ageMs = Math.max(0, now() - at);
      const detail = `the primary's newest heartbeat in the copy is ${(ageMs / 1000).toFixed(1)} s old`;
      if (ageMs > maxAgeMs) {
        return fail(
          name,
          `${detail}, more than --max-replication-lag (${Math.round(maxAgeMs / 1000)} s)`,
          `the copy stopped following the primary, or the primary stopped writing: ${RUNBOOK}`,
        );
      }
      return pass(name, detail);
    },
  };
}

/** How long a spool file may wait for the bucket before the check fails: ShortenerStandbyVisitsNotShipped's 15 minutes. */
const SPOOL_WAIT_MS = 15 * 60_000;

/**
 * The standby's spool (domain/visit-spool.ts) ships each file within a second while the bucket takes them: an older
 * one means the bucket refuses them, or this node has none (no --replication litestream), and the primary's visit
 * counts lack what it served. The files are kept either way.
 */
export function standbyVisitsCheck(dir: string, now: () => number = Date.now): Check {
  const name = "standby.visits";
  return {
    name,
    async run(): Promise<CheckResult> {
      const names = spooled(dir);
      if (names.length === 0) return pass(name, "no visits wait in visit-spool: the primary has every visit this node spilled");
      const oldest = names[0] as string;
      const ageMs = Math.max(0, now() - statSync(join(dir, oldest)).mtimeMs);
      const detail = `${names.length} file(s) of visits wait in ${dir}, the oldest for ${Math.round(ageMs / 1000)} s`;
      if (ageMs <= SPOOL_WAIT_MS) return pass(name, detail);
      return fail(
        name,
        `${detail}: the replica's bucket does not take them`,
        `the log's visit_shipping_failed says why; a standby ships them only with SHORTENER_REPLICATION=litestream, as the primary runs. They are kept: ${RUNBOOK}`,
      );
    },
  };
}
