/**
 * Server-side latency read off the wire: tcpdump captures the loopback traffic of one server port during a paced run,
 * and each request's latency is the time from its packet to its response's packet on the same connection. A tap
 * times what a load balancer in front of the server would: the wait in the server's socket queue, its event loop,
 * its handler and its write, and nothing of the client's own stalls (its GC, its scheduling, its reads), which the
 * client-side figures of bench/paced-load.ts include.
 *
 * The capture keeps only segments with data (PSH) and 96 bytes of each; packets the kernel dropped from the capture
 * fail the measurement rather than shorten it. The kernel clones every captured packet as it is sent, the server's
 * responses on the server's CPU, so the tap costs the server a little: its figures err on the slow side.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { spawn, stop, waitFor } from "./processes";
import { percentile } from "./stats";

export interface TapLatency {
  /** Requests answered within the measured window. */
  requests: number;
  /** Requests seen without a response before the capture stopped. */
  unanswered: number;
  p50Ms: number;
  p99Ms: number;
  p999Ms: number;
  maxMs: number;
}

export interface Tap {
  /** Stops the capture and reads it; requests in its first `skipSeconds` (a warm-up) are left out. */
  finish(skipSeconds: number): Promise<TapLatency>;
}

/** Starts tcpdump on `lo` for TCP `port`, pinned to `cpu`; resolves once it captures. Needs CAP_NET_RAW (root). */
export async function startTap(port: number, dir: string, cpu: number): Promise<Tap> {
  const file = join(dir, `tap-${port}.pcap`);
  const logFile = join(dir, `tap-${port}.log`);
  const filter = `tcp port ${port} and (tcp[tcpflags] & tcp-push != 0)`;
  let proc: Subprocess;
  try {
    proc = spawn(["tcpdump", "-i", "lo", "-n", "-s", "96", "-B", "65536", "-U", "-w", file, filter], { cpu, logFile });
  } catch (error) {
    throw new Error(`tcpdump could not start (${(error as Error).message}); install it: apt-get install tcpdump`);
  }
  try {
    await waitFor(
      "tcpdump to listen",
      async () => readLog(logFile).includes("listening on lo"),
      () => proc.exitCode === null,
    );
  } catch (error) {
    throw new Error(`${(error as Error).message}; tcpdump said: ${readLog(logFile).trim()} (it needs root or CAP_NET_RAW)`);
  }
  return {
    async finish(skipSeconds: number): Promise<TapLatency> {
      await stop(proc, "SIGINT");
      const log = readLog(logFile);
      const dropped = /(\d+) packets? dropped by kernel/.exec(log);
      if (dropped === null) throw new Error(`tcpdump did not report its drops:\n${log}`);
      if (Number(dropped[1]) > 0) throw new Error(`tcpdump lost ${dropped[1]} packets; the tap's figures would be incomplete`);
      return latencies(readFileSync(file), port, skipSeconds);
    },
  };
}

function readLog(file: string): string {
  try {
    return readFileSync(file, "utf8");
  } catch {
    return "";
  }
}

const GET = 0x47455420; // "GET "
const HEAD = 0x48454144; // "HEAD"
const HTTP = 0x48545450; // "HTTP"

/** Request-to-response times from a pcap file (microsecond or nanosecond stamps, Ethernet or Linux cooked framing). */
export function latencies(pcap: Buffer, port: number, skipSeconds: number): TapLatency {
  const magic = pcap.readUInt32LE(0);
  const fraction = magic === 0xa1b2c3d4 ? 1e-6 : magic === 0xa1b23c4d ? 1e-9 : Number.NaN;
  if (Number.isNaN(fraction)) throw new Error("not a little-endian pcap file");
  const linkType = pcap.readUInt32LE(20);
  const linkHeader = linkType === 1 ? 14 : linkType === 113 ? 16 : linkType === 276 ? 20 : -1;
  if (linkHeader < 0) throw new Error(`unexpected link type ${linkType} in the capture`);
  /** Per client port, the arrival times (s) of requests not yet answered, oldest first. */
  const pending = new Map<number, number[]>();
  const times: number[] = [];
  let first = Number.NaN;
  for (let at = 24; at + 16 <= pcap.length; ) {
    const time = pcap.readUInt32LE(at) + pcap.readUInt32LE(at + 4) * fraction;
    const captured = pcap.readUInt32LE(at + 8);
    const ip = at + 16 + linkHeader;
    at += 16 + captured;
    if (pcap[ip] === undefined || pcap[ip] >> 4 !== 4) continue;
    const tcp = ip + (pcap[ip] & 0x0f) * 4;
    const dataAt = tcp + ((pcap[tcp + 12] as number) >> 4) * 4;
    if (dataAt + 4 > at) continue;
    const source = pcap.readUInt16BE(tcp);
    const destination = pcap.readUInt16BE(tcp + 2);
    const word = pcap.readUInt32BE(dataAt);
    if (destination === port && (word === GET || word === HEAD)) {
      if (Number.isNaN(first)) first = time;
      const queue = pending.get(source);
      if (queue === undefined) pending.set(source, [time]);
      else queue.push(time);
    } else if (source === port && word === HTTP) {
      const sent = pending.get(destination)?.shift();
      if (sent !== undefined && sent >= first + skipSeconds) times.push((time - sent) * 1000);
    }
  }
  let unanswered = 0;
  for (const queue of pending.values()) unanswered += queue.length;
  const sorted = times.sort((a, b) => a - b);
  return {
    requests: sorted.length,
    unanswered,
    p50Ms: percentile(sorted, 50),
    p99Ms: percentile(sorted, 99),
    p999Ms: percentile(sorted, 99.9),
    maxMs: sorted[sorted.length - 1] ?? Number.NaN,
  };
}
