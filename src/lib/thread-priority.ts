/**
 * Background threads that should run only while the event loop's thread has nothing to do. Linux's SCHED_IDLE
 * policy says nearly that: a thread in it is preempted at once when a normal thread wakes (a request arriving),
 * and needs no privilege to enter. A lower nice value does not do it: the kernel lets the running thread finish
 * its slice first, milliseconds that a request then waits (bench/RESULTS.md, seventeenth session).
 *
 * Nearly: when the event loop's thread has used up its slice (it was busy for a while), the kernel's fair
 * scheduler may pick a runnable SCHED_IDLE thread next and leave it running until the next tick (4 ms at 250 Hz)
 * while the event loop waits. Measured at half capacity on one CPU, the visit writer did that ~4 times a second for
 * ~1.7 ms each (eighteenth session). A worker that can stop between small pieces of work asks `eventLoopCourtesy`.
 */

import { dlopen, FFIType, ptr } from "bun:ffi";
import { openSync, readdirSync, readFileSync, readSync } from "node:fs";

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
    sched_getcpu: { args: [], returns: FFIType.i32 },
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

/** How long one courteous sleep lasts, and how many one piece of work (a chunk) may take in all. */
const COURTESY_STEP_MS = 0.1;
const COURTESY_STEPS_PER_PIECE = 30;

export interface EventLoopCourtesy {
  /** Called between small pieces of work; returns the steps it slept. */
  pause(): number;
  /** A new piece of work begins: its budget of steps is whole again. */
  refill(): void;
}

/**
 * For a SCHED_IDLE worker, called between small pieces of its work: while the process's main thread (the event
 * loop's) is runnable on this worker's CPU, that is waiting for it, sleeps in steps of COURTESY_STEP_MS, so the
 * loop runs at once and the worker only when it sleeps again. A sleeping worker's wake-up never preempts it. The
 * main thread running on another CPU is not waiting: the worker goes on beside it. At most
 * COURTESY_STEPS_PER_PIECE steps per piece of work: on a machine where other processes keep the CPUs busy the
 * main thread is often runnable, and a writer stepping aside without end let visits wait in memory past the flush
 * interval (what a kill -9 may lose). Null where /proc or glibc is missing.
 */
export function eventLoopCourtesy(): EventLoopCourtesy | null {
  const c = glibc();
  if (c === null) return null;
  let fd: number;
  try {
    // The main thread's id is the process id.
    fd = openSync(`/proc/self/task/${process.pid}/stat`, "r");
  } catch {
    return null;
  }
  const buffer = Buffer.alloc(1024);
  const sleeper = new Int32Array(new SharedArrayBuffer(4));
  const waiting = (): boolean => {
    const stat = buffer.toString("latin1", 0, readSync(fd, buffer, 0, buffer.length, 0));
    // Fields after the parenthesised command name: state first, the CPU it is queued on 37th (proc(5): 3 and 39).
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ", 37);
    return fields[0] === "R" && Number(fields[36]) === c.sched_getcpu();
  };
  let left = COURTESY_STEPS_PER_PIECE;
  return {
    pause() {
      let steps = 0;
      while (left > 0 && waiting()) {
        Atomics.wait(sleeper, 0, 0, COURTESY_STEP_MS);
        steps++;
        left--;
      }
      return steps;
    },
    refill() {
      left = COURTESY_STEPS_PER_PIECE;
    },
  };
}

/** The scheduling policy of a thread of process `pid` (this one by default), from /proc (SCHED_OTHER 0, SCHED_IDLE 5). */
export async function schedulingPolicy(threadId: number, pid: number | "self" = "self"): Promise<number> {
  const stat = await Bun.file(`/proc/${pid}/task/${threadId}/stat`).text();
  // Field 41 (policy), counted from after the parenthesised command name, which may hold spaces.
  return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[38]);
}
