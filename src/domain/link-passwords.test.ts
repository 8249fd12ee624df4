/** The password rules, and the gate every unlock attempt goes through: limits per visitor, per link, and at once. */
import { expect, test } from "bun:test";
import {
  CONCURRENT_HASHES,
  clientKey,
  FAILURE_WINDOW_MS,
  LinkPasswords,
  MAX_PASSWORD_LENGTH,
  MAX_WAITING_CHECKS,
  passwordProblem,
} from "./link-passwords";

const RIGHT = "correct horse battery";

test("a password is a string of 8 to 128 characters, counted as characters, not bytes", () => {
  expect(passwordProblem("seven77")).toBe("must be 8 to 128 characters long");
  expect(passwordProblem("eight888")).toBeNull();
  expect(passwordProblem("é".repeat(MAX_PASSWORD_LENGTH))).toBeNull();
  expect(passwordProblem("x".repeat(MAX_PASSWORD_LENGTH + 1))).toBe("must be 8 to 128 characters long");
  expect(passwordProblem(12345678)).toBe("must be a string");
});

test("hashes are argon2id, salted (two hashes of one password differ), and check only their own password", async () => {
  const passwords = new LinkPasswords();
  const [a, b] = await Promise.all([passwords.hash(RIGHT), passwords.hash(RIGHT)]);
  expect(a).toStartWith("$argon2id$");
  expect(a).not.toBe(b);
  expect(a).not.toContain(RIGHT);
  expect(await passwords.matches(RIGHT, b as string)).toBe(true);
  expect(await passwords.matches("correct horse battery!", a as string)).toBe(false);
});

test("a visitor's failures on a link stop them for the window, even with the right password; others and other links go on", async () => {
  let now = 1_000_000;
  const passwords = new LinkPasswords({ now: () => now, clientFailures: 3, linkFailures: 100 });
  const hash = await passwords.hash(RIGHT);
  for (let i = 0; i < 3; i++) expect(await passwords.unlock(1, hash, "wrong guess", "203.0.113.7")).toEqual({ kind: "wrong" });
  expect(await passwords.unlock(1, hash, RIGHT, "203.0.113.7")).toEqual({ kind: "limited", retryAfterSeconds: FAILURE_WINDOW_MS / 1000 });
  expect(await passwords.unlock(1, hash, RIGHT, "203.0.113.8")).toEqual({ kind: "unlocked" });
  expect(await passwords.unlock(2, hash, RIGHT, "203.0.113.7")).toEqual({ kind: "unlocked" });
  now += FAILURE_WINDOW_MS - 1_500;
  expect(await passwords.unlock(1, hash, RIGHT, "203.0.113.7")).toEqual({ kind: "limited", retryAfterSeconds: 2 });
  now += 1_500;
  expect(await passwords.unlock(1, hash, RIGHT, "203.0.113.7")).toEqual({ kind: "unlocked" });
});

test("a right password forgets the visitor's failures; IPv6 visitors count by their /64", async () => {
  const passwords = new LinkPasswords({ clientFailures: 2, linkFailures: 100 });
  const hash = await passwords.hash(RIGHT);
  expect(await passwords.unlock(1, hash, "wrong guess", "10.0.0.1")).toEqual({ kind: "wrong" });
  expect(await passwords.unlock(1, hash, RIGHT, "10.0.0.1")).toEqual({ kind: "unlocked" });
  expect(await passwords.unlock(1, hash, "wrong guess", "10.0.0.1")).toEqual({ kind: "wrong" });
  expect(await passwords.unlock(1, hash, RIGHT, "10.0.0.1")).toEqual({ kind: "unlocked" });

  expect(clientKey("2001:db8:1:2::1")).toBe(clientKey("2001:db8:1:2:ffff:ffff:ffff:ffff"));
  expect(clientKey("2001:db8:1:2::1")).not.toBe(clientKey("2001:db8:1:3::1"));
  expect(clientKey("::ffff:10.0.0.1")).toBe(clientKey("10.0.0.1"));
  expect(clientKey("10.0.0.1")).not.toBe(clientKey("10.0.0.2"));
  await passwords.unlock(1, hash, "wrong guess", "2001:db8:1:2::1");
  await passwords.unlock(1, hash, "wrong guess", "2001:db8:1:2::2");
  expect((await passwords.unlock(1, hash, RIGHT, "2001:db8:1:2::3")).kind).toBe("limited");
  expect(await passwords.unlock(1, hash, RIGHT, "2001:db8:1:3::1")).toEqual({ kind: "unlocked" });
});

test("guessing one link from many addresses stops at the link's own limit, for every visitor", async () => {
  const passwords = new LinkPasswords({ clientFailures: 5, linkFailures: 4 });
  const hash = await passwords.hash(RIGHT);
  for (let i = 0; i < 4; i++) expect((await passwords.unlock(7, hash, "wrong guess", `198.51.100.${i}`)).kind).toBe("wrong");
  expect((await passwords.unlock(7, hash, RIGHT, "192.0.2.1")).kind).toBe("limited");
  expect(await passwords.unlock(8, hash, RIGHT, "192.0.2.1")).toEqual({ kind: "unlocked" });
});

test("attempts sent at once count before they are checked: a visitor cannot pass the limit by sending many together", async () => {
  const passwords = new LinkPasswords({ clientFailures: 3, linkFailures: 100 });
  const hash = await passwords.hash(RIGHT);
  const outcomes = await Promise.all(Array.from({ length: 10 }, () => passwords.unlock(1, hash, "wrong guess", "203.0.113.9")));
  expect(outcomes.filter((o) => o.kind === "wrong")).toHaveLength(3);
  expect(outcomes.filter((o) => o.kind === "limited")).toHaveLength(7);
});

test("checks run a few at a time; beyond the waiting room an attempt is refused as busy, not queued", async () => {
  const passwords = new LinkPasswords({ clientFailures: 1_000, linkFailures: 1_000 });
  const hash = await passwords.hash(RIGHT);
  const running = CONCURRENT_HASHES + MAX_WAITING_CHECKS;
  const attempts = Array.from({ length: running + 3 }, (_, i) => passwords.unlock(i, hash, RIGHT, "203.0.113.10"));
  const outcomes = await Promise.all(attempts);
  expect(outcomes.filter((o) => o.kind === "unlocked")).toHaveLength(running);
  expect(outcomes.slice(running)).toEqual([
    { kind: "busy", retryAfterSeconds: 1 },
    { kind: "busy", retryAfterSeconds: 1 },
    { kind: "busy", retryAfterSeconds: 1 },
  ]);
  expect(await passwords.unlock(999, hash, RIGHT, "203.0.113.10")).toEqual({ kind: "unlocked" });
});

test("API hashes waiting their turn do not fill the visitors' waiting room", async () => {
  const passwords = new LinkPasswords();
  const hash = await passwords.hash(RIGHT);
  const hashes = Array.from({ length: CONCURRENT_HASHES + MAX_WAITING_CHECKS + 8 }, () => passwords.hash("another password"));
  const attempt = passwords.unlock(1, hash, RIGHT, "203.0.113.11");
  expect(await attempt).toEqual({ kind: "unlocked" });
  expect(await Promise.all(hashes)).toHaveLength(CONCURRENT_HASHES + MAX_WAITING_CHECKS + 8);
});
