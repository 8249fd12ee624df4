/**
 * The background checkpointer's thread (see checkpointer.ts): its own connection to the database, running a
 * PASSIVE checkpoint when asked ("now", after the visit flush's writes) and otherwise an interval after the last one
 * (here, or elsewhere: "later"), so that copying WAL pages into the database file and its fsync never run on the
 * thread that serves redirects. PASSIVE never waits for readers or writers; it is the only kind the app runs.
 */
import { Database } from "bun:sqlite";
import { passiveCheckpoint } from "./database";

declare const self: Worker;

export interface CheckpointStart {
  path: string;
  /** A checkpoint runs this long after the previous one, unless asked for sooner. */
  intervalMs: number;
}

let db: Database | null = null;
let timer: Timer | undefined;
let intervalMs = 1000;
let lastLog = -1;

/** Runs a checkpoint now, and the next one an interval later unless asked for sooner. */
function checkpointNow(report: boolean): void {
  checkpoint(report);
  checkpointLater();
}

/** The next checkpoint an interval from now. */
function checkpointLater(): void {
  clearTimeout(timer);
  if (db !== null) timer = setTimeout(() => checkpointNow(false), intervalMs);
}

/** One checkpoint; its result is posted when asked for (`report`) or when it found something new. */
function checkpoint(report: boolean): void {
  if (db === null) return;
  try {
    const result = passiveCheckpoint(db);
    // An idle WAL (nothing new since the last run) is not worth a message.
    if (!report && result.log === lastLog && result.log === result.checkpointed) return;
    lastLog = result.log;
    postMessage(result);
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
    // One ran elsewhere (the visit writer's thread).
    checkpointLater();
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
  checkpointLater();
};
