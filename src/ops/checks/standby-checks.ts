/**
 * On a standby (README, "A standby VM"): `standby.copy`, whether its copy of the replica still follows the primary.
 * The primary rewrites its heartbeat row every second, so the newest heartbeat in the copy is how far behind the
 * primary the standby serves. Litestream's follow can stop advancing without a word (it keeps polling), so a copy
 * that is only read must be looked at.
 */
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
