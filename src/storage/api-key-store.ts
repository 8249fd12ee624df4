/** All SQL for the api_keys table. Only SHA-256 hashes of keys are stored. */
import type { Database } from "bun:sqlite";

export interface ApiKeyRow {
  id: number;
  name: string;
  key_hash: string;
  role: string;
  created_at: number;
  expires_at: number | null;
  revoked_at: number | null;
}

export class ApiKeyStore {
  readonly #insert;
  readonly #byHash;
  readonly #byId;
  readonly #byName;
  readonly #all;
  readonly #revoke;
  readonly #count;

  constructor(db: Database) {
    this.#insert = db.query<{ id: number }, Record<string, string | number | null>>(
      `INSERT INTO api_keys (name, key_hash, role, created_at, expires_at) VALUES ($name, $key_hash, $role, $created_at, $expires_at)
       ON CONFLICT (name) DO NOTHING RETURNING id`,
    );
    this.#byHash = db.query<ApiKeyRow, [string]>("SELECT * FROM api_keys WHERE key_hash = ?");
    this.#byId = db.query<ApiKeyRow, [number]>("SELECT * FROM api_keys WHERE id = ?");
    this.#byName = db.query<ApiKeyRow, [string]>("SELECT * FROM api_keys WHERE name = ?");
    this.#all = db.query<ApiKeyRow, []>("SELECT * FROM api_keys ORDER BY created_at, id");
    this.#revoke = db.query<unknown, [number, string]>("UPDATE api_keys SET revoked_at = ? WHERE name = ? AND revoked_at IS NULL");
    this.#count = db.query<{ n: number }, []>("SELECT count(*) AS n FROM api_keys WHERE revoked_at IS NULL");
  }

  /** Inserts a key; null when the name is taken. */
  insert(row: Omit<ApiKeyRow, "id" | "revoked_at">): number | null {
    return this.#insert.get({ ...row })?.id ?? null;
  }

  findByHash(hash: string): ApiKeyRow | null {
    return this.#byHash.get(hash);
  }

  findById(id: number): ApiKeyRow | null {
    return this.#byId.get(id);
  }

  findByName(name: string): ApiKeyRow | null {
    return this.#byName.get(name);
  }

  all(): ApiKeyRow[] {
    return this.#all.all();
  }

  /** Marks the key revoked; false if no active key has that name. */
  revoke(name: string, at: number): boolean {
    return this.#revoke.run(at, name).changes > 0;
  }

  activeCount(): number {
    return (this.#count.get() as { n: number }).n;
  }
}
