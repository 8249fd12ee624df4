import type { Command } from "../commands/command";
import { longestDrainMs } from "../commands/drain-sequence";
import { loadConfig } from "../config";
import { UsageError } from "../errors";
import { parseDuration } from "../lib/duration";

export const drain: Command = {
  name: "drain",
  usage: "shortener drain [--timeout DURATION (default: the longest the node's drain can take + 10s)] [--ops-listen HOST:PORT]",
  summary: "tell the running server to drain; returns when it has drained (readiness off, in-flight done, visits written)",
  options: ["timeout"],
  async run(args) {
    const config = loadConfig(args.flags, process.env);
    // By default wait as long as the node's drain can take (grace, in-flight bound, final flush, disposal), and a margin.
    const rawTimeout = args.flags.get("timeout") ?? `${Math.ceil(longestDrainMs(config) / 1000) + 10}s`;
    const timeoutMs = rawTimeout === true ? null : parseDuration(rawTimeout);
    if (timeoutMs === null || timeoutMs <= 0) throw new UsageError(`--timeout "${String(rawTimeout)}" is not a duration like 30s`);
    const address = `${config.opsListen.hostname}:${config.opsListen.port}`;
    const started = performance.now();
    let response: Response;
    try {
      response = await fetch(`http://${address}/control/drain`, { method: "POST", signal: AbortSignal.timeout(timeoutMs) });
    } catch (error) {
      if ((error as Error).name === "TimeoutError") {
        throw new Error(
          `the server at ${address} did not finish draining within ${rawTimeout}. Try: a longer --timeout, or see runbooks/draining-a-node.md`,
        );
      }
      throw new Error(
        `no shortener answers on ${address} (--ops-listen): ${(error as Error).message}. Try: check the node's --ops-listen, or systemctl status`,
      );
    }
    if (!response.ok) throw new Error(`the server at ${address} refused to drain: HTTP ${response.status} ${await response.text()}`);
    const result = (await response.json()) as { visitsFlushed: number };
    console.log(`drained in ${((performance.now() - started) / 1000).toFixed(1)}s; ${result.visitsFlushed} buffered visits written`);
    return 0;
  },
};
