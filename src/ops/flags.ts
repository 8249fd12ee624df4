/** Command flags the ops commands share: a flag's value, and an instant given as a date or as a time ago. */
import { UsageError } from "../errors";
import type { ParsedArgs } from "../lib/args";
import { parseDuration } from "../lib/duration";
import { parseIsoDate } from "../lib/iso-date";

/** The flag's value; a usage error when it was given without one. */
export function stringFlag(args: ParsedArgs, name: string): string | undefined {
  const value = args.flags.get(name);
  if (value === true) throw new UsageError(`--${name} needs a value`);
  return value;
}

/** The flag's value as a whole number from 0 (an id); a usage error naming it when it is not one. */
export function wholeNumberFlag(args: ParsedArgs, name: string): number | undefined {
  const raw = stringFlag(args, name);
  if (raw === undefined) return undefined;
  const value = Number(raw);
  if (!/^\d+$/.test(raw) || !Number.isSafeInteger(value)) throw new UsageError(`--${name} "${raw}" is not a whole number from 0`);
  return value;
}

/** `--since` / `--until`: an ISO 8601 date, or a duration back from now (7d, 12h). */
export function instantFlag(args: ParsedArgs, name: string, now: number): number | undefined {
  const raw = stringFlag(args, name);
  if (raw === undefined) return undefined;
  const at = parseIsoDate(raw);
  if (at !== null) return at;
  const ago = parseDuration(raw);
  if (ago !== null && /[a-z]$/.test(raw)) return now - ago;
  throw new UsageError(`--${name} "${raw}" is neither an ISO 8601 date nor a duration like 7d`);
}
