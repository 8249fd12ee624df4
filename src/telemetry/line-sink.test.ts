import { describe, expect, test } from "bun:test";
import { type DrainableStream, LineSink } from "./line-sink";

/** A stream whose reader stops after `room` bytes, until the test drains it. */
class StalledStream implements DrainableStream {
  written = 0;
  #drain: (() => void) | null = null;
  #error: ((error: Error) => void) | null = null;
  /** What the next writes throw, as Bun's write to a hung-up terminal throws EIO. */
  throws: Error | null = null;

  constructor(private room: number) {}

  write(chunk: Uint8Array | string): boolean {
    if (this.throws !== null) throw this.throws;
    this.written += chunk.length;
    return this.written <= this.room;
  }

  on(_event: "error", listener: (error: Error) => void): unknown {
    this.#error = listener;
    return this;
  }

  /** The stream fails, as Bun reports EPIPE once the reader of a pipe has exited. */
  fail(error: Error): void {
    this.#error?.(error);
  }

  once(_event: "drain", listener: () => void): unknown {
    this.#drain = listener;
    return this;
  }

  /** The reader catches up with everything written. */
  drain(): void {
    this.room = Number.POSITIVE_INFINITY;
    const listener = this.#drain;
    this.#drain = null;
    listener?.();
  }
}

describe("LineSink", () => {
  test("queues at most maxBacklogBytes once the stream is full, drops droppable lines past that, and counts them", () => {
    const stream = new StalledStream(100);
    const drained: [number, number][] = [];
    let now = 0;
    const sink = new LineSink(
      stream,
      1000,
      (lines, ms) => drained.push([lines, ms]),
      undefined,
      () => now,
    );
    const batch = "x".repeat(100);
    // The first two batches fill the stream (the second is taken, and the stream says it is full), ten more fill
    // the backlog, and the rest are dropped: 5 lines each.
    for (let i = 0; i < 20; i++) sink.write(batch, { lines: 5 });
    expect(stream.written).toBe(1200);
    expect(sink.dropped).toBe(8 * 5);
    // Events are queued even then.
    sink.write("event\n");
    expect(stream.written).toBe(1206);
    now = 250;
    stream.drain();
    expect(drained).toEqual([[40, 250]]);
    // Writing resumes; the count stays.
    sink.write(batch, { lines: 5 });
    expect(stream.written).toBe(1306);
    expect(sink.dropped).toBe(40);
  });

  test("drops nothing, and says nothing on drain, while the backlog has room", () => {
    const stream = new StalledStream(0);
    const drained: number[] = [];
    const sink = new LineSink(stream, 10_000, (lines) => drained.push(lines));
    for (let i = 0; i < 50; i++) sink.write("y".repeat(100), { lines: 1 });
    stream.drain();
    expect(sink.dropped).toBe(0);
    expect(stream.written).toBe(5000);
    expect(drained).toEqual([]);
  });

  test.each([
    [
      "emits an error (EPIPE: its reader exited)",
      (stream: StalledStream) => stream.fail(Object.assign(new Error("broken pipe"), { code: "EPIPE" })),
    ],
    [
      "throws from a write (EIO: its terminal hung up)",
      (stream: StalledStream) => {
        stream.throws = Object.assign(new Error("i/o error"), { code: "EIO" });
      },
    ],
  ])("once the stream %s, drops every line without throwing, counts the droppable ones, and says why once", (_how, breakIt) => {
    const stream = new StalledStream(Number.POSITIVE_INFINITY);
    const gone: string[] = [];
    const sink = new LineSink(
      stream,
      10_000,
      () => {},
      (error) => gone.push(error.message),
    );
    sink.write("before\n", { lines: 1 });
    breakIt(stream);
    for (let i = 0; i < 3; i++) {
      expect(() => sink.write("access\n", { lines: 2 })).not.toThrow();
      expect(() => sink.write("event\n")).not.toThrow();
    }
    expect(sink.dropped).toBe(6);
    expect(sink.refuses(1)).toBe(true);
    expect(gone).toHaveLength(1);
    expect(stream.written).toBe("before\n".length);
  });
});
