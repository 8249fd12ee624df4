/**
 * Where a webhook delivery goes. The receiver's host is looked up here (once per RESOLVED_FOR_MS), the answer
 * checked (this machine and link-local addresses are refused unless --webhook-allow-loopback:
 * lib/internal-address.ts), and the request then sent to one of those very addresses, with the URL's host in the
 * Host header and, for https, as the TLS server name and the name the certificate must carry. A name whose answer
 * changes between the check and the request (DNS rebinding) cannot steer the request elsewhere: there is no second
 * lookup.
 *
 * Each host has a fetch session of its own (Bun.FetchSession): its keep-alive connections carry only that host's
 * requests, and each was checked against that host's certificate once, when it opened.
 *
 * Through a proxy (HTTP_PROXY or HTTPS_PROXY in the node's environment, which Bun's fetch follows) the proxy resolves
 * the name and connects, whatever address is in the URL: the request then goes by name, after the same check where
 * the name resolves here (a proxied node may have no resolver for outside names).
 */
import { lookup } from "node:dns/promises";
import { checkServerIdentity } from "node:tls";
import { parseIp } from "../lib/cidr";
import { isInternalAddress, namesInternalHost } from "../lib/internal-address";

/** One way to send a delivery: the URL with the address in place of the host, and what goes with it. */
export interface Route {
  url: string;
  /** The address connected to (the host itself when the URL names an IP); null through a proxy. */
  address: string | null;
  /** The Host header: the URL's host and port, as a request to the URL would send. */
  host: string;
  /** The host's session; absent when the URL names an IP (a plain fetch to it is already pinned). */
  session?: Bun.FetchSession;
}

/** A receiver's routes, one per address in the order to try them, or why it may not be sent to. */
export type Routing = { routes: Route[] } | { refused: string };

export interface TargetOptions {
  /** Whether a receiver's host may be or resolve to this machine or a link-local address. */
  allowLoopback: boolean;
  /** A host's addresses (default: the system resolver's, all of them). */
  resolve?: (host: string) => Promise<string[]>;
  /** Whether requests to URLs of this scheme ("http:", "https:") go through a proxy. */
  proxied?: (scheme: string) => boolean;
  now: () => number;
}

/** How long a receiver host's addresses are reused, and how many hosts are kept (webhooks are few). */
const RESOLVED_FOR_MS = 30_000;
const RESOLVED_LIMIT = 256;
/** Addresses tried in one attempt at most, each only when the one before could not be connected to. */
const MAX_ROUTES = 4;

/** Errors that mean no connection was made, so nothing was sent: the next address may be tried at once. */
const NOT_CONNECTED = new Set(["ECONNREFUSED", "EHOSTUNREACH", "ENETUNREACH", "EADDRNOTAVAIL"]);

/** Whether a failed fetch never reached its receiver (the request was not sent), so another address may be tried. */
export function neverConnected(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "string" && NOT_CONNECTED.has(code);
}

export class WebhookTargets {
  readonly #resolved = new Map<string, { addresses: string[]; until: number }>();
  readonly #sessions = new Map<string, Bun.FetchSession>();

  constructor(private readonly options: TargetOptions) {}

  /** Where to send a POST to `url` (absolute http or https, as webhooks are created with). */
  async route(url: URL): Promise<Routing> {
    const name = url.hostname.replace(/^\[|\]$/g, "");
    const allow = this.options.allowLoopback;
    if (!allow && namesInternalHost(name))
      return { refused: `refused: ${name} is this machine or link-local; --webhook-allow-loopback allows it` };
    if (parseIp(name) !== null) return { routes: [{ url: url.href, address: name, host: url.host }] };
    // Through a proxy: by name, for the proxy to resolve.
    const byName = this.options.proxied?.(url.protocol) === true ? { routes: [{ url: url.href, address: null, host: url.host }] } : null;
    let addresses: string[];
    try {
      addresses = await this.#addresses(name);
    } catch (error) {
      return byName ?? { refused: `${name} does not resolve: ${error instanceof Error ? error.message : String(error)}` };
    }
    const internal = allow ? undefined : addresses.find(isInternalAddress);
    if (internal !== undefined) {
      return { refused: `refused: ${name} resolves to ${internal}, this machine or link-local; --webhook-allow-loopback allows it` };
    }
    if (byName !== null) return byName;
    if (addresses.length === 0) return { refused: `${name} does not resolve: no addresses` };
    const session = this.#session(name);
    return {
      routes: addresses.slice(0, MAX_ROUTES).map((address) => {
        const pinned = new URL(url.href);
        pinned.hostname = address.includes(":") ? `[${address}]` : address;
        return { url: pinned.href, address, host: url.host, session };
      }),
    };
  }

  /** Closes the idle connections of every host's session. */
  close(): void {
    for (const session of this.#sessions.values()) session.close();
  }

  /**
   * A host's addresses, IPv4 first (a node without an IPv6 route then never waits on one), looked up at most once
   * per RESOLVED_FOR_MS, not once per delivery: a link.visited webhook sends one per visit. Throws when the host
   * does not resolve.
   */
  async #addresses(host: string): Promise<string[]> {
    const now = this.options.now();
    const known = this.#resolved.get(host);
    if (known !== undefined && known.until > now) return known.addresses;
    const found = await (this.options.resolve ?? resolveAll)(host);
    const addresses = [...found.filter((a) => !a.includes(":")), ...found.filter((a) => a.includes(":"))];
    if (this.#resolved.size >= RESOLVED_LIMIT) this.#resolved.clear();
    this.#resolved.set(host, { addresses, until: now + RESOLVED_FOR_MS });
    return addresses;
  }

  /** The host's session: TLS connections named (SNI) and checked for `host`, whatever address they go to. */
  #session(host: string): Bun.FetchSession {
    let session = this.#sessions.get(host);
    if (session === undefined) {
      if (this.#sessions.size >= RESOLVED_LIMIT) {
        this.close();
        this.#sessions.clear();
      }
      session = new Bun.FetchSession({
        tls: { serverName: host, checkServerIdentity: (_address, cert) => checkServerIdentity(host, cert) },
      });
      this.#sessions.set(host, session);
    }
    return session;
  }
}

/** Whether the environment names a proxy for URLs of `scheme` ("http:" or "https:"), as Bun's fetch reads it. */
export function proxyConfigured(env: Record<string, string | undefined>, scheme: string): boolean {
  const name = scheme === "https:" ? "https_proxy" : "http_proxy";
  return (env[name] ?? env[name.toUpperCase()] ?? "") !== "";
}

/** Every address the system resolver gives for `host`. */
async function resolveAll(host: string): Promise<string[]> {
  return (await lookup(host, { all: true })).map((a) => a.address);
}
