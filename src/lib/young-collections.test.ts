import { edenGC } from "bun:jsc";
import { describe, expect, test } from "bun:test";
import { startYoungCollections } from "./young-collections";

describe("startYoungCollections", () => {
  test("collects on a timer until stopped", async () => {
    let collections = 0;
    const timer = startYoungCollections(() => collections++, 5);
    const deadline = performance.now() + 5_000;
    while (collections < 3 && performance.now() < deadline) await Bun.sleep(5);
    timer.stop();
    expect(collections).toBeGreaterThanOrEqual(3);
    const stoppedAt = collections;
    await Bun.sleep(50);
    expect(collections).toBe(stoppedAt);
  });

  test("the default collection is JavaScriptCore's young collection, which this runtime provides", () => {
    expect(typeof edenGC).toBe("function");
    // A young collection runs and returns (the eden's size before it, in bytes).
    expect(edenGC()).toBeGreaterThanOrEqual(0);
  });
});
