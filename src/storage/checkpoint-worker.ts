/**
 * The background checkpointer's thread (see checkpointer.ts): its own connection to the database, running a
 * PASSIVE checkpoint when asked ("now", after the visit flush's writes) and otherwise an interval after the last one
 * (here, or elsewhere: "later"), so that copying WAL pages into the database file and its fsync never run on the
 * thread that serves redirects. PASSIVE never waits for readers or writers; it is the only kind the app runs.
 */
import { Database } from "bun:sqlite";

declare const self: Worker;

export interface CheckpointStart {
  path: string;
  /** A checkpoint runs this long after the previous one, unless asked for sooner. */
  intervalMs: number;
}

/** What one checkpoint did: WAL frames in the log, frames now in the database, and how long it took. */
export interface CheckpointResult {
  log: number;
  checkpointed: number;
  busy: number;
  seconds: number;
}

let db: Database | null = null;
let timer: Timer | undefined;
let intervalMs = 1000;
let lastLog = -1;

/** Runs a checkpoint now, and the next one an interval later unless asked for sooner. */
function checkpointNow(report: boolean): void {
  clearTimeout(timer);
  checkpoint(report);
  if (db !== null) timer = setTimeout(() => checkpointNow(false), intervalMs);
}

/** One checkpoint; its result is posted when asked for (`report`) or when it found something new. */
function checkpoint(report: boolean): void {
  if (db === null) return;
  const started = performance.now();
  try {
    const row = db.query("PRAGMA wal_checkpoint(PASSIVE)").get() as { busy: number; log: number; checkpointed: number };
    // An idle WAL (nothing new since the last run) is not worth a message.
    if (!report && row.log === lastLog && row.log === row.checkpointed) return;
    lastLog = row.log;
    postMessage({ ...row, seconds: (performance.now() - started) / 1000 } satisfies CheckpointResult);
  } catch (error) {
    postMessage({ error: error instanceof Error ? error.message : String(error) });
  }
}

self.onmessage = (event: MessageEvent<CheckpointStart | "now" | "later" | "stop">) => {
  if (event.data === "stop") {
    clearTimeout(timer);
    db?.close();
    db = null;
    postMessage("stopped");
    return;
  }
  if (event.data === "now") {
    if (db !== null) checkpointNow(true);
    return;
  }
  if (event.data === "later") {
    // One ran elsewhere (the visit writer's thread): the next is an interval from now.
    clearTimeout(timer);
    if (db !== null) timer = setTimeout(() => checkpointNow(false), intervalMs);
    return;
  }
  try {
    db = new Database(event.data.path);
    db.exec("PRAGMA busy_timeout = 5000");
    db.exec("PRAGMA wal_autocheckpoint = 0");
  } catch (error) {
    // Said once; the thread stays, checkpointing nothing, and stops when asked.
    db?.close();
    db = null;
    postMessage({ error: `checkpoint worker: ${error instanceof Error ? error.message : String(error)}` });
    return;
  }
  intervalMs = event.data.intervalMs;
  timer = setTimeout(() => checkpointNow(false), intervalMs);
};
