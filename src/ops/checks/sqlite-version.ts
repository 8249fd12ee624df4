/**
 * SQLite's WAL-reset bug: a WAL reset racing a concurrent writer can corrupt the database. It is in every
 * release from 3.7.0 (the first with WAL) through 3.51.2 and fixed in 3.51.3; 3.50.7 and 3.44.6 carry the fix
 * as backports, and 3.52.0 was withdrawn (still affected).
 */
import { type Check, fail, pass } from "./check-result";

const FIXED_BACKPORTS: readonly (readonly [major: number, minor: number, patch: number])[] = [
  [3, 44, 6],
  [3, 50, 7],
];

const rank = (major: number, minor: number, patch: number) => major * 1_000_000 + minor * 1_000 + patch;

/** True when SQLite `version` ("3.51.2") has the WAL-reset bug; a version it cannot read counts as affected. */
export function hasWalResetBug(version: string): boolean {
  const match = /^(\d+)\.(\d+)\.(\d+)/.exec(version);
  if (!match) return true;
  const [major, minor, patch] = [Number(match[1]), Number(match[2]), Number(match[3])];
  const v = rank(major, minor, patch);
  if (v < rank(3, 7, 0)) return false;
  if (FIXED_BACKPORTS.some(([ma, mi, p]) => major === ma && minor === mi && patch >= p)) return false;
  return v <= rank(3, 51, 2) || v === rank(3, 52, 0);
}

/** `sqlite.version`: the SQLite this binary runs must not have the WAL-reset bug. */
export function sqliteVersionCheck(version: string): Check {
  const name = "sqlite.version";
  return {
    name,
    async run() {
      if (!hasWalResetBug(version)) return pass(name, `${version}, not affected by the WAL-reset bug`);
      return fail(
        name,
        `${version} has the WAL-reset corruption bug (fixed in 3.51.3; backports 3.50.7, 3.44.6)`,
        "build shortener with a Bun release that bundles SQLite 3.51.3 or later",
      );
    },
  };
}
