/** The worker of test/support/courtesy.ts: in SCHED_IDLE, calls eventLoopCourtesy three times per request. */
import { eventLoopCourtesy, runOnlyWhenIdle } from "../../src/lib/thread-priority";

declare const self: Worker;

const threadId = runOnlyWhenIdle();
const courtesy = eventLoopCourtesy();
self.onmessage = (event: MessageEvent<SharedArrayBuffer>) => {
  // Slot 0: the steps slept; slot 1: 1 once done.
  const out = new Int32Array(event.data);
  let steps = 0;
  courtesy?.refill();
  for (let i = 0; i < 3; i++) steps += courtesy?.pause() ?? Number.NaN;
  Atomics.store(out, 0, steps);
  Atomics.store(out, 1, 1);
  Atomics.notify(out, 1);
};
postMessage({ threadId });
