/**
 * Reads a request body as JSON within a byte limit, so oversized or malformed input is a clear 4xx; null when
 * empty. The body is streamed and abandoned as soon as it passes the limit, chunked or not.
 */
import { malformedBody, payloadTooLarge } from "../errors";

/** A request body's bytes, or a 413 once they pass `limit`. */
export async function readLimited(request: Request, limit: number): Promise<Uint8Array> {
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

export async function readJsonBody(request: Request, limit: number): Promise<unknown> {
  const bytes = await readLimited(request, limit);
  // No body (DELETE, or a POST without one): the route's own validation says what was expected.
  if (bytes.byteLength === 0) return null;
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    throw malformedBody("Request body is not valid UTF-8.");
  }
  try {
    return JSON.parse(text);
  } catch {
    throw malformedBody("Request body is not valid JSON.");
  }
}
