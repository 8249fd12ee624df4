import { describe, expect, test } from "bun:test";
import { AppError } from "../errors";
import { ReplicationLag } from "./replication-lag";

/** A clock moved by hand, and a Litestream answer set by hand (a Date, null, or an error for "unreachable"). */
function setup(maxLagMs = 3000) {
  const clock = { now: 1_000_000 };
  const source: { answer: Date | null | Error } = { answer: null };
  const lag = new ReplicationLag(
    async () => {
      if (source.answer instanceof Error) throw source.answer;
      return source.answer;
    },
    maxLagMs,
    () => clock.now,
  );
  return { clock, source, lag };
}

describe("ReplicationLag", () => {
  test("lag is the time since Litestream's last upload, and writes pass within the maximum", async () => {
    const { clock, source, lag } = setup();
    source.answer = new Date(clock.now + 500);
    clock.now += 2500;
    await lag.poll();
    expect(lag.status()).toEqual({ lagSeconds: 2, maxLagSeconds: 3, ok: true });
    expect(() => lag.assertWritable()).not.toThrow();
  });

  test("past the maximum, writes are refused with a 503 replication-lagging problem and Retry-After", async () => {
    const { clock, source, lag } = setup();
    source.answer = new Date(clock.now);
    await lag.poll();
    clock.now += 3100;
    expect(lag.status().ok).toBe(false);
    let refusal: unknown;
    try {
      lag.assertWritable();
    } catch (error) {
      refusal = error;
    }
    expect(refusal).toBeInstanceOf(AppError);
    const problem = refusal as AppError;
    expect([problem.status, problem.code, problem.headers["Retry-After"]]).toEqual([503, "replication-lagging", "5"]);
    expect(problem.extras).toEqual({ lagSeconds: 3.1, maxLagSeconds: 3 });
  });

  test("an unreachable Litestream or no upload yet keeps the last good reading, so the lag keeps growing", async () => {
    const { clock, source, lag } = setup();
    source.answer = new Date(clock.now);
    await lag.poll();
    source.answer = new Error("connect ENOENT /run/litestream/litestream.sock");
    clock.now += 2000;
    await lag.poll();
    expect(lag.lagSeconds()).toBe(2);
    source.answer = null;
    clock.now += 2000;
    await lag.poll();
    expect(lag.lagSeconds()).toBe(4);
  });

  test("before any upload the lag counts from the start, never from an older upload", async () => {
    const { clock, source, lag } = setup();
    clock.now += 1000;
    expect(lag.lagSeconds()).toBe(1);
    source.answer = new Date(clock.now - 60_000);
    await lag.poll();
    expect(lag.lagSeconds()).toBe(1);
  });
});
