/**
 * The last restore drill's result, kept as `drill-last.json` in the data dir: `shortener drill` runs as its own
 * process (a systemd timer), and the server reads the file when /metrics is scraped.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { writeFileAtomic } from "../lib/atomic-file";
import type { DrillStatus } from "../telemetry/metrics";

export const DRILL_RECORD_FILE = "drill-last.json";

export interface DrillRecord {
  /** When the drill finished (ISO 8601). */
  finishedAt: string;
  ok: boolean;
  /** Names of the steps that failed; empty when ok. */
  failed: string[];
  /** How far the restored replica was behind the live database, or null when the drill could not measure it. */
  rpoSeconds: number | null;
  /** How long restoring the latest state took, or null when it did not finish. */
  restoreSeconds: number | null;
  /** When a drill last passed (this one or an earlier one), or null if none ever has. */
  lastSuccessAt: string | null;
}

export function drillRecordPath(dataDir: string): string {
  return join(dataDir, DRILL_RECORD_FILE);
}

const isTime = (value: unknown): value is string => typeof value === "string" && !Number.isNaN(Date.parse(value));
const isSecondsOrNull = (value: unknown) => value === null || (typeof value === "number" && Number.isFinite(value));

/**
 * The recorded result, or null when no drill has run here, or the file cannot be read as one (the metrics then
 * go absent, which the DrillStale alert catches).
 */
export function readDrillRecord(dataDir: string): DrillRecord | null {
  let parsed: Partial<DrillRecord>;
  try {
    parsed = JSON.parse(readFileSync(drillRecordPath(dataDir), "utf8")) as Partial<DrillRecord>;
  } catch {
    return null;
  }
  if (
    parsed === null ||
    typeof parsed !== "object" ||
    !isTime(parsed.finishedAt) ||
    typeof parsed.ok !== "boolean" ||
    !isSecondsOrNull(parsed.rpoSeconds) ||
    !isSecondsOrNull(parsed.restoreSeconds) ||
    !(parsed.lastSuccessAt === null || isTime(parsed.lastSuccessAt))
  ) {
    return null;
  }
  return {
    finishedAt: parsed.finishedAt,
    ok: parsed.ok,
    failed: Array.isArray(parsed.failed) ? parsed.failed.filter((f) => typeof f === "string") : [],
    rpoSeconds: parsed.rpoSeconds ?? null,
    restoreSeconds: parsed.restoreSeconds ?? null,
    lastSuccessAt: parsed.lastSuccessAt ?? null,
  };
}

/** Replaces the record atomically (temp file, fsync, rename), so the server never reads half of one. */
export function writeDrillRecord(dataDir: string, record: DrillRecord): void {
  writeFileAtomic(drillRecordPath(dataDir), `${JSON.stringify(record, null, 2)}\n`);
}

const epochSeconds = (iso: string) => Date.parse(iso) / 1000;

/** The last drill's record of `dataDir` as the metrics report it; null before the first drill. */
export function readDrillStatus(dataDir: string): DrillStatus | null {
  const record = readDrillRecord(dataDir);
  if (record === null) return null;
  return {
    lastRunAt: epochSeconds(record.finishedAt),
    lastSuccessAt: record.lastSuccessAt === null ? null : epochSeconds(record.lastSuccessAt),
    ok: record.ok,
    rpoSeconds: record.rpoSeconds,
    restoreSeconds: record.restoreSeconds,
  };
}
