/** The instant `shortener restore --at` names: an RFC 3339 time with an explicit UTC offset, not in the future. */
import { UsageError } from "../../errors";
import { parseIsoDate } from "../../lib/iso-date";

// RFC 3339 date-time: the offset is required (a restore must not depend on the machine's time zone), hours end at 23.
const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt ]([01]\d|2[0-3]):[0-5]\d:[0-5]\d(\.\d{1,9})?([Zz]|[+-]([01]\d|2[0-3]):[0-5]\d)$/;

/** Parses `raw` as the instant to restore, given the current time `now` (epoch ms); a UsageError names what is wrong. */
export function parseRestoreTime(raw: string, now: number): Date {
  if (!RFC3339.test(raw)) {
    throw new UsageError(
      `--at "${raw}" is not an RFC 3339 time with a UTC offset, such as 2026-11-22T10:15:00Z or 2026-11-22T11:15:00+01:00`,
    );
  }
  const ms = parseIsoDate(raw);
  if (ms === null) throw new UsageError(`--at "${raw}" names a day that does not exist`);
  if (ms > now) {
    throw new UsageError(
      `--at ${new Date(ms).toISOString()} is in the future (it is ${new Date(now).toISOString()} now). Try: --latest for the newest state the replica holds`,
    );
  }
  return new Date(ms);
}
