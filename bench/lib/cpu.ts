/**
 * CPU accounting from /proc, to tell whether a run measured the server: the server should keep its CPU busy,
 * the client should not be saturated, and nobody else should be running on the server's CPU (the machine is
 * shared). Times are in clock ticks (USER_HZ, 100 on Linux).
 */
import { readFileSync } from "node:fs";

const TICKS_PER_SECOND = 100;

/** utime + stime of a process (all threads), in ticks. */
function processTicks(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  // Fields after the parenthesised command name; utime and stime are fields 14 and 15 overall.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return Number(fields[11]) + Number(fields[12]);
}

/** Busy ticks (everything but idle and iowait) of one CPU. */
function cpuBusyTicks(cpu: number): number {
  const line = readFileSync("/proc/stat", "utf8")
    .split("\n")
    .find((l) => l.startsWith(`cpu${cpu} `));
  if (line === undefined) throw new Error(`cpu${cpu} not in /proc/stat`);
  const [user = 0, nice = 0, system = 0, , , irq = 0, softirq = 0, steal = 0] = line.trim().split(/\s+/).slice(1).map(Number);
  return user + nice + system + irq + softirq + steal;
}

export interface CpuUse {
  /** Share of one CPU used by the server process, 0..1. */
  server: number;
  /** Share of one CPU used by the client process. */
  client: number;
  /** Share of the server's CPU used by anything else (other processes, interrupts): noise. */
  serverCpuOther: number;
}

/** Starts measuring; call the returned function at the end of the interval. */
export function measureCpu(serverPid: number, clientPid: number, serverCpu: number): () => CpuUse {
  const t0 = performance.now();
  const s0 = processTicks(serverPid);
  const c0 = processTicks(clientPid);
  const b0 = cpuBusyTicks(serverCpu);
  // The client (wrk) exits at the end of its run and its /proc entry goes with it: keep the latest reading.
  let clientLast = c0;
  const sampleClient = () => {
    try {
      clientLast = processTicks(clientPid);
    } catch {}
  };
  const timer = setInterval(sampleClient, 200);
  return () => {
    clearInterval(timer);
    sampleClient();
    const seconds = (performance.now() - t0) / 1000;
    const server = processTicks(serverPid) - s0;
    const busy = cpuBusyTicks(serverCpu) - b0;
    const share = (ticks: number) => ticks / TICKS_PER_SECOND / seconds;
    return { server: share(server), client: share(clientLast - c0), serverCpuOther: Math.max(0, share(busy - server)) };
  };
}

/** The 1-minute load average. */
export function loadAverage(): number {
  return Number(readFileSync("/proc/loadavg", "utf8").split(" ")[0]);
}
