/**
 * Where a webhook must not be sent unless the operator allows it (--webhook-allow-loopback): this machine (loopback
 * and unspecified addresses: the ops listener's unauthenticated POST /control/drain, Caddy's admin API, Litestream's
 * metrics) and link-local addresses (a cloud's instance metadata, 169.254.169.254). An API key may create webhooks;
 * it must not thereby reach what only the machine's own users may.
 */
import { type Cidr, cidrContains, parseCidr } from "./cidr";

const INTERNAL: readonly Cidr[] = ["127.0.0.0/8", "0.0.0.0/8", "169.254.0.0/16", "::1/128", "::/128", "fe80::/10"].map(
  (range) => parseCidr(range) as Cidr,
);

/** Whether an IP address (IPv4, IPv6, IPv4-mapped) is loopback, unspecified or link-local. */
export function isInternalAddress(ip: string): boolean {
  return INTERNAL.some((range) => cidrContains(range, ip));
}

/** Whether a URL's hostname names such an address by itself, before any DNS: localhost, or such an IP literal. */
export function namesInternalHost(hostname: string): boolean {
  const host = hostname
    .toLowerCase()
    .replace(/^\[|\]$/g, "")
    .replace(/\.$/, "");
  return host === "localhost" || host.endsWith(".localhost") || isInternalAddress(host);
}
