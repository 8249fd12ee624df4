/**
 * Standard Webhooks signing (symmetric, `v1`): the secret is `whsec_` + base64 of random bytes, and a delivery's
 * `webhook-signature` is `v1,` + base64(HMAC-SHA256(secret bytes, `${id}.${timestamp}.${body}`)), with the
 * timestamp in seconds. Several space-separated signatures may be sent while a secret is being rotated.
 */
import { createHmac, randomBytes } from "node:crypto";

export const SECRET_PREFIX = "whsec_";
/** The spec asks for 24 to 64 random bytes; 32 is HMAC-SHA256's block-size sweet spot. */
const SECRET_BYTES = 32;

/** A new signing secret, `whsec_` + base64 of 32 random bytes. */
export function generateSecret(): string {
  return SECRET_PREFIX + randomBytes(SECRET_BYTES).toString("base64");
}

/** The key bytes of a `whsec_` secret. */
export function secretKey(secret: string): Buffer {
  if (!secret.startsWith(SECRET_PREFIX)) throw new Error("a webhook secret starts with whsec_");
  const key = Buffer.from(secret.slice(SECRET_PREFIX.length), "base64");
  if (key.length === 0) throw new Error("a webhook secret has key bytes after whsec_");
  return key;
}

/** One `v1,<base64>` signature of a delivery. */
export function sign(secret: string, messageId: string, timestampSeconds: number, body: string): string {
  const mac = createHmac("sha256", secretKey(secret)).update(`${messageId}.${timestampSeconds}.${body}`).digest("base64");
  return `v1,${mac}`;
}

/** The Standard Webhooks headers of one attempt, signed with every secret given (current first, then old ones). */
export function signedHeaders(
  secrets: readonly string[],
  messageId: string,
  timestampSeconds: number,
  body: string,
): Record<"webhook-id" | "webhook-timestamp" | "webhook-signature", string> {
  return {
    "webhook-id": messageId,
    "webhook-timestamp": String(timestampSeconds),
    "webhook-signature": secrets.map((secret) => sign(secret, messageId, timestampSeconds, body)).join(" "),
  };
}
