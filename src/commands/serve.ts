import { createApp } from "../app";
import { loadConfig } from "../config";
import { startPublicServer } from "../http/public-server";
import { describeError, log } from "../telemetry/logger";
import { VERSION } from "../version";
import type { Command } from "./command";

function listenError(error: unknown, setting: string, address: string): Error {
  const code = (error as { code?: string }).code;
  const why = code === "EADDRINUSE" ? "address already in use" : error instanceof Error ? error.message : String(error);
  return new Error(`cannot listen on ${address} (${setting}): ${why}`);
}

export const serve: Command = {
  name: "serve",
  usage: "shortener serve [--role primary|standby] [--listen HOST:PORT] [--data-dir DIR] [--base-url URL]",
  summary: "run the server",
  async run(args) {
    const config = loadConfig(args.flags, process.env);
    const ctx = createApp(config);
    let server: ReturnType<typeof startPublicServer>;
    try {
      server = startPublicServer(ctx);
    } catch (error) {
      await ctx[Symbol.asyncDispose]();
      throw listenError(error, "--listen", `${config.listen.hostname}:${config.listen.port}`);
    }
    const flushTimer = setInterval(() => {
      try {
        ctx.visits.flush();
      } catch (error) {
        log.error("visit_flush_failed", { depth: ctx.visits.depth, ...describeError(error) });
      }
    }, config.visitFlushMs);

    log.info("started", {
      version: VERSION,
      role: config.role,
      listen: `${server.hostname}:${server.port}`,
      database: config.databasePath,
    });
    if (ctx.apiKeys.activeCount() === 0) {
      log.warn("no_api_keys", { hint: `create one with: shortener keys create --name admin --data-dir ${config.dataDir}` });
    }

    const stopped = Promise.withResolvers<number>();
    let stopping = false;
    const shutdown = async (signal: string) => {
      if (stopping) {
        log.warn("forced_exit", { signal });
        process.exit(70);
      }
      stopping = true;
      log.info("stopping", { signal });
      // 1. Not ready any more. 2. Stop accepting; let in-flight requests finish (bounded).
      // 3. Flush buffered visits. 4. Close the database.
      ctx.lifecycle.draining = true;
      let timer: Timer | undefined;
      const deadline = new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(true), config.shutdownTimeoutMs);
      });
      const timedOut = await Promise.race([server.stop(false).then(() => false), deadline]);
      clearTimeout(timer);
      if (timedOut) {
        log.warn("shutdown_timeout", { timeout_ms: config.shutdownTimeoutMs });
        await server.stop(true);
      }
      clearInterval(flushTimer);
      const flushed = ctx.visits.depth;
      await ctx[Symbol.asyncDispose]();
      log.info("stopped", { visits_flushed: flushed });
      stopped.resolve(0);
    };
    process.on("SIGTERM", () => void shutdown("SIGTERM"));
    process.on("SIGINT", () => void shutdown("SIGINT"));
    return stopped.promise;
  },
};
