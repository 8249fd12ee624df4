import { describe, expect, test } from "bun:test";
import { coalesced } from "./coalesced";

/** A task whose runs are counted and finished by hand. */
function manualTask() {
  const runs: PromiseWithResolvers<void>[] = [];
  const task = () => {
    const run = Promise.withResolvers<void>();
    runs.push(run);
    return run.promise;
  };
  return { runs, task };
}

describe("coalesced", () => {
  test("callers during a run share one next run that starts after the current one ends", async () => {
    const { runs, task } = manualTask();
    const call = coalesced(task);
    const first = call();
    await Bun.sleep(0);
    const later = [call(), call(), call()];
    await Bun.sleep(0);
    expect(runs.length).toBe(1);
    runs[0]?.resolve();
    await first;
    await Bun.sleep(0);
    expect(runs.length).toBe(2);
    runs[1]?.resolve();
    await Promise.all(later);
    expect(runs.length).toBe(2);
  });

  test("a failed run rejects its callers only; the next run serves the callers queued behind it", async () => {
    const { runs, task } = manualTask();
    const call = coalesced(task);
    const first = call();
    await Bun.sleep(0);
    const second = call();
    runs[0]?.reject(new Error("upload failed"));
    await expect(first).rejects.toThrow("upload failed");
    await Bun.sleep(0);
    runs[1]?.resolve();
    await second;
    expect(runs.length).toBe(2);
  });

  test("a call after every run has ended starts a new run", async () => {
    const { runs, task } = manualTask();
    const call = coalesced(task);
    const first = call();
    await Bun.sleep(0);
    runs[0]?.resolve();
    await first;
    await Bun.sleep(0);
    const second = call();
    await Bun.sleep(0);
    expect(runs.length).toBe(2);
    runs[1]?.resolve();
    await second;
  });
});
