import { expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { tempDir } from "../../test/support/binary";
import { type JobFailure, JobThread } from "./job-thread";

/** A thread of the module `source`, whose answers to "job" end the job under way. */
class Probe extends JobThread<string, string, string> {
  readonly failures: string[] = [];
  starts = 0;

  constructor(private readonly source: string) {
    super("probe thread");
  }

  start(): Promise<void> {
    this.starts++;
    const file = join(tempDir("shortener-job-thread-"), "worker.ts");
    writeFileSync(file, this.source);
    return this.startThread(pathToFileURL(file).href, "start");
  }

  job(): Promise<string | JobFailure> {
    return new Promise((resolve) => {
      this.answer = (answer) => {
        this.answer = null;
        resolve(answer);
      };
      this.post("job");
    });
  }

  protected replied(message: string): void {
    this.answer?.(message);
  }

  protected failed(message: string): void {
    this.failures.push(message);
  }
}

const ANSWERS = `self.onmessage = (event) => {
  if (event.data === "start") postMessage({ op: "started", threadId: null });
  else if (event.data === "stop") postMessage("stopped");
  else if (event.data === "job") postMessage("done");
  else process.exit(3);
};`;

test("a thread answers its jobs, and stops", async () => {
  const thread = new Probe(ANSWERS);
  await thread.start();
  expect(thread.usable).toBe(true);
  expect(await thread.job()).toBe("done");
  await thread.stop();
  expect(thread.usable).toBe(false);
  expect(thread.failures).toEqual([]);
});

test("a module that cannot load fails its start at once, not at the start's timeout, and is not reported failed after", async () => {
  const thread = new Probe(`throw new Error("no such thing");`);
  const started = performance.now();
  // Awaited first: bun's `expect(promise).rejects` does not let a worker's messages in while it waits.
  const error = await thread.start().catch((e: Error) => e);
  expect(error).toBeInstanceOf(Error);
  expect((error as Error).message).toContain("no such thing");
  expect(performance.now() - started).toBeLessThan(5000);
  expect(thread.usable).toBe(false);
  expect(thread.failures).toEqual([]);
});

test("a module that says it could not start fails its start with what it said", async () => {
  const thread = new Probe(`self.onmessage = () => postMessage({ op: "startFailed", message: "the database is gone" });`);
  const error = await thread.start().catch((e: Error) => e);
  expect((error as Error).message).toBe("the probe thread could not start: the database is gone");
  expect(thread.usable).toBe(false);
});

test("a thread that exits during a job ends the job failed, and is reported failed once", async () => {
  const thread = new Probe(ANSWERS.replace(`else if (event.data === "job") postMessage("done");`, ""));
  await thread.start();
  const answer = await thread.job();
  expect(answer).toEqual({ op: "failed", message: "probe thread: its thread exited", code: null });
  expect(thread.usable).toBe(false);
  expect(thread.failures).toEqual(["probe thread: its thread exited"]);
});

test("startOnce starts the thread once for every caller; a stop during that start waits for it", async () => {
  const thread = new Probe(ANSWERS);
  expect(await Promise.all([thread.startOnce(), thread.startOnce()])).toEqual([true, true]);
  expect(thread.starts).toBe(1);
  expect(await thread.job()).toBe("done");
  await thread.stop();
  expect(thread.usable).toBe(false);

  const another = new Probe(ANSWERS);
  const starting = another.startOnce();
  await another.stop();
  expect(await starting).toBe(true);
  expect(another.usable).toBe(false);
  expect(another.failures).toEqual([]);
});

test("a start by startOnce that fails is reported failed once, and every call says the thread is not usable", async () => {
  const thread = new Probe(`self.onmessage = () => postMessage({ op: "startFailed", message: "the database is gone" });`);
  expect(await thread.startOnce()).toBe(false);
  expect(await thread.startOnce()).toBe(false);
  expect(thread.starts).toBe(1);
  expect(thread.failures).toEqual(["the probe thread could not start: the database is gone"]);
});
