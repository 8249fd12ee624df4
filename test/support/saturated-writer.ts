/**
 * Run pinned to one CPU (taskset) by src/domain/visit-writer.test.ts: this thread's event loop never idles (it spins
 * in 1 ms slices between turns, as a saturated server does), so the SCHED_IDLE visit writer gets the CPU only when
 * this thread gives it. Buffers VISITS visits, flushes them through the writer, and prints what was written and how
 * long it took; it gives up after GIVE_UP_MS. With MODE `link-writes` each turn also writes a link, holding the write
 * lock through a 1 ms wait as a commit's fsync does: the writer then gets the CPU only while the lock is held, unless
 * this thread makes room. Usage: bun saturated-writer.ts DIR VISITS [spin|link-writes]
 */
import { join } from "node:path";
import { VisitBuffer } from "../../src/domain/visit-buffer";
import { DEFAULT_PRIVACY, VisitRecorder } from "../../src/domain/visit-recorder";
import { VisitWriter } from "../../src/domain/visit-writer";
import { schedulingPolicy } from "../../src/lib/thread-priority";
import { openDatabase, writeTransactionIfFree } from "../../src/storage/database";
import { plainLinkRow, ShortUrlStore } from "../../src/storage/short-url-store";
import { VisitStore } from "../../src/storage/visit-store";

const GIVE_UP_MS = 20_000;
const [dir = "", visitsArg = "20000", mode = "spin"] = process.argv.slice(2);
const path = join(dir, "shortener.db");
const db = openDatabase(path);
const store = new ShortUrlStore(db);
const visits = new VisitBuffer(db, store);
visits.addSink(new VisitRecorder(new VisitStore(db)));
const writer = new VisitWriter(
  { path, walSizeLimitBytes: undefined, privacy: DEFAULT_PRIVACY, geoipDb: null, baseUrl: "http://s.test", checkpointEveryMs: null },
  {
    enqueued: () => {},
    checkpointed: () => {},
    checkpointFailed: (message) => console.error(message),
    failed: (message) => console.error(message),
  },
);
await writer.start();
// Chunks the writer answered busy: it waited its while for the lock and gave up, to be sent again.
let busy = 0;
const write = writer.write.bind(writer);
writer.write = async (chunk, urgent) => {
  const reply = await write(chunk, urgent);
  if (reply.op === "busy") busy++;
  return reply;
};
visits.useWriter(writer);
const ids = Array.from({ length: 100 }, (_, i) => store.insert(plainLinkRow(`code${i}`)) as number);
for (let i = 0; i < Number(visitsArg); i++) {
  const id = ids[i % ids.length] as number;
  visits.record(id, false);
  visits.capture({
    link: { id, shortCode: `code${i % ids.length}`, domain: "" },
    orphanType: null,
    at: Date.now(),
    bot: false,
    referer: "https://ref.example/",
    userAgent: "Mozilla/5.0",
    ip: `203.0.113.${i % 250}`,
    visitedUrl: "http://s.test/x",
    redirectUrl: "https://example.com/",
  });
}
let spinning = true;
const fsync = new Int32Array(new SharedArrayBuffer(4));
let title = 0;
const spin = () => {
  const until = performance.now() + 1;
  while (performance.now() < until) {}
  if (mode === "link-writes") {
    // Busy while the writer holds the lock: tried again next turn, as GroupCommit does.
    writeTransactionIfFree(db, () => {
      db.run("UPDATE short_urls SET title = ? WHERE id = ?", [`t${title++}`, ids[0] as number]);
      Atomics.wait(fsync, 0, 0, 1);
    });
  }
  if (spinning) setImmediate(spin);
};
spin();
const started = performance.now();
const written = await Promise.race([
  // Link writes: never urgent, so only the lock wait makes this thread give way.
  visits.flushInChunks(1000, undefined, mode === "link-writes" ? Number.POSITIVE_INFINITY : 100),
  new Promise<number>((resolve) => setTimeout(() => resolve(-1), GIVE_UP_MS)),
]);
spinning = false;
const ms = performance.now() - started;
const policy = writer.threadId === null ? null : await schedulingPolicy(writer.threadId);
const stored = (db.query("SELECT count(*) AS n FROM visits").get() as { n: number }).n;
console.log(JSON.stringify({ written, stored, ms, policy, linkWrites: title, busy }));
process.exit(0);
