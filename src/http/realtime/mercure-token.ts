/**
 * Subscriber tokens for the built-in Mercure hub: HS256 JWTs, as Shlink issues them (`mercure.subscribe` claim,
 * an expiry), signed with a secret that lives only in this process. A restart or a blue/green swap invalidates
 * every token; Shlink's web UI then fetches a new one from /rest/v3/mercure-info, as it does when one expires.
 */
import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";

/** A verified token's grants. */
export interface MercureGrant {
  /** The API key the token was issued to (`sub`): its grants end when the key is revoked or expires. */
  keyId: number;
  /** Topics the holder may subscribe to; `*` is every topic. */
  subscribe: readonly string[];
  /** Epoch milliseconds. */
  expiresAt: number;
}

const HEADER = base64url(JSON.stringify({ alg: "HS256", typ: "JWT" }));
/** Tokens longer than this are refused before any work (ours are ~200 characters). */
const MAX_TOKEN_LENGTH = 4096;
const ISSUER = "shortener";

function base64url(text: string | Buffer): string {
  return Buffer.from(text).toString("base64url");
}

function decodeJson(part: string): unknown {
  try {
    return JSON.parse(Buffer.from(part, "base64url").toString("utf8"));
  } catch {
    return null;
  }
}

export class MercureTokens {
  readonly #secret: Buffer;

  /** A random 256-bit secret unless one is given (tests). */
  constructor(secret: Buffer = randomBytes(32)) {
    this.#secret = secret;
  }

  /** A token for API key `keyId` that may subscribe to every topic until `expiresAt` (epoch ms, rounded down to the second). */
  issue(keyId: number, expiresAt: number, now = Date.now()): string {
    const payload = base64url(
      JSON.stringify({
        iss: ISSUER,
        sub: String(keyId),
        iat: Math.floor(now / 1000),
        exp: Math.floor(expiresAt / 1000),
        mercure: { subscribe: ["*"] },
      }),
    );
    return `${HEADER}.${payload}.${this.#sign(`${HEADER}.${payload}`)}`;
  }

  /**
   * The grants of a token this process issued, or null when it is malformed, signed with another key or another
   * algorithm (only HS256 is accepted: never `none`), expired, or lacks the `sub` or `mercure.subscribe` claim.
   */
  verify(token: string, now = Date.now()): MercureGrant | null {
    if (token.length > MAX_TOKEN_LENGTH) return null;
    const parts = token.split(".");
    if (parts.length !== 3) return null;
    const [header, payload, signature] = parts as [string, string, string];
    const alg = (decodeJson(header) as { alg?: unknown } | null)?.alg;
    if (alg !== "HS256") return null;
    // Compared as text, so no other spelling of the same bytes passes.
    const expected = Buffer.from(this.#sign(`${header}.${payload}`));
    const given = Buffer.from(signature);
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return null;
    const claims = decodeJson(payload) as { exp?: unknown; sub?: unknown; mercure?: { subscribe?: unknown } } | null;
    if (claims === null || typeof claims !== "object" || typeof claims.exp !== "number") return null;
    const keyId = typeof claims.sub === "string" && /^[1-9]\d{0,15}$/.test(claims.sub) ? Number(claims.sub) : null;
    if (keyId === null) return null;
    const expiresAt = claims.exp * 1000;
    if (expiresAt <= now) return null;
    const subscribe = claims.mercure?.subscribe;
    if (!Array.isArray(subscribe) || !subscribe.every((t) => typeof t === "string")) return null;
    return { keyId, subscribe, expiresAt };
  }

  #sign(input: string): string {
    return createHmac("sha256", this.#secret).update(input).digest("base64url");
  }
}

/** True when a grant lets its holder subscribe to `topic`. */
export function grants(grant: MercureGrant, topic: string): boolean {
  return grant.subscribe.includes("*") || grant.subscribe.includes(topic);
}
