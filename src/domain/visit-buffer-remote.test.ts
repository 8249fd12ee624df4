/** VisitBuffer with a chunk writer on another thread, played here by a writer whose commits and answers the test makes. */
import { Database } from "bun:sqlite";
import { describe, expect, test } from "bun:test";
import { runMigrations } from "../storage/migrations";
import { RedirectRuleStore } from "../storage/redirect-rule-store";
import { plainLinkRow, ShortUrlStore } from "../storage/short-url-store";
import { LinkResolver } from "./link-resolver";
import type { Visit } from "./visit";
import { VisitBuffer } from "./visit-buffer";
import { type ChunkMessage, type ChunkReply, type ChunkWriter, chunkVisits, partCounts } from "./visit-chunk";

const orphanVisit: Visit = {
  link: null,
  orphanType: "regular_404",
  at: 1,
  bot: false,
  referer: null,
  userAgent: "Mozilla/5.0",
  ip: "203.0.113.7",
  visitedUrl: "http://s.test/nope",
  redirectUrl: null,
};

class ScriptedWriter implements ChunkWriter {
  usable = true;
  commits = 0;
  readonly chunks: ChunkMessage[] = [];
  #answers: ((reply: ChunkReply) => void)[] = [];

  write(chunk: ChunkMessage): Promise<ChunkReply> {
    this.chunks.push(chunk);
    return new Promise((resolve) => this.#answers.push(resolve));
  }

  /** Answers the oldest chunk not yet answered. */
  answer(reply: ChunkReply): void {
    const next = this.#answers.shift();
    if (next === undefined) throw new Error("no chunk waits for an answer");
    next(reply);
  }

  /** Resolves once `n` chunks have been handed over (bounded). */
  async handed(n: number): Promise<void> {
    for (let i = 0; i < 1000 && this.chunks.length < n; i++) await Bun.sleep(1);
    expect(this.chunks.length).toBe(n);
  }
}

function setup() {
  const db = new Database(":memory:");
  runMigrations(db, ":memory:");
  const store = new ShortUrlStore(db);
  const visits = new VisitBuffer(db, store);
  visits.addSink({ write: () => {} });
  const writer = new ScriptedWriter();
  visits.useWriter(writer);
  const add = (code: string) => store.insert(plainLinkRow(code)) as number;
  const hit = (id: number, bot = false, domain = "") => {
    visits.record(id, bot);
    visits.capture({
      link: { id, shortCode: `c${id}`, domain },
      orphanType: null,
      at: 1,
      bot,
      referer: null,
      userAgent: bot ? "curl/8.0" : "Mozilla/5.0",
      ip: "203.0.113.7",
      visitedUrl: "http://s.test/x",
      redirectUrl: "https://example.com/",
    });
  };
  /** What the writer's thread does with a chunk: its counters, in this database. */
  const commit = (chunk: ChunkMessage) => {
    chunk.ids.forEach((id, i) => {
      const { take, bots } = partCounts(chunk, i);
      store.addVisits(id, take, bots);
    });
    writer.commits++;
  };
  return { db, store, visits, writer, add, hit, commit };
}

describe("VisitBuffer with a chunk writer", () => {
  test("hands each chunk over as records and counts, and a link's total stays exact before, during and after its commit", async () => {
    const { visits, writer, store, add, hit, commit } = setup();
    const a = add("a");
    for (let i = 0; i < 5; i++) hit(a, i === 0);
    const run = visits.flushInChunks(1000);
    await writer.handed(1);
    const chunk = writer.chunks[0] as ChunkMessage;
    expect([...chunk.ids]).toEqual([a]);
    expect(partCounts(chunk, 0)).toEqual({ take: 5, bots: 1 });
    expect(chunkVisits(chunk).map((v) => [v.link?.id, v.bot, v.userAgent])).toEqual([
      [a, true, "curl/8.0"],
      [a, false, "Mozilla/5.0"],
      [a, false, "Mozilla/5.0"],
      [a, false, "Mozilla/5.0"],
      [a, false, "Mozilla/5.0"],
    ]);
    const total = () => (store.findById(a)?.visits_total ?? 0) + visits.pendingFor(a).total;
    expect(total()).toBe(5);
    hit(a); // recorded while the chunk is out
    expect(total()).toBe(6);
    commit(chunk); // committed on the other thread, not yet answered
    expect(visits.pendingFor(a)).toEqual({ total: 1, bots: 0 });
    expect(total()).toBe(6);
    writer.answer({ op: "written", enqueued: false });
    expect(await run).toBe(5);
    expect(visits.pendingFor(a)).toEqual({ total: 1, bots: 0 });
    expect(total()).toBe(6);
    expect(visits.depth).toBe(1);
  });

  test("each visit crosses with its own link's code and domain, and an orphan visit with none", async () => {
    const { visits, writer, add, hit } = setup();
    const [a, b, c] = [add("a"), add("b"), add("c")];
    hit(a);
    hit(b, true, "s.example.com");
    hit(b, false, "s.example.com");
    hit(c);
    visits.captureOrphan({ ...orphanVisit, orphanType: "invalid_short_url" });
    const run = visits.flushInChunks(1000);
    await writer.handed(1);
    const chunk = writer.chunks[0] as ChunkMessage;
    expect([0, 1, 2].map((i) => partCounts(chunk, i))).toEqual([
      { take: 1, bots: 0 },
      { take: 2, bots: 1 },
      { take: 1, bots: 0 },
    ]);
    expect(chunkVisits(chunk).map((v) => [v.link, v.bot, v.orphanType])).toEqual([
      [{ id: a, shortCode: `c${a}`, domain: "" }, false, null],
      [{ id: b, shortCode: `c${b}`, domain: "s.example.com" }, true, null],
      [{ id: b, shortCode: `c${b}`, domain: "s.example.com" }, false, null],
      [{ id: c, shortCode: `c${c}`, domain: "" }, false, null],
    ]);
    writer.answer({ op: "written", enqueued: false });
    // Orphan visits come in a chunk after the links'.
    await writer.handed(2);
    const orphans = writer.chunks[1] as ChunkMessage;
    expect(chunkVisits(orphans).map((v) => [v.link, v.orphanType, v.visitedUrl])).toEqual([
      [null, "invalid_short_url", "http://s.test/nope"],
    ]);
    writer.answer({ op: "written", enqueued: false });
    expect(await run).toBe(5);
  });

  test("a link's count read across the writer's commit is read again", async () => {
    const { db, visits, writer, store, add, hit, commit } = setup();
    const a = add("a");
    for (let i = 0; i < 3; i++) hit(a);
    const run = visits.flushInChunks(1000);
    await writer.handed(1);
    // The commit lands between the resolver's SELECT and its read of the buffer.
    let committed = false;
    const racing = Object.create(store) as ShortUrlStore;
    racing.findForRedirect = (domain, code) => {
      const row = store.findForRedirect(domain, code);
      if (!committed) {
        committed = true;
        commit(writer.chunks[0] as ChunkMessage);
      }
      return row;
    };
    const resolver = new LinkResolver(racing, visits, 10, new RedirectRuleStore(db));
    expect(resolver.lookup("", "a")?.visits).toBe(3);
    writer.answer({ op: "written", enqueued: false });
    await run;
  });

  test("a failed chunk stays buffered; one whose commit was counted is not written again", async () => {
    const { visits, writer, add, hit, commit } = setup();
    const a = add("a");
    hit(a);
    hit(a);
    const failed = visits.flushInChunks(1000);
    await writer.handed(1);
    writer.answer({ op: "failed", message: "disk I/O error", code: "SQLITE_IOERR" });
    await expect(failed).rejects.toThrow("visit writer: disk I/O error");
    expect(visits.depth).toBe(2);
    const died = visits.flushInChunks(1000);
    await writer.handed(2);
    commit(writer.chunks[1] as ChunkMessage);
    writer.answer({ op: "failed", message: "the thread died", code: null });
    expect(await died).toBe(2);
    expect(visits.depth).toBe(0);
  });

  test("a chunk that met another process's lock is handed over again", async () => {
    const { visits, writer, add, hit, commit } = setup();
    const a = add("a");
    hit(a);
    const run = visits.flushInChunks(1000);
    await writer.handed(1);
    writer.answer({ op: "busy", message: "database is locked" });
    await writer.handed(2);
    expect(partCounts(writer.chunks[1] as ChunkMessage, 0)).toEqual({ take: 1, bots: 0 });
    commit(writer.chunks[1] as ChunkMessage);
    writer.answer({ op: "written", enqueued: false });
    expect(await run).toBe(1);
  });

  test("with the writer gone, chunks are written on this thread's connection", async () => {
    const { visits, writer, store, add, hit } = setup();
    const a = add("a");
    hit(a);
    writer.usable = false;
    expect(await visits.flushInChunks(1000)).toBe(1);
    expect(writer.chunks).toHaveLength(0);
    expect(store.findById(a)?.visits_total).toBe(1);
  });
});
