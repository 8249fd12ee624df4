/**
 * Reads a request body as JSON within a byte limit, so oversized or malformed input is a clear 4xx; null when
 * empty. The body is streamed and abandoned as soon as it passes the limit, chunked or not.
 */
import { malformedBody, payloadTooLarge } from "../errors";

async function readLimited(request: Request, limit: number): Promise<Uint8Array> {
  const declared = request.headers.get("content-length");
  if (declared !== null && Number(declared) > limit) throw payloadTooLarge(limit);
  if (request.body === null) return new Uint8Array(0);
  const chunks: Uint8Array[] = [];
  let size = 0;
  const reader = request.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > limit) {
      await reader.cancel();
      throw payloadTooLarge(limit);
    }
    chunks.push(value);
  }
  const bytes = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return bytes;
}

/** A request body as UTF-8 text ("" when empty): a 413 once it passes `limit`, a 400 when it is not UTF-8. */
export async function readTextBody(request: Request, limit: number): Promise<string> {
  const bytes = await readLimited(request, limit);
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    throw malformedBody("Request body is not valid UTF-8.");
  }
}

export async function readJsonBody(request: Request, limit: number): Promise<unknown> {
  const text = await readTextBody(request, limit);
  // No body (DELETE, or a POST without one): the route's own validation says what was expected.
  if (text === "") return null;
  try {
    return JSON.parse(text);
  } catch {
    throw malformedBody("Request body is not valid JSON.");
  }
}
