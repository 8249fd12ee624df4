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

/**
 * The id of this request, remembered so problem bodies can echo it. The redirect path passes `remember: false`
 * (a WeakMap entry per redirect is not free) and calls rememberRequestId only on its rare error paths.
 */
export function assignRequestId(request: Request, remember = true): string {
  const incoming = request.headers.get("x-request-id");
  const id = incoming !== null && VALID_REQUEST_ID.test(incoming) ? incoming : `${PROCESS_PREFIX}-${(++counter).toString(36)}`;
  if (remember) ids.set(request, id);
  return id;
}

export function rememberRequestId(request: Request, id: string): void {
  ids.set(request, id);
}

export function requestIdOf(request: Request): string | undefined {
  return ids.get(request);
}

export type ClientIpResolver = (request: Request, server: Server<undefined> | undefined) => string | null;

const IP_TEXT = /^[0-9a-fA-F:.]{2,45}$/;
const MEMO_LIMIT = 4096;

/**
 * The client's address for the access log, taken only from a trusted proxy's X-Forwarded-For: the right-most
 * hop that is not itself a trusted proxy. With no trusted proxy configured there is none (null): the peer is not
 * asked for, since server.requestIP costs the redirect path about a sixth of its CPU. A loopback listener only
 * ever has local peers, so when the trusted ranges cover all of them (Caddy on the same VM) the peer need not be
 * asked for either. A trusted proxy that sends no header is logged as itself.
 */
export function clientIpResolver(listenHostname: string, trusted: readonly Cidr[]): ClientIpResolver {
  const memo = new Map<string, boolean>();
  const isTrusted = (ip: string): boolean => {
    let known = memo.get(ip);
    if (known === undefined) {
      known = trusted.some((c) => cidrContains(c, ip));
      if (memo.size >= MEMO_LIMIT) memo.clear();
      memo.set(ip, known);
    }
    return known;
  };
  const loopbackSpan = listenHostname.startsWith("127.") ? ["127.0.0.0", "127.255.255.255"] : listenHostname === "::1" ? ["::1"] : null;
  const everyPeerTrusted = loopbackSpan !== null && loopbackSpan.every((ip) => trusted.some((c) => cidrContains(c, ip)));
  const fromForwarded = (forwarded: string): string | null => {
    const hops = forwarded.split(",");
    for (let i = hops.length - 1; i >= 0; i--) {
      const hop = (hops[i] as string).trim();
      // What is not an address is no trusted proxy either, and stays out of the memo (a header may be 16 KiB).
      if (!IP_TEXT.test(hop)) return null;
      if (!isTrusted(hop)) return hop;
    }
    return null;
  };
  return (request, server) => {
    if (trusted.length === 0) return null;
    if (everyPeerTrusted) {
      const forwarded = request.headers.get("x-forwarded-for");
      const client = forwarded === null ? null : fromForwarded(forwarded);
      if (client !== null) return client;
      return server?.requestIP(request)?.address ?? null;
    }
    const peer = server?.requestIP(request)?.address ?? null;
    if (peer === null || !isTrusted(peer)) return null;
    const forwarded = request.headers.get("x-forwarded-for");
    return (forwarded === null ? null : fromForwarded(forwarded)) ?? peer;
  };
}

/**
 * The visitor's address for visit records (location, distinct visitors; stored anonymised or not at all): the
 * client a trusted proxy names, else the peer itself.
 */
export function visitorIpResolver(clientIp: ClientIpResolver, trusted: readonly Cidr[]): ClientIpResolver {
  const peer: ClientIpResolver = (request, server) => server?.requestIP(request)?.address ?? null;
  if (trusted.length === 0) return peer;
  return (request, server) => clientIp(request, server) ?? peer(request, server);
}
