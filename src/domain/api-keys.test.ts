import { Database } from "bun:sqlite";
import { describe, expect, test } from "bun:test";
import { AppError } from "../errors";
import { ApiKeyStore } from "../storage/api-key-store";
import { runMigrations } from "../storage/migrations";
import { ApiKeyService, hashKey } from "./api-keys";

function service() {
  const db = new Database(":memory:");
  runMigrations(db, ":memory:");
  return { db, keys: new ApiKeyService(new ApiKeyStore(db)) };
}

function problemCode(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    if (error instanceof AppError) return error.code;
    throw error;
  }
  return "accepted";
}

describe("ApiKeyService", () => {
  test("stores only the SHA-256 of the key", () => {
    const { db, keys } = service();
    const secret = keys.create("a", "admin", null);
    const stored = db.query("SELECT * FROM api_keys").all();
    expect(JSON.stringify(stored)).not.toContain(secret);
    expect(stored).toMatchObject([{ name: "a", key_hash: hashKey(secret) }]);
  });

  test("accepts a key until it expires, and refuses it after", () => {
    const { keys } = service();
    const secret = keys.create("temp", "admin", 2_000, 1_000);
    expect(keys.verify(secret, 1_999).name).toBe("temp");
    expect(problemCode(() => keys.verify(secret, 2_000))).toBe("invalid-api-key");
  });

  test("isActive holds for a key by id until it is revoked or expires", () => {
    const { keys } = service();
    const revoked = keys.verify(keys.create("r", "admin", null));
    const temp = keys.verify(keys.create("t", "read-only", 2_000, 1_000), 1_000);
    expect(keys.isActive(revoked.id)).toBe(true);
    keys.revoke("r");
    expect(keys.isActive(revoked.id)).toBe(false);
    expect(keys.isActive(temp.id, 1_999)).toBe(true);
    expect(keys.isActive(temp.id, 2_000)).toBe(false);
    expect(keys.isActive(9_999)).toBe(false);
  });

  test("refuses missing, unknown, oversized and revoked keys with Shlink's problem codes", () => {
    const { keys } = service();
    const secret = keys.create("gone", "read-only", null);
    expect(keys.verify(secret).role).toBe("read-only");
    keys.revoke("gone");
    expect(problemCode(() => keys.verify(secret))).toBe("invalid-api-key");
    expect(problemCode(() => keys.verify(null))).toBe("missing-authentication");
    expect(problemCode(() => keys.verify(""))).toBe("missing-authentication");
    expect(problemCode(() => keys.verify("shk_unknown"))).toBe("invalid-api-key");
    expect(problemCode(() => keys.verify("x".repeat(10_000)))).toBe("invalid-api-key");
  });
});
