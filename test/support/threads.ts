/**
 * A running process's threads as /proc shows them: each one's name (`comm`) and scheduling policy (0 SCHED_OTHER,
 * 5 SCHED_IDLE). Bun names every worker thread "Worker".
 */
import { readdirSync, readFileSync } from "node:fs";
import { schedulingPolicy } from "../../src/lib/thread-priority";

export interface ThreadSeen {
  id: number;
  name: string;
  policy: number;
}

export function threadsOf(pid: number): Promise<ThreadSeen[]> {
  return Promise.all(
    readdirSync(`/proc/${pid}/task`).map(async (tid) => ({
      id: Number(tid),
      name: readFileSync(`/proc/${pid}/task/${tid}/comm`, "utf8").trim(),
      policy: await schedulingPolicy(Number(tid), pid),
    })),
  );
}
