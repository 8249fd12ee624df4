/** A pinned external tool run by a test (Caddy, Litestream): its output kept, stopped by signal with a deadline. */
import type { Subprocess } from "bun";
import { collectText, waitFor } from "./binary";

export class ToolProcess implements AsyncDisposable {
  proc: Subprocess<"ignore", "pipe", "pipe"> | null = null;
  /** Everything it wrote, stdout and stderr, as it came. */
  output = "";

  constructor(readonly name: string) {}

  /** Starts `command`; `ready`, if given, is polled until true (the process exiting first fails it). */
  async spawn(command: string[], env: Record<string, string>, ready?: () => Promise<boolean>): Promise<this> {
    this.proc = Bun.spawn(command, { env, stdin: "ignore", stdout: "pipe", stderr: "pipe" });
    for (const stream of [this.proc.stdout, this.proc.stderr]) {
      void collectText(stream, (text) => {
        this.output += text;
      });
    }
    if (ready === undefined) return this;
    await waitFor(`${this.name} to be ready`, async () => {
      if (this.proc?.exitCode !== null) throw new Error(`${this.name} exited (${this.proc?.exitCode}): ${this.output}`);
      try {
        return await ready();
      } catch {
        return false;
      }
    });
    return this;
  }

  /** Sends `signal` and waits for the exit code, SIGKILL after the deadline. */
  async stop(signal: NodeJS.Signals = "SIGTERM", timeoutMs = 20_000): Promise<number> {
    const proc = this.proc;
    if (proc === null || proc.exitCode !== null) return proc?.exitCode ?? 0;
    proc.kill(signal);
    const timer = setTimeout(() => proc.kill("SIGKILL"), timeoutMs);
    const code = await proc.exited;
    clearTimeout(timer);
    return code;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }
}
