/**
 * API keys: at least 128 random bits behind a recognisable prefix, stored only as a SHA-256 hash and never
 * logged. Verification hashes the presented key and looks the hash up.
 */
import { invalidApiKey, invalidField, missingAuthentication, UsageError } from "../errors";
import { formatIsoDate } from "../lib/iso-date";
import { randomString } from "../lib/random";
import type { ApiKeyRow, ApiKeyStore } from "../storage/api-key-store";
import { type AuditLog, cliActor } from "./audit-log";

export const KEY_PREFIX = "shk_";
/** 32 base62 characters carry log2(62) * 32 ≈ 190 bits. */
const KEY_RANDOM_CHARS = 32;
export const ROLES = ["admin", "read-only"] as const;
export type KeyRole = (typeof ROLES)[number];

export interface ApiKey {
  id: number;
  name: string;
  role: KeyRole;
}

/** What `keys list` shows: never a secret or its hash. */
export interface ApiKeyInfo {
  name: string;
  role: string;
  createdAt: number;
  expiresAt: number | null;
  revokedAt: number | null;
}

export function hashKey(key: string): string {
  return new Bun.CryptoHasher("sha256").update(key).digest("hex");
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/** The audit history, and a transaction to write each key change and its event in together. */
export interface KeyAudit {
  log: AuditLog;
  transaction<T>(write: () => T): T;
}

export class ApiKeyService {
  constructor(
    private readonly store: ApiKeyStore,
    private readonly audit?: KeyAudit,
  ) {}

  /** The change and its audit event, in one transaction (the change alone without an audit history). */
  #audited<T>(write: () => T, event: (result: T) => Parameters<AuditLog["record"]> | null): T {
    const audit = this.audit;
    if (audit === undefined) return write();
    return audit.transaction(() => {
      const result = write();
      const recorded = event(result);
      if (recorded !== null) audit.log.record(...recorded);
      return result;
    });
  }

  /** Creates a key and returns the secret; this is the only time it exists outside the caller. */
  create(name: string, role: string, expiresAt: number | null, now = Date.now()): string {
    if (!NAME.test(name)) throw new UsageError(`key name "${name}" must be 1-64 letters, digits, '.', '_' or '-'`);
    if (!ROLES.includes(role as KeyRole)) throw new UsageError(`role "${role}" must be one of ${ROLES.join(", ")}`);
    if (expiresAt !== null && expiresAt <= now) throw new UsageError("--expires must be in the future");
    const secret = KEY_PREFIX + randomString(KEY_RANDOM_CHARS);
    const id = this.#audited(
      () => this.store.insert({ name, key_hash: hashKey(secret), role, created_at: now, expires_at: expiresAt }),
      (inserted) =>
        inserted === null
          ? null
          : [cliActor(), "api-key.created", `key ${name}`, { role, expiresAt: expiresAt === null ? null : formatIsoDate(expiresAt) }],
    );
    if (id === null)
      throw new UsageError(`a key named "${name}" already exists; names are never reused, even after revoking: pick another name`);
    return secret;
  }

  /** The key behind an `X-Api-Key` header value; throws 401 problems for missing, unknown, expired or revoked keys. */
  verify(presented: string | null, now = Date.now()): ApiKey {
    if (presented === null || presented === "") throw missingAuthentication();
    if (presented.length > 256) throw invalidApiKey();
    const row = this.store.findByHash(hashKey(presented));
    if (row === null || row.revoked_at !== null || (row.expires_at !== null && row.expires_at <= now)) throw invalidApiKey();
    return { id: row.id, name: row.name, role: row.role as KeyRole };
  }

  /** True while the key with this id exists and is neither revoked nor expired (for grants derived from a key). */
  isActive(id: number, now = Date.now()): boolean {
    const row = this.store.findById(id);
    return row !== null && row.revoked_at === null && (row.expires_at === null || row.expires_at > now);
  }

  list(): ApiKeyInfo[] {
    return this.store.all().map((row: ApiKeyRow) => ({
      name: row.name,
      role: row.role,
      createdAt: row.created_at,
      expiresAt: row.expires_at,
      revokedAt: row.revoked_at,
    }));
  }

  revoke(name: string, now = Date.now()): void {
    const revoked = this.#audited(
      () => this.store.revoke(name, now),
      (done) => (done ? [cliActor(), "api-key.revoked", `key ${name}`, {}] : null),
    );
    if (!revoked) throw invalidField("name", `no active key named "${name}"`);
  }

  activeCount(): number {
    return this.store.activeCount();
  }
}
