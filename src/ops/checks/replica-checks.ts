/**
 * With --replication litestream, what the node's replication needs (DESIGN.md, `shortener check`):
 *
 * - `litestream.config`: the config serve reads lists this database and has a control socket;
 * - `litestream.binary`: the `litestream` that restore and drill run is on PATH and not older than v0.5.18 (older
 *   builds bundle an SQLite with the WAL-reset bug, as `sqlite.version` says of our own);
 * - `replica.sync`: Litestream is running and the replica confirms it holds every transaction of the database (its
 *   sync-and-wait, as `--durability replicated` uses it): the replica is reachable and not behind. Not on a standby,
 *   whose Litestream follows the replica instead of writing it (standby-checks.ts looks at that);
 * - `clock`: this host's clock agrees with the replica's S3 server (its `Date` header) within a minute. S3 refuses
 *   requests signed 15 minutes off, webhook receivers refuse signatures 5 minutes off, and visit times and
 *   `restore --at` go by this clock.
 *
 * The last two need the first: they are left out when the config cannot be read.
 */
import { resolve } from "node:path";
import type { Config } from "../../config";
import { LitestreamClient, LitestreamUnavailable } from "../../storage/litestream-client";
import { controlSocketIn, LitestreamConfigError, readLitestreamConfig } from "../../storage/litestream-config";
import { type Check, type CheckResult, fail, pass } from "./check-result";

/** How long `replica.sync` waits for the replica to confirm. */
const SYNC_TIMEOUT_SECONDS = 10;
const VERSION_TIMEOUT_MS = 5000;
const CLOCK_TIMEOUT_MS = 5000;
/** The largest clock difference `clock` accepts. */
const MAX_CLOCK_SKEW_MS = 60_000;
/** The oldest Litestream whose bundled SQLite has the WAL-reset fix (litestream.yml says why). */
const MIN_LITESTREAM: readonly number[] = [0, 5, 18];

type Env = Record<string, string | undefined>;

const syncHint = (file: string) =>
  `Litestream cannot upload to the replica: sudo journalctl -u litestream -n 50 (endpoint, credentials, bucket in ${file}); runbooks/replication-lag.md`;

/** The checks, in order; `litestream.config`'s failure leaves out the two that need it. */
export function replicaChecks(config: Readonly<Config>, env: Env): Check[] {
  const file = config.litestreamConfig;
  let socketPath: string;
  let endpoint: string | null;
  let needs: string[];
  try {
    const litestream = readLitestreamConfig(file, env);
    socketPath = controlSocketIn(litestream, config.databasePath);
    endpoint = litestream.endpoints.get(resolve(config.databasePath)) ?? null;
    needs = litestream.endpointNeeds.get(resolve(config.databasePath)) ?? [];
  } catch (error) {
    if (!(error instanceof LitestreamConfigError)) throw error;
    const [detail, hint] = error.message.split(". Try: ");
    const failed: Check = {
      name: "litestream.config",
      run: async () => fail("litestream.config", detail ?? error.message, hint ?? `fix ${file} (see litestream.yml in the repository)`),
    };
    return [failed, binaryCheck(env)];
  }
  const unset = needs.map((name) => `$${name}`).join(", ");
  const where =
    endpoint !== null
      ? `a replica at ${endpoint}`
      : needs.length > 0
        ? `a replica at a server named by ${unset}`
        : "a replica on no server";
  // Litestream reads its variables from its own env file, which this shell may lack: then say so, rather than
  // compare with a server the config does not name.
  const notCompared: Check = {
    name: "clock",
    run: async () =>
      pass("clock", `not compared: the replica's server is named by ${unset}, unset here (load /etc/litestream.env to compare)`),
  };
  return [
    {
      name: "litestream.config",
      run: async () => pass("litestream.config", `${file}: ${config.databasePath} to ${where}, socket ${socketPath}`),
    },
    binaryCheck(env),
    ...(config.role === "primary" ? [syncCheck(new LitestreamClient(socketPath, config.databasePath), file)] : []),
    ...(endpoint !== null ? [clockCheck(endpoint)] : needs.length > 0 ? [notCompared] : []),
  ];
}

/** [major, minor, patch] of a `vX.Y.Z` version line, or null for a build that says no version. */
function parseVersion(text: string): number[] | null {
  const match = /v?(\d+)\.(\d+)\.(\d+)/.exec(text);
  return match === null ? null : match.slice(1, 4).map(Number);
}

function olderThan(version: readonly number[], min: readonly number[]): boolean {
  for (let i = 0; i < min.length; i++) {
    if ((version[i] ?? 0) !== (min[i] ?? 0)) return (version[i] ?? 0) < (min[i] ?? 0);
  }
  return false;
}

function binaryCheck(env: Env): Check {
  const name = "litestream.binary";
  const install = `install Litestream v${MIN_LITESTREAM.join(".")} or later as /usr/local/bin/litestream (restore and drill run it)`;
  return {
    name,
    async run(): Promise<CheckResult> {
      const path = Bun.which("litestream", { PATH: env.PATH ?? "" });
      if (path === null) return fail(name, "litestream is not on PATH", install);
      const proc = Bun.spawn([path, "version"], { env, stdin: "ignore", stdout: "pipe", stderr: "pipe" });
      const timer = setTimeout(() => proc.kill("SIGKILL"), VERSION_TIMEOUT_MS);
      const [stdout, exitCode] = await Promise.all([new Response(proc.stdout).text(), proc.exited]).finally(() => clearTimeout(timer));
      const said = stdout.trim();
      if (exitCode !== 0) return fail(name, `${path} version exited ${exitCode}`, install);
      const version = parseVersion(said);
      if (version !== null && olderThan(version, MIN_LITESTREAM)) {
        return fail(name, `${path} is ${said}, which bundles an SQLite with the WAL-reset bug`, install);
      }
      return pass(name, `${path} ${said || "(no version)"}`);
    },
  };
}

function syncCheck(client: LitestreamClient, file: string): Check {
  const name = "replica.sync";
  return {
    name,
    async run(): Promise<CheckResult> {
      const started = performance.now();
      try {
        const result = await client.syncAndWait(SYNC_TIMEOUT_SECONDS);
        const ms = Math.round(performance.now() - started);
        return pass(name, `the replica holds every transaction (txid ${result.txid}), confirmed in ${ms} ms`);
      } catch (error) {
        if (!(error instanceof LitestreamUnavailable)) throw error;
        if (!error.answered) {
          return fail(
            name,
            error.message,
            `Litestream is not running, its socket is not where ${file} says, or this user may not use it (run check as the service user): sudo systemctl status litestream`,
          );
        }
        return fail(name, `no confirmation within ${SYNC_TIMEOUT_SECONDS} s: ${error.message}`, syncHint(file));
      }
    },
  };
}

function clockCheck(endpoint: string): Check {
  const name = "clock";
  return {
    name,
    async run(): Promise<CheckResult> {
      const sent = Date.now();
      let header: string | null;
      try {
        const response = await fetch(endpoint, { method: "HEAD", redirect: "manual", signal: AbortSignal.timeout(CLOCK_TIMEOUT_MS) });
        header = response.headers.get("date");
      } catch (error) {
        return fail(
          name,
          `cannot read the time of ${endpoint}: ${(error as Error).message}`,
          "see replica.sync: the replica's server must answer",
        );
      }
      const received = Date.now();
      const theirs = header === null ? Number.NaN : Date.parse(header);
      if (Number.isNaN(theirs)) return fail(name, `${endpoint} sent no Date header to compare with`, "see replica.sync");
      // The header has whole seconds: its instant is, on average, half a second after what it says.
      const skewMs = Math.round(theirs + 500 - (sent + received) / 2);
      const detail = `${Math.abs(skewMs / 1000).toFixed(1)} s ${skewMs > 0 ? "behind" : "ahead of"} ${endpoint}`;
      if (Math.abs(skewMs) > MAX_CLOCK_SKEW_MS) {
        return fail(
          name,
          detail,
          `turn on time sync (timedatectl set-ntp true; timedatectl timesync-status): S3 refuses requests signed 15 minutes off, and visit times and restore --at go by this clock`,
        );
      }
      return pass(name, detail);
    },
  };
}
