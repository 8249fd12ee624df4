/**
 * A background thread that should run only while the event loop's thread has nothing to do. Linux's SCHED_IDLE
 * policy says exactly that: a thread in it is preempted at once when a normal thread wakes (a request arriving),
 * and needs no privilege to enter. A lower nice value does not do it: the kernel lets the running thread finish
 * its slice first, milliseconds that a request then waits (bench/RESULTS.md, seventeenth session).
 */
import { dlopen, FFIType, ptr } from "bun:ffi";

const SCHED_IDLE = 5;

/**
 * Puts the calling thread (a worker's) in SCHED_IDLE and returns its thread id; null where that is not possible
 * (not Linux, no glibc): the thread then runs at the usual priority, which is correct, only less kind to the loop.
 */
export function runOnlyWhenIdle(): number | null {
  if (process.platform !== "linux") return null;
  try {
    const libc = dlopen("libc.so.6", {
      sched_setscheduler: { args: [FFIType.i32, FFIType.i32, FFIType.ptr], returns: FFIType.i32 },
      gettid: { args: [], returns: FFIType.i32 },
    });
    try {
      // struct sched_param { int sched_priority; }, which must be 0 for SCHED_IDLE; pid 0 is the calling thread.
      if (libc.symbols.sched_setscheduler(0, SCHED_IDLE, ptr(new Int32Array(1))) !== 0) return null;
      return libc.symbols.gettid();
    } finally {
      libc.close();
    }
  } catch {
    return null;
  }
}

/** The scheduling policy of a thread of process `pid` (this one by default), from /proc (SCHED_OTHER 0, SCHED_IDLE 5). */
export async function schedulingPolicy(threadId: number, pid: number | "self" = "self"): Promise<number> {
  const stat = await Bun.file(`/proc/${pid}/task/${threadId}/stat`).text();
  // Field 41 (policy), counted from after the parenthesised command name, which may hold spaces.
  return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[38]);
}
