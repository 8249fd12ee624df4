/** Real Caddy for tests (the pinned build in .tools/bin), and clients that drive load and creates through it. */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { type TestServer, waitFor } from "./binary";
import { shippedFile } from "./shipped-file";
import { ToolProcess } from "./tool-process";
import { toolPath } from "./tools";

/**
 * A shipped Caddyfile as a test runs it: its site on plain HTTP at 127.0.0.1:`port`, its upstream line `upstreams`
 * in place of the one it has, and Caddy's admin API off.
 */
export function testCaddyfile(path: string, port: number, upstreams: readonly [string, string]): string {
  const text = shippedFile(path, [["s.example.com {", `http://127.0.0.1:${port} {`], upstreams]);
  return `{\n\tadmin off\n}\n\n${text}`;
}

/** `caddy run` on a Caddyfile written into `dir`, started and waited on until `port` answers. */
export class CaddyProcess extends ToolProcess {
  constructor(
    readonly dir: string,
    readonly port: number,
  ) {
    super("caddy");
  }

  start(caddyfile: string): Promise<this> {
    const config = join(this.dir, "Caddyfile");
    writeFileSync(config, caddyfile);
    return this.spawn(
      [toolPath("caddy"), "run", "--config", config, "--adapter", "caddyfile"],
      { HOME: this.dir, XDG_CONFIG_HOME: this.dir, XDG_DATA_HOME: this.dir, PATH: process.env.PATH ?? "" },
      async () => {
        await fetch(`http://127.0.0.1:${this.port}/healthz`);
        return true;
      },
    );
  }
}

/** The process prefix of a server's generated request ids (`PREFIX-counter`): which colour answered. */
export async function idPrefix(server: TestServer): Promise<string> {
  const id = (await fetch(`${server.baseUrl}/rest/health`)).headers.get("x-request-id") ?? "";
  const prefix = id.split("-")[0] ?? "";
  if (prefix === "") throw new Error(`no request id from ${server.baseUrl}`);
  return prefix;
}

export interface Answer {
  at: number;
  prefix: string;
}

/** Clients following a link through Caddy in closed loops until stopped: every answer, and every failure. */
export function loadThrough(url: string, clients: number, maxMs: number) {
  const answers: Answer[] = [];
  const failures: string[] = [];
  let stop = false;
  const deadline = Date.now() + maxMs;
  const client = async () => {
    for (let i = 0; !stop && i < 1_000_000 && Date.now() < deadline; i++) {
      try {
        const response = await fetch(url, { redirect: "manual" });
        if (response.status !== 302) failures.push(`HTTP ${response.status}: ${await response.text()}`);
        else answers.push({ at: performance.now(), prefix: (response.headers.get("x-request-id") ?? "").split("-")[0] ?? "" });
      } catch (error) {
        failures.push(String(error));
      }
    }
  };
  const running = Promise.all(Array.from({ length: clients }, client));
  return {
    answers,
    failures,
    /** Waits until `n` answers have come from `prefix` since `since` (performance.now()). */
    async served(prefix: string, n: number, since = 0, timeoutMs = 15_000) {
      await waitFor(
        `${n} answers from ${prefix}`,
        () => answers.filter((a) => a.at >= since && a.prefix === prefix).length >= n,
        timeoutMs,
      );
    },
    async finish() {
      stop = true;
      await running;
    },
  };
}

/** One client creating links through Caddy, one after another, until stopped: the long URLs acknowledged, and failures. */
export function createThrough(base: string, apiKey: string, maxMs: number) {
  const acknowledged: string[] = [];
  const failures: string[] = [];
  let stop = false;
  const deadline = Date.now() + maxMs;
  const running = (async () => {
    for (let i = 0; !stop && i < 100_000 && Date.now() < deadline; i++) {
      const longUrl = `https://example.com/during-the-swap/${i}`;
      try {
        const response = await fetch(`${base}/rest/v3/short-urls`, {
          method: "POST",
          headers: { "X-Api-Key": apiKey, "Content-Type": "application/json" },
          body: JSON.stringify({ longUrl }),
        });
        if (response.status === 200) acknowledged.push(longUrl);
        else failures.push(`HTTP ${response.status}: ${await response.text()}`);
      } catch (error) {
        failures.push(String(error));
      }
    }
  })();
  return {
    acknowledged,
    failures,
    async finish() {
      stop = true;
      await running;
    },
  };
}
