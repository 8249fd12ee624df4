/**
 * Background threads that should run only while the event loop's thread has nothing to do. Linux's SCHED_IDLE
 * policy says nearly that: a thread in it is preempted at once when a normal thread wakes (a request arriving),
 * and needs no privilege to enter. A lower nice value does not do it: the kernel lets the running thread finish
 * its slice first, milliseconds that a request then waits (bench/RESULTS.md, seventeenth session).
 *
 * Nearly: when the event loop's thread has used up its slice (it was busy for a while), the kernel's fair
 * scheduler may pick a runnable SCHED_IDLE thread next and leave it running until the next tick (4 ms at 250 Hz)
 * while the event loop waits. Measured at half capacity on one CPU, the visit writer did that ~4 times a second for
 * ~1.7 ms each (eighteenth session; bench/RESULTS.md says what was tried against it).
 */

import { dlopen, FFIType, ptr } from "bun:ffi";
import { readdirSync, readFileSync } from "node:fs";

const SCHED_IDLE = 5;

/**
 * Threads of the runtime itself that may wait for an idle CPU: Bun's allocator's scavenger, which returns freed
 * pages to the system, and JavaScriptCore's warm-up helper. At the usual priority they held up the event loop's
 * thread for 2-9 ms a second at half capacity, in stretches of up to 4 ms. The JIT compiler's threads stay as
 * they are: at saturation a SCHED_IDLE compiler would leave the hot path in its slowest tiers.
 */
export const RUNTIME_BACKGROUND_THREADS: readonly string[] = ["mi-scavenger", "JSCWarmUp"];

type Libc = ReturnType<typeof openLibc>;
let libc: Libc | null | undefined;

function openLibc() {
  return dlopen("libc.so.6", {
    sched_setscheduler: { args: [FFIType.i32, FFIType.i32, FFIType.ptr], returns: FFIType.i32 },
    gettid: { args: [], returns: FFIType.i32 },
  }).symbols;
}

/** glibc's functions, opened once per thread that asks; null off Linux or without glibc. */
function glibc(): Libc | null {
  if (libc !== undefined) return libc;
  try {
    libc = process.platform === "linux" ? openLibc() : null;
  } catch {
    libc = null;
  }
  return libc;
}

/** Puts thread `threadId` (0: the calling thread) in SCHED_IDLE; false if that is not possible. */
function enterIdle(threadId: number): boolean {
  // struct sched_param { int sched_priority; }, which must be 0 for SCHED_IDLE.
  return glibc()?.sched_setscheduler(threadId, SCHED_IDLE, ptr(new Int32Array(1))) === 0;
}

/**
 * Puts the calling thread (a worker's) in SCHED_IDLE and returns its thread id; null where that is not possible
 * (not Linux, no glibc): the thread then runs at the usual priority, which is correct, only less kind to the loop.
 */
export function runOnlyWhenIdle(): number | null {
  const c = glibc();
  return c !== null && enterIdle(0) ? c.gettid() : null;
}

/** Puts this process's threads with one of `names` in SCHED_IDLE; returns the ids of those it moved. */
export function idleThreadsNamed(names: readonly string[]): number[] {
  if (glibc() === null) return [];
  const moved: number[] = [];
  for (const id of readdirSync("/proc/self/task")) {
    try {
      if (names.includes(readFileSync(`/proc/self/task/${id}/comm`, "utf8").trim()) && enterIdle(Number(id))) moved.push(Number(id));
    } catch {
      // The thread ended meanwhile.
    }
  }
  return moved;
}

/** The scheduling policy of a thread of process `pid` (this one by default), from /proc (SCHED_OTHER 0, SCHED_IDLE 5). */
export async function schedulingPolicy(threadId: number, pid: number | "self" = "self"): Promise<number> {
  const stat = await Bun.file(`/proc/${pid}/task/${threadId}/stat`).text();
  // Field 41 (policy), counted from after the parenthesised command name, which may hold spaces.
  return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[38]);
}
