/**
 * Free loopback ports for servers the tests and the benchmarks start (test/support/binary.ts, bench/lib/processes.ts).
 */
import { readFileSync } from "node:fs";

/** The kernel's range of local ports for outgoing connections (and for binds to port 0). */
function ephemeralPorts(): { lo: number; hi: number } {
  const [lo, hi] = readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8").trim().split(/\s+/).map(Number);
  if (lo === undefined || hi === undefined || !(lo > 0 && hi >= lo)) throw new Error("cannot read /proc/sys/net/ipv4/ip_local_port_range");
  return { lo, hi };
}

/** How many of the latest ports handed out stay barred from being handed out again. */
export const RECENT_PORTS = 2_000;

/** Ports handed out lately, oldest first: a Set keeps insertion order. */
const recent = new Set<number>();

/**
 * A free TCP port on 127.0.0.1 for a server a test starts next, chosen outside the kernel's ephemeral range. A port
 * bound to 0 and released comes from that range, where every client connection of the test takes a local port too:
 * under the crash test's churn of connections, one took a restarting server's port between the pick and its listen
 * (EADDRINUSE). A port is free when picked but not yet bound, so a pick also skips the latest ports handed out: a
 * server's public and ops ports are picked one after the other before it starts, and once in a CI run both came out
 * the same (`cannot listen on … (--ops-listen): address already in use`).
 */
export function freePort(): number {
  const { lo, hi } = ephemeralPorts();
  const [from, to] = lo > 11_024 ? [lo - 10_000, lo - 1] : [hi + 1, 65_535];
  for (let i = 0; i < 400; i++) {
    const port = from + Math.floor(Math.random() * (to - from + 1));
    if (recent.has(port)) continue;
    try {
      Bun.listen({ hostname: "127.0.0.1", port, socket: { data() {} } }).stop(true);
    } catch {
      continue; // Taken: try another.
    }
    recent.add(port);
    if (recent.size > RECENT_PORTS) recent.delete(recent.values().next().value as number);
    return port;
  }
  throw new Error(`no free port found in ${from}-${to}`);
}
