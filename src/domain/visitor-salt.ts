/**
 * The day's salt of the distinct-visitor hash. Each day's salt follows from the day before's (the first 16 bytes of
 * SHA-256 over a label and that salt), so any node holding an earlier salt of the chain works out the same salt for a
 * day that no node has stored yet: a standby serving alone since before midnight hashes today's visitors as the
 * primary will once it is back (or as the standby will once promoted), and a visitor seen by both counts once. The
 * chain runs forward only: a day's salt does not give the day before's, so a salt deleted once its day is over still
 * cannot be rebuilt from the ones kept. A database that never stored a salt starts the chain from random bytes.
 */

export const SALT_BYTES = 16;

/** Past this many days without a stored salt (a clock far off), a day gets random bytes rather than a long chain. */
const MAX_CHAIN_DAYS = 3660;

const LABEL = new TextEncoder().encode("shortener visitor salt\u0000");

export interface DaySalt {
  day: number;
  salt: Uint8Array;
}

/** What a database holds of the chain: a day's stored salt, and the latest one stored before a day. */
export interface SaltSource {
  existingSalt(day: number): Uint8Array | null;
  saltBefore(day: number): DaySalt | null;
}

/** The salt of the day after the one whose salt is given. */
export function nextSalt(salt: Uint8Array): Uint8Array {
  const hasher = new Bun.CryptoHasher("sha256");
  hasher.update(LABEL);
  hasher.update(salt);
  return new Uint8Array(hasher.digest().subarray(0, SALT_BYTES));
}

/** `day`'s salt followed from an earlier one of the chain; null without one, or when it lies too far back. */
export function saltFollowing(earlier: DaySalt | null, day: number): Uint8Array | null {
  if (earlier === null || earlier.day >= day || day - earlier.day > MAX_CHAIN_DAYS) return null;
  let salt = earlier.salt;
  for (let d = earlier.day; d < day; d++) salt = nextSalt(salt);
  return salt;
}

/** `day`'s salt as the database has it or will: stored, or followed from the latest stored before; null without either. */
export function sharedSalt(source: SaltSource, day: number): Uint8Array | null {
  return source.existingSalt(day) ?? saltFollowing(source.saltBefore(day), day);
}

export function randomSalt(): Uint8Array {
  return crypto.getRandomValues(new Uint8Array(SALT_BYTES));
}
