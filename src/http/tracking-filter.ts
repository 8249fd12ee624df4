/**
 * --skip-tracking-from (Shlink's DISABLE_TRACKING_FROM): visits from these addresses are answered as usual but
 * neither recorded nor counted. The redirect path asks once per request, so the answer is memoised per address,
 * and with no range configured the check is a constant function.
 */
import { type Cidr, cidrContains } from "../lib/cidr";

const MEMO_LIMIT = 4096;

/** Whether a visit from `ip` (the visitor's address, null when unknown) must not be tracked. */
export type TrackingSkipped = (ip: string | null) => boolean;

const NEVER: TrackingSkipped = () => false;

export function trackingFilter(ranges: readonly Cidr[]): TrackingSkipped {
  if (ranges.length === 0) return NEVER;
  let memo = new Map<string, boolean>();
  return (ip) => {
    if (ip === null) return false;
    let skipped = memo.get(ip);
    if (skipped === undefined) {
      skipped = ranges.some((range) => cidrContains(range, ip));
      if (memo.size >= MEMO_LIMIT) memo = new Map();
      memo.set(ip, skipped);
    }
    return skipped;
  };
}
