import { describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { nextSalt, SALT_BYTES, type SaltSource, saltFollowing, sharedSalt } from "./visitor-salt";

const SALT = new Uint8Array(SALT_BYTES).fill(7);

describe("visitor salts", () => {
  test("a day's salt is the first 16 bytes of SHA-256 over the label and the day before's, and runs forward any number of days", () => {
    const expected = createHash("sha256").update("shortener visitor salt\u0000").update(SALT).digest().subarray(0, 16);
    const next = nextSalt(SALT);
    expect(Buffer.from(next).toString("hex")).toBe(expected.toString("hex"));
    expect(next).toHaveLength(SALT_BYTES);
    expect(saltFollowing({ day: 100, salt: SALT }, 101)).toEqual(next);
    // Whichever salt of the chain a node starts from, it reaches the same day's salt.
    expect(saltFollowing({ day: 100, salt: SALT }, 104)).toEqual(saltFollowing({ day: 101, salt: next }, 104));
    expect(saltFollowing({ day: 100, salt: SALT }, 104)).toEqual(nextSalt(nextSalt(nextSalt(next))));
  });

  test("no salt follows from none, from the same or a later day, or from one ten years back", () => {
    expect(saltFollowing(null, 100)).toBeNull();
    expect(saltFollowing({ day: 100, salt: SALT }, 100)).toBeNull();
    expect(saltFollowing({ day: 100, salt: SALT }, 99)).toBeNull();
    expect(saltFollowing({ day: 100, salt: SALT }, 100 + 3660)).not.toBeNull();
    expect(saltFollowing({ day: 100, salt: SALT }, 100 + 3661)).toBeNull();
  });

  test("a database's salt of a day: the one it stored, else the one following its latest before", () => {
    const stored = new Uint8Array(SALT_BYTES).fill(9);
    const source = (salts: Map<number, Uint8Array>): SaltSource => ({
      existingSalt: (day) => salts.get(day) ?? null,
      saltBefore: (day) => {
        const before = [...salts.keys()].filter((d) => d < day).sort((x, y) => y - x)[0];
        return before === undefined ? null : { day: before, salt: salts.get(before) as Uint8Array };
      },
    });
    const db = source(
      new Map([
        [100, SALT],
        [102, stored],
      ]),
    );
    expect(sharedSalt(db, 102)).toEqual(stored);
    expect(sharedSalt(db, 101)).toEqual(nextSalt(SALT));
    expect(sharedSalt(db, 104)).toEqual(nextSalt(nextSalt(stored)));
    expect(sharedSalt(db, 99)).toBeNull();
    expect(sharedSalt(source(new Map()), 100)).toBeNull();
  });
});
