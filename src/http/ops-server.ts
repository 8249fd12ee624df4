/**
 * The loopback ops listener: GET /metrics, POST /control/drain, GET /control/status. Never routed from the
 * public listener.
 */
import type { Server } from "bun";
import { COMMIT, VERSION } from "../version";
import type { HttpDeps } from "./deps";
import { jsonResponse } from "./json-response";

export interface OpsControl {
  /** Starts draining (once) and resolves when the node is drained. */
  drain(reason: string): Promise<{ visitsFlushed: number }>;
  startedAt: number;
}

export function startOpsServer(ctx: HttpDeps, control: OpsControl): Server<undefined> {
  const status = () =>
    jsonResponse({
      service: "shortener",
      version: VERSION,
      commit: COMMIT,
      role: ctx.config.role,
      draining: ctx.lifecycle.draining,
      pid: process.pid,
      dataDir: ctx.config.dataDir,
      uptimeSeconds: Math.round((Date.now() - control.startedAt) / 1000),
    });
  return Bun.serve({
    hostname: ctx.config.opsListen.hostname,
    port: ctx.config.opsListen.port,
    reusePort: false,
    development: false,
    routes: {
      "/metrics": {
        GET: async () => new Response(await ctx.metrics.scrape(), { headers: { "Content-Type": ctx.metrics.contentType } }),
      },
      "/control/status": { GET: status },
      "/control/drain": {
        POST: async () => {
          const result = await control.drain("drain request");
          return jsonResponse({ status: "drained", visitsFlushed: result.visitsFlushed });
        },
      },
    },
    fetch: () => jsonResponse({ error: "not found" }, { status: 404 }),
  });
}
