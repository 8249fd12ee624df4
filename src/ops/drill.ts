/**
 * `shortener drill`: a restore drill (drill/drill-procedure.ts) on this node. Prints one line per step (or the
 * whole report with --json), records the result in the data dir for the server's /metrics (drill-last.json), and
 * exits 0 only if every step passed, else 1. An interrupted drill (SIGINT, SIGTERM) records nothing.
 */
import type { Command } from "../commands/command";
import { loadConfig } from "../config";
import { readDrillRecord, writeDrillRecord } from "../storage/drill-record";
import { withReplicaEpoch } from "../storage/replica-epoch";
import { fail } from "./checks/check-result";
import { type DrillReport, runDrill } from "./drill/drill-procedure";

function record(report: DrillReport, dataDir: string): void {
  const previous = readDrillRecord(dataDir);
  try {
    writeDrillRecord(dataDir, {
      finishedAt: report.finishedAt,
      ok: report.ok,
      failed: report.steps.filter((s) => !s.ok).map((s) => s.name),
      rpoSeconds: report.rpoSeconds,
      restoreSeconds: report.restoreSeconds,
      lastSuccessAt: report.ok ? report.finishedAt : (previous?.lastSuccessAt ?? null),
    });
  } catch (error) {
    report.steps.push(
      fail(
        "record",
        `cannot write the result to ${dataDir}: ${error instanceof Error ? error.message : String(error)}`,
        "run the drill as the service user, which owns the data dir; until it records, /metrics cannot report it",
      ),
    );
    report.ok = false;
  }
}

function print(report: DrillReport, json: boolean): void {
  if (json) {
    process.stdout.write(`${JSON.stringify(report)}\n`);
    return;
  }
  const width = Math.max(...report.steps.map((s) => s.name.length));
  for (const s of report.steps) {
    const hint = s.hint === undefined ? "" : `  (hint: ${s.hint})`;
    process.stdout.write(`${s.ok ? "ok  " : "FAIL"} ${s.name.padEnd(width)}  ${s.detail}${hint}\n`);
  }
  const failed = report.steps.filter((s) => !s.ok).map((s) => s.name);
  const rpo = report.rpoSeconds === null ? "not measured" : `${report.rpoSeconds} s`;
  const restore = report.restoreSeconds === null ? "did not finish" : `${report.restoreSeconds} s`;
  const summary = `RPO ${rpo} (max ${report.maxRpoSeconds} s), restore of the latest state ${restore}`;
  if (report.interrupted) process.stdout.write(`drill interrupted; nothing recorded. ${summary}\n`);
  else if (report.ok) process.stdout.write(`drill passed: ${summary}\n`);
  else process.stdout.write(`drill FAILED (${failed.join(", ")}): ${summary}\n`);
}

export const drill: Command = {
  name: "drill",
  usage: "shortener drill [--json] [--data-dir DIR] [--litestream-config FILE] [--drill-max-rpo 60s] [--drill-timeout 10m]",
  summary:
    "restore drill: restore the latest state and a past point into a temp dir, check them against the live database; exit 0 only if it passes",
  booleans: ["json"],
  async run(args) {
    const json = args.flags.has("json");
    const config = loadConfig(args.flags, process.env);
    const interrupt = new AbortController();
    const onSignal = () => interrupt.abort();
    process.on("SIGINT", onSignal);
    process.on("SIGTERM", onSignal);
    let report: DrillReport;
    try {
      report = await runDrill({ config, env: withReplicaEpoch(config.dataDir, process.env), signal: interrupt.signal });
    } finally {
      process.off("SIGINT", onSignal);
      process.off("SIGTERM", onSignal);
    }
    if (!report.interrupted) record(report, config.dataDir);
    print(report, json);
    return report.ok ? 0 : 1;
  },
};
