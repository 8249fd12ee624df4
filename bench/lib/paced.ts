/** Runs bench/paced-load.ts (fixed-rate load) pinned to the client CPU, with CPU accounting of the server. */
import { join } from "node:path";
import { type CpuUse, measureCpu } from "./cpu";
import { spawn, stop } from "./processes";
import { ROOT, type RunningServer } from "./servers";
import type { Workload } from "./wrk";

/** Percentiles in ms; null is infinity (the percentile falls among requests never answered). */
export type Percentiles = Record<"p50" | "p99" | "p999" | "max", number | null>;

export interface PacedResult {
  rate: number;
  achieved: number;
  completed: number;
  unanswered: number;
  nonRedirects: number;
  maxBacklog: number;
  clientStallMs: number;
  fromDueMs: Percentiles;
  onWireMs: Percentiles;
  /** p99 from due time of the requests due in each second of the run (null: none answered). */
  p99BySecondMs: (number | null)[];
  cpu: CpuUse;
}

export interface PacedOptions {
  rate: number;
  seconds: number;
  serverCpu: number;
  clientCpu: number;
}

/** One paced run; throws if any response was not a redirect. */
export async function runPaced(server: RunningServer, workload: Workload, options: PacedOptions): Promise<PacedResult> {
  const argv = [process.execPath, join(ROOT, "bench/paced-load.ts"), server.baseUrl, workload.codesFile, String(Math.round(options.rate))];
  const proc = spawn([...argv, String(options.seconds), String(workload.hotCount), String(workload.hotShare)], { cpu: options.clientCpu });
  const cpu = measureCpu(server.proc.pid, proc.pid, options.serverCpu);
  const timer = setTimeout(() => void stop(proc, "SIGKILL"), (options.seconds + 60) * 1000);
  const [output, code] = await Promise.all([new Response(proc.stdout as ReadableStream).text(), proc.exited]);
  clearTimeout(timer);
  const use = cpu();
  const line = output.split("\n").find((l) => l.startsWith("PACED_JSON "));
  if (code !== 0 || line === undefined) throw new Error(`paced-load exited ${code} without a result:\n${output}`);
  const result = JSON.parse(line.slice("PACED_JSON ".length)) as Omit<PacedResult, "cpu">;
  if (result.nonRedirects > 0) throw new Error(`${server.name}: ${result.nonRedirects} non-3xx responses under paced load`);
  return { ...result, cpu: use };
}
