/**
 * Run pinned to one CPU (taskset) by src/lib/thread-priority.test.ts: a SCHED_IDLE worker calls eventLoopCourtesy
 * while this (the main) thread spins, so waits for the CPU, and then while it sleeps. Prints the steps the worker
 * slept in each case; gives up on an answer after GIVE_UP_MS.
 */
const GIVE_UP_MS = 20_000;

const worker = new Worker(new URL("./courtesy-worker.ts", import.meta.url).href);
const { threadId } = await new Promise<{ threadId: number | null }>((resolve) => {
  worker.onmessage = (event) => resolve(event.data);
});

/** Asks the worker for three courtesies and waits for them: spinning (runnable) or asleep. */
function steps(spin: boolean): number | null {
  const out = new Int32Array(new SharedArrayBuffer(8));
  worker.postMessage(out.buffer);
  const deadline = performance.now() + GIVE_UP_MS;
  if (spin) while (Atomics.load(out, 1) === 0 && performance.now() < deadline) {}
  else Atomics.wait(out, 1, 0, GIVE_UP_MS);
  return Atomics.load(out, 1) === 1 ? Atomics.load(out, 0) : null;
}

const spinning = steps(true);
const asleep = steps(false);
console.log(JSON.stringify({ idle: threadId !== null, spinning, asleep }));
process.exit(0);
