import { invalidField } from "../errors";

export const MAX_LONG_URL_BYTES = 2048;
const ALLOWED_PROTOCOLS = new Set(["http:", "https:"]);
// WHATWG parsing strips leading/trailing C0 controls and spaces and removes tab/CR/LF anywhere. We refuse
// such input instead of silently "fixing" it: what the user sent is not what would be stored.
const CONTROL_OR_SPACE = /[\u0000-\u0020\u007f]/;

/** The target's WHATWG-serialized form, or why `raw` is not an acceptable target. */
export function checkLongUrl(raw: unknown): { url: string } | { problem: string } {
  if (typeof raw !== "string") return { problem: "must be a string" };
  if (raw.length === 0) return { problem: "must not be empty" };
  if (Buffer.byteLength(raw) > MAX_LONG_URL_BYTES) return { problem: `must be at most ${MAX_LONG_URL_BYTES} bytes` };
  if (CONTROL_OR_SPACE.test(raw)) return { problem: "must not contain spaces or control characters" };
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return { problem: "must be an absolute URL" };
  }
  if (!ALLOWED_PROTOCOLS.has(url.protocol)) return { problem: "must use http or https" };
  if (url.hostname === "") return { problem: "must have a host" };
  const serialized = url.href;
  if (Buffer.byteLength(serialized) > MAX_LONG_URL_BYTES) return { problem: `must be at most ${MAX_LONG_URL_BYTES} bytes once normalized` };
  return { url: serialized };
}

/** Validates a target URL and returns its WHATWG-serialized form; throws invalid-data naming `field`. */
export function normalizeLongUrl(raw: unknown, field = "longUrl"): string {
  const checked = checkLongUrl(raw);
  if ("problem" in checked) throw invalidField(field, checked.problem);
  return checked.url;
}
