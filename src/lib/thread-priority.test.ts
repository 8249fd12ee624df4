import { describe, expect, test } from "bun:test";
import { resolve } from "node:path";

describe("eventLoopCourtesy", () => {
  test("a SCHED_IDLE worker sleeps while the main thread waits for its CPU (within a budget), and not while it sleeps", async () => {
    // On one CPU the kernel may run the idle worker when the busy main thread's slice ends; the courtesy hands the CPU back.
    const fixture = resolve(import.meta.dir, "../../test/support/courtesy.ts");
    const proc = Bun.spawn(["taskset", "-c", "0", process.execPath, fixture], { stdout: "pipe", stderr: "pipe" });
    const timer = setTimeout(() => proc.kill("SIGKILL"), 60_000);
    const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
    clearTimeout(timer);
    expect({ code, err }).toEqual({ code: 0, err: "" });
    const result = JSON.parse(out) as { idle: boolean; spinning: number | null; asleep: number | null };
    expect(result.idle).toBe(true);
    // While this thread spun, steps until the piece of work's budget (30) was spent; none while it slept.
    expect(result.spinning).toBe(30);
    expect(result.asleep).toBe(0);
  }, 70_000);
});
