/**
 * `ops_listen.port`: `serve` must be able to bind the ops listener, unless a running shortener already holds it
 * (then checking a live node is fine). The owner is recognised by its `GET /control/status` answer.
 */
import type { HostPort } from "../../config";
import { type Check, fail, pass } from "./check-result";

const STATUS_TIMEOUT_MS = 2000;

/** Binds host:port without SO_REUSEPORT and releases it; the error code when that fails, else null. */
function bindError(address: HostPort): string | null {
  try {
    const listener = Bun.listen({ hostname: address.hostname, port: address.port, exclusive: true, socket: { data() {} } });
    listener.stop(true);
    return null;
  } catch (error) {
    return (error as { code?: string }).code ?? (error instanceof Error ? error.message : String(error));
  }
}

/** The pid of the shortener answering /control/status on host:port, or null when something else answers. */
async function shortenerPid(address: HostPort): Promise<number | null> {
  const host = address.hostname === "0.0.0.0" ? "127.0.0.1" : address.hostname === "::" ? "::1" : address.hostname;
  const url = `http://${host.includes(":") ? `[${host}]` : host}:${address.port}/control/status`;
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(STATUS_TIMEOUT_MS), redirect: "manual" });
    if (!response.ok) return null;
    const status = (await response.json()) as { service?: unknown; pid?: unknown };
    return status.service === "shortener" && typeof status.pid === "number" ? status.pid : null;
  } catch {
    return null;
  }
}

export function opsPortCheck(address: HostPort): Check {
  const name = "ops_listen.port";
  const where = `${address.hostname}:${address.port}`;
  return {
    name,
    async run() {
      const error = bindError(address);
      if (error === null) return pass(name, `${where} is free`);
      if (error !== "EADDRINUSE") {
        return fail(name, `cannot bind ${where}: ${error}`, "set --ops-listen to a loopback address and port this user may bind");
      }
      const pid = await shortenerPid(address);
      if (pid !== null) return pass(name, `${where} is owned by a running shortener (pid ${pid})`);
      return fail(
        name,
        `${where} is in use by something else`,
        `stop what holds it (ss -ltnp 'sport = :${address.port}') or set --ops-listen to a free port`,
      );
    },
  };
}
