/** Runs wrk pinned to the client CPU with bench/pick-codes.lua and checks that every response was a redirect. */
import { join } from "node:path";
import { type CpuUse, measureCpu } from "./cpu";
import { spawn, stop } from "./processes";
import { ROOT, type RunningServer } from "./servers";

export interface Workload {
  name: "hot" | "uniform";
  codesFile: string;
  /** 0: uniform. Otherwise `hotShare` of requests go to the first `hotCount` codes. */
  hotCount: number;
  hotShare: number;
}

export interface WrkOptions {
  seconds: number;
  connections: number;
  serverCpu: number;
  clientCpu: number;
}

export interface WrkResult {
  rps: number;
  requests: number;
  p50ms: number;
  p99ms: number;
  cpu: CpuUse;
}

interface WrkJson {
  requests: number;
  duration_us: number;
  status_3xx: number;
  status_other: number;
  errors: { connect: number; read: number; write: number; timeout: number; status: number };
  latency_us: { p50: number; p99: number; max: number };
}

/** One wrk run; throws when any response was not a 3xx or any socket error occurred (bad seeding or a broken server). */
export async function runWrk(server: RunningServer, workload: Workload, options: WrkOptions): Promise<WrkResult> {
  const argv = [
    "wrk",
    "--threads",
    "1",
    "--connections",
    String(options.connections),
    "--duration",
    `${options.seconds}s`,
    "--timeout",
    "5s",
    "--script",
    join(ROOT, "bench/pick-codes.lua"),
    `${server.baseUrl}/`,
    "--",
    workload.codesFile,
    String(workload.hotCount),
    String(workload.hotShare),
  ];
  const proc = spawn(argv, { cpu: options.clientCpu });
  const cpu = measureCpu(server.proc.pid, proc.pid, options.serverCpu);
  const timer = setTimeout(() => void stop(proc, "SIGKILL"), (options.seconds + 30) * 1000);
  const [output, code] = await Promise.all([new Response(proc.stdout as ReadableStream).text(), proc.exited]);
  clearTimeout(timer);
  const use = cpu();
  const line = output.split("\n").find((l) => l.startsWith("WRK_JSON "));
  if (code !== 0 || line === undefined) throw new Error(`wrk exited ${code} without a result:\n${output}`);
  const result = JSON.parse(line.slice("WRK_JSON ".length)) as WrkJson;
  const errors = Object.entries(result.errors).filter(([, n]) => n > 0);
  if (result.status_other > 0 || errors.length > 0 || result.requests === 0) {
    throw new Error(
      `${server.name} ${workload.name}: ${result.status_other} non-3xx responses, errors ${JSON.stringify(result.errors)} ` +
        `of ${result.requests} requests. 404s mean the codes were not seeded; see ${server.logFile}`,
    );
  }
  return {
    rps: result.requests / (result.duration_us / 1e6),
    requests: result.requests,
    p50ms: result.latency_us.p50 / 1000,
    p99ms: result.latency_us.p99 / 1000,
    cpu: use,
  };
}
