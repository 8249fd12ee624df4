/**
 * Password-protected links: the password rules, hashing (argon2id on Bun's thread pool, never on the event loop) and
 * the gate every unlock attempt goes through, which bounds guessing per visitor and per link and bounds the memory
 * and CPU that checks may take at once.
 */
import { LRUCache } from "lru-cache";
import { parseIp } from "../lib/cidr";
import type { LinkPasswordStore } from "../storage/link-password-store";
import type { CreateShortUrlInput } from "./short-url-input";

export const MIN_PASSWORD_LENGTH = 8;
export const MAX_PASSWORD_LENGTH = 128;

/** Why `value` cannot be a link's password, or null when it can. */
export function passwordProblem(value: unknown): string | null {
  if (typeof value !== "string") return "must be a string";
  const length = [...value].length;
  if (length < MIN_PASSWORD_LENGTH || length > MAX_PASSWORD_LENGTH) {
    return `must be ${MIN_PASSWORD_LENGTH} to ${MAX_PASSWORD_LENGTH} characters long`;
  }
  return null;
}

/**
 * OWASP's argon2id floor (19 MiB, 2 passes): ~25 ms per hash or check here. The parameters travel in each hash, so
 * raising them later leaves older hashes checkable.
 */
const HASH_OPTIONS = { algorithm: "argon2id", memoryCost: 19_456, timeCost: 2 } as const;

/** Hashes or checks run at once (each holds 19 MiB); more wait their turn. */
export const CONCURRENT_HASHES = 2;
/** Unlock attempts that may wait for a turn; beyond, an attempt is refused as busy rather than queued. */
export const MAX_WAITING_CHECKS = 32;

/** Failed attempts a visitor (an address; an IPv6 /64) may make on one link per window. */
export const CLIENT_FAILURES = 5;
/** Failed attempts one link may take from everyone per window: guessing from many addresses stops too. */
export const LINK_FAILURES = 100;
export const FAILURE_WINDOW_MS = 15 * 60_000;
/** Visitors and links whose failures are remembered (the oldest are forgotten first). */
const REMEMBERED = 20_000;

interface Failures {
  count: number;
  /** When this window's count starts again from 0. */
  resetAt: number;
}

export type UnlockOutcome =
  | { kind: "unlocked" }
  | { kind: "wrong" }
  | { kind: "limited"; retryAfterSeconds: number }
  | { kind: "busy"; retryAfterSeconds: number };

/** A visitor's address as the key their failures count under: an IPv6 address by its /64 (what one host is given). */
export function clientKey(ip: string | null): string {
  if (ip === null) return "?";
  const value = parseIp(ip);
  if (value === null) return ip;
  const ipv4 = value >> 32n === 0xffffn;
  return ipv4 ? value.toString(16) : `${(value >> 64n).toString(16)}/64`;
}

export class LinkPasswords {
  readonly #failures = new LRUCache<string, Failures>({ max: REMEMBERED });
  #running = 0;
  readonly #waiting: (() => void)[] = [];
  /** Visitors' checks among #waiting: the waiting room's size (API hashes wait too, but are not turned away). */
  #waitingChecks = 0;

  readonly #now: () => number;
  readonly #clientFailures: number;
  readonly #linkFailures: number;

  /** The limits are CLIENT_FAILURES and LINK_FAILURES per FAILURE_WINDOW_MS unless given (tests give smaller ones). */
  constructor(options: { now?: () => number; clientFailures?: number; linkFailures?: number } = {}) {
    this.#now = options.now ?? Date.now;
    this.#clientFailures = options.clientFailures ?? CLIENT_FAILURES;
    this.#linkFailures = options.linkFailures ?? LINK_FAILURES;
  }

  /** The hash to store for a password (waits for a turn: API writes are few, and trusted). */
  async hash(password: string): Promise<string> {
    return this.#turn(() => Bun.password.hash(password, HASH_OPTIONS));
  }

  /** Whether `password` is the one `hash` was made from (for findIfExists: a trusted caller, so it waits its turn). */
  async matches(password: string, hash: string): Promise<boolean> {
    return this.#turn(() => Bun.password.verify(password, hash));
  }

  /**
   * A visitor's attempt to unlock link `linkId` whose hash is `hash`. Refused without checking while the visitor or
   * the link has used up its failures for the window, or when too many checks already wait.
   */
  async unlock(linkId: number, hash: string, password: string, ip: string | null): Promise<UnlockOutcome> {
    const client = `${linkId} ${clientKey(ip)}`;
    const link = String(linkId);
    const limited = this.#limited(client, this.#clientFailures) ?? this.#limited(link, this.#linkFailures);
    if (limited !== null) return { kind: "limited", retryAfterSeconds: limited };
    if (this.#running >= CONCURRENT_HASHES && this.#waitingChecks >= MAX_WAITING_CHECKS) return { kind: "busy", retryAfterSeconds: 1 };
    // Counted as failures before the check, so attempts sent at once cannot all pass the limit while they wait.
    this.#fail(client);
    this.#fail(link);
    const waits = this.#running >= CONCURRENT_HASHES;
    if (waits) this.#waitingChecks++;
    const right = await this.#turn(() => {
      if (waits) this.#waitingChecks--;
      return Bun.password.verify(password, hash);
    });
    if (!right) return { kind: "wrong" };
    this.#failures.delete(client);
    const linkFailures = this.#failures.get(link);
    if (linkFailures !== undefined) linkFailures.count = Math.max(0, linkFailures.count - 1);
    return { kind: "unlocked" };
  }

  /** Seconds until `key` may try again, or null when it is under `max` failures. */
  #limited(key: string, max: number): number | null {
    const failures = this.#failures.get(key);
    const now = this.#now();
    if (failures === undefined || failures.resetAt <= now || failures.count < max) return null;
    return Math.max(1, Math.ceil((failures.resetAt - now) / 1000));
  }

  #fail(key: string): void {
    const now = this.#now();
    const failures = this.#failures.get(key);
    if (failures === undefined || failures.resetAt <= now) this.#failures.set(key, { count: 1, resetAt: now + FAILURE_WINDOW_MS });
    else failures.count++;
  }

  async #turn<T>(work: () => Promise<T>): Promise<T> {
    if (this.#running >= CONCURRENT_HASHES) await new Promise<void>((resolve) => this.#waiting.push(resolve));
    else this.#running++;
    try {
      return await work();
    } finally {
      const next = this.#waiting.shift();
      if (next === undefined) this.#running--;
      else next();
    }
  }
}

/**
 * Before a create's write, off the event loop: each input's password hash, and the existing links (`candidates`: those
 * with its long URL on its domain) whose password is the one a findIfExists input gives. Only those may answer it; an
 * input without a password matches no protected link.
 */
export async function passwordsForCreates(
  inputs: readonly CreateShortUrlInput[],
  passwords: { store: LinkPasswordStore; hasher: LinkPasswords },
  candidates: (input: CreateShortUrlInput) => readonly { id: number }[],
): Promise<{ hashes: (string | null)[]; unlocked: Set<number> }> {
  const unlocked = new Set<number>();
  if (!inputs.some((input) => typeof input.password === "string")) return { hashes: [], unlocked };
  const { hasher, store } = passwords;
  // One at a time: a bulk create's thousand hashes hold one of the two turns, never both (visitors keep the other).
  const hashes: (string | null)[] = [];
  for (const input of inputs) hashes.push(typeof input.password === "string" ? await hasher.hash(input.password) : null);
  for (const input of inputs) {
    if (!input.findIfExists || typeof input.password !== "string") continue;
    for (const candidate of candidates(input)) {
      const hash = store.hashOf(candidate.id);
      if (hash !== null && (await hasher.matches(input.password, hash))) unlocked.add(candidate.id);
    }
  }
  return { hashes, unlocked };
}
