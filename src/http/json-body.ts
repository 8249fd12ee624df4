/** Reads a request body as JSON within a byte limit, so oversized or malformed input is a clear 4xx; null when empty. */
import { malformedBody, payloadTooLarge } from "../errors";

export async function readJsonBody(request: Request, limit: number): Promise<unknown> {
  const declared = request.headers.get("content-length");
  if (declared !== null && Number(declared) > limit) throw payloadTooLarge(limit);
  const bytes = new Uint8Array(await request.arrayBuffer());
  if (bytes.byteLength > limit) throw payloadTooLarge(limit);
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
