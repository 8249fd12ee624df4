/**
 * Per-request facts the instrumentation and error mapping share: the request id (an incoming well-formed
 * X-Request-Id, else a generated one) and the client IP (X-Forwarded-For only from a trusted proxy).
 */
import type { Server } from "bun";
import { type Cidr, cidrContains } from "../lib/cidr";
import { randomString } from "../lib/random";

const VALID_REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;
const PROCESS_PREFIX = randomString(10);
let counter = 0;
const ids = new WeakMap<Request, string>();

/** The id of this request, remembered so problem bodies can echo it. */
export function assignRequestId(request: Request): string {
  const incoming = request.headers.get("x-request-id");
  const id = incoming !== null && VALID_REQUEST_ID.test(incoming) ? incoming : `${PROCESS_PREFIX}-${(++counter).toString(36)}`;
  ids.set(request, id);
  return id;
}

export function requestIdOf(request: Request): string | undefined {
  return ids.get(request);
}

/**
 * The client's address: the peer, unless the peer is a trusted proxy, in which case the right-most address in
 * X-Forwarded-For that is not itself a trusted proxy.
 */
export function clientIp(request: Request, server: Server<undefined> | undefined, trusted: readonly Cidr[]): string | null {
  const peer = server?.requestIP(request)?.address ?? null;
  if (peer === null || trusted.length === 0 || !trusted.some((c) => cidrContains(c, peer))) return peer;
  const forwarded = request.headers.get("x-forwarded-for");
  if (forwarded === null) return peer;
  const hops = forwarded.split(",").map((h) => h.trim());
  for (let i = hops.length - 1; i >= 0; i--) {
    const hop = hops[i] as string;
    if (!trusted.some((c) => cidrContains(c, hop))) return /^[0-9a-fA-F:.]{2,45}$/.test(hop) ? hop : peer;
  }
  return peer;
}
