/**
 * What another process holding the database's write lock costs redirects: Litestream takes it at each checkpoint for
 * milliseconds, the other colour holds it for a whole migration. See bench/RESULTS.md.
 * Seeds LINKS links (bench/lib/seed.ts), starts the binary, follows the hot set once, then runs paced hot-set load
 * (bench/paced-load.ts: 90 % of requests to 1 000 codes) at RATE in alternating rounds on the same server: without
 * the lock, and while a second process (this script run with --hold) takes BEGIN IMMEDIATE for HOLD_MS in every
 * HOLD_MS + FREE_MS. Prints each round's p99 from due time and on the wire, the server's CPU, and the medians' ratio
 * (with the lock ÷ without). Server on SERVER_CPU; the load client and the lock holder on CLIENT_CPU.
 * Usage: bun bench/foreign-lock.ts [--rate 20000] [--hold-ms 3000] [--free-ms 500] [--rounds 3] [--seconds 12]
 */
import { Database } from "bun:sqlite";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { loadAverage } from "./lib/cpu";
import { type PacedResult, runPaced } from "./lib/paced";
import { runWithCleanup, spawn, stop } from "./lib/processes";
import { seededServer } from "./lib/seed";
import { stopServer } from "./lib/servers";
import { median } from "./lib/stats";
import type { Workload } from "./lib/wrk";

const { values } = parseArgs({
  options: {
    hold: { type: "string" },
    rate: { type: "string", default: "20000" },
    "hold-ms": { type: "string", default: "3000" },
    "free-ms": { type: "string", default: "500" },
    rounds: { type: "string", default: "3" },
    seconds: { type: "string", default: "12" },
    links: { type: "string", default: "100000" },
  },
});
const HOLD_MS = Number(values["hold-ms"]);
const FREE_MS = Number(values["free-ms"]);
const SERVER_CPU = Number(process.env.SERVER_CPU ?? 0);
const CLIENT_CPU = Number(process.env.CLIENT_CPU ?? 1);

/** The lock holder: BEGIN IMMEDIATE for HOLD_MS, COMMIT, FREE_MS free, until killed. */
async function hold(path: string): Promise<never> {
  const db = new Database(path);
  db.exec("PRAGMA busy_timeout = 5000");
  for (;;) {
    db.exec("BEGIN IMMEDIATE");
    Bun.sleepSync(HOLD_MS);
    db.exec("COMMIT");
    await Bun.sleep(FREE_MS);
  }
}

async function main(): Promise<void> {
  const rate = Number(values.rate);
  const rounds = Number(values.rounds);
  const seconds = Number(values.seconds);
  const { work, codesFile, dataDir, server } = await seededServer("foreign-lock-", Number(values.links), SERVER_CPU, 1000);
  const workload: Workload = { name: "hot", codesFile, hotCount: 1000, hotShare: 0.9 };
  console.log(
    `foreign lock: ${rate} req/s hot set for ${seconds} s a round, the lock held ${HOLD_MS} ms in every ${HOLD_MS + FREE_MS} ms ` +
      `(load average ${loadAverage().toFixed(2)})`,
  );
  const p99 = { without: [] as number[], with: [] as number[] };
  const show = (label: string, r: PacedResult) =>
    console.log(
      `  ${label.padEnd(12)} p99 from due ${r.fromDueMs.p99?.toFixed(2) ?? "∞"} ms, on the wire ${r.onWireMs.p99?.toFixed(2) ?? "∞"} ms, ` +
        `p99.9 from due ${r.fromDueMs.p999?.toFixed(2) ?? "∞"} ms, server CPU ${(r.cpu.server * 100).toFixed(0)} %, achieved ${Math.round(r.achieved)}/s`,
    );
  for (let round = 1; round <= rounds; round++) {
    const plain = await runPaced(server, workload, { rate, seconds, serverCpu: SERVER_CPU, clientCpu: CLIENT_CPU });
    show("without", plain);
    p99.without.push(plain.fromDueMs.p99 ?? Number.POSITIVE_INFINITY);
    const holder = spawn([process.execPath, import.meta.path, "--hold", join(dataDir, "shortener.db"), ...holdArgs()], {
      cpu: CLIENT_CPU,
      logFile: join(work, "holder.log"),
    });
    try {
      const locked = await runPaced(server, workload, { rate, seconds, serverCpu: SERVER_CPU, clientCpu: CLIENT_CPU });
      show("with a lock", locked);
      p99.with.push(locked.fromDueMs.p99 ?? Number.POSITIVE_INFINITY);
    } finally {
      await stop(holder, "SIGKILL");
    }
  }
  await stopServer(server);
  const [without, withLock] = [median(p99.without), median(p99.with)];
  console.log(
    `p99 from due, median of ${rounds}: ${without.toFixed(2)} ms without, ${withLock.toFixed(2)} ms with the lock (÷ ${(withLock / without).toFixed(2)})`,
  );
}

function holdArgs(): string[] {
  return ["--hold-ms", String(HOLD_MS), "--free-ms", String(FREE_MS)];
}

if (values.hold !== undefined) await hold(values.hold);
else await runWithCleanup(main);
