import { invalidField } from "../errors";

export const MAX_LONG_URL_BYTES = 2048;
const ALLOWED_PROTOCOLS = new Set(["http:", "https:"]);
// WHATWG parsing strips leading/trailing C0 controls and spaces and removes tab/CR/LF anywhere. We refuse
// such input instead of silently "fixing" it: what the user sent is not what would be stored.
const CONTROL_OR_SPACE = /[\u0000-\u0020\u007f]/;

/** Validates a target URL and returns its WHATWG-serialized form; throws invalid-data naming `field`. */
export function normalizeLongUrl(raw: unknown, field = "longUrl"): string {
  if (typeof raw !== "string") throw invalidField(field, "must be a string");
  if (raw.length === 0) throw invalidField(field, "must not be empty");
  if (Buffer.byteLength(raw) > MAX_LONG_URL_BYTES) throw invalidField(field, `must be at most ${MAX_LONG_URL_BYTES} bytes`);
  if (CONTROL_OR_SPACE.test(raw)) throw invalidField(field, "must not contain spaces or control characters");
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw invalidField(field, "must be an absolute URL");
  }
  if (!ALLOWED_PROTOCOLS.has(url.protocol)) throw invalidField(field, "must use http or https");
  if (url.hostname === "") throw invalidField(field, "must have a host");
  const serialized = url.href;
  if (Buffer.byteLength(serialized) > MAX_LONG_URL_BYTES)
    throw invalidField(field, `must be at most ${MAX_LONG_URL_BYTES} bytes once normalized`);
  return serialized;
}
