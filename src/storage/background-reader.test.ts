import { afterEach, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BackgroundReader, type LinkBatches, type ReadHere } from "./background-reader";
import { openDatabase } from "./database";
import { plainLinkRow, ShortUrlStore } from "./short-url-store";
import { TagStore } from "./tag-store";

const dirs: string[] = [];
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0)) await cleanup();
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** A database with `count` links (codes l000..), every third visited (id visits) and tagged; its stores and path. */
function seeded(count: number) {
  const dir = mkdtempSync(join(tmpdir(), "shortener-reader-"));
  dirs.push(dir);
  const path = join(dir, "shortener.db");
  const db = openDatabase(path);
  const store = new ShortUrlStore(db);
  const tags = new TagStore(db);
  for (let i = 0; i < count; i++) {
    const id = store.insert(plainLinkRow(`l${String(i).padStart(3, "0")}`, { created_at: i, title: i % 2 === 0 ? `T${i}` : null }));
    if (id !== null && i % 3 === 0) {
      store.addVisits(id, i, 1);
      tags.setTags(id, [`t${i % 4}`, "every-third"]);
    }
  }
  return { db, store, tags, path };
}

/** The fallback, counting its calls: a read that reaches it did not run on the worker. */
function countingHere(store: ShortUrlStore, tags: TagStore) {
  const calls = { n: 0 };
  const here: ReadHere = {
    list: (...args) => {
      calls.n++;
      return store.list(...args);
    },
    tagStats: () => {
      calls.n++;
      return tags.stats();
    },
  };
  return { here, calls };
}

/** A seeded database served by a started reader (with the counting fallback), stopped and closed after the test. */
function startedReader(count: number) {
  const seed = seeded(count);
  const { here, calls } = countingHere(seed.store, seed.tags);
  const reader = new BackgroundReader(seed.path, here);
  reader.start();
  cleanups.push(async () => {
    await reader.stop();
    seed.db.close();
  });
  return { ...seed, reader, calls };
}

/** Every batch of a listing, until the empty one (at most `limit` batches). */
async function drain(listing: LinkBatches, limit = 1000): Promise<string[][]> {
  const batches: string[][] = [];
  for (let i = 0; i < limit; i++) {
    const rows = await listing.next();
    if (rows.length === 0) return batches;
    batches.push(rows.map((r) => r.short_code));
  }
  throw new Error(`no empty batch after ${limit}`);
}

/** Frames in the WAL and how many of them a PASSIVE checkpoint could copy (fewer while a reader holds an older snapshot). */
function checkpoint(db: ReturnType<typeof openDatabase>): { log: number; checkpointed: number } {
  return db.query<{ log: number; checkpointed: number }, []>("PRAGMA wal_checkpoint(PASSIVE)").get() as {
    log: number;
    checkpointed: number;
  };
}

describe("BackgroundReader", () => {
  test("lists and sums tags on its worker exactly as the stores do here, for every order and a filter", async () => {
    const { store, tags, reader, calls } = startedReader(40);
    for (const field of ["dateCreated", "shortCode", "longUrl", "title", "visits", "nonBotVisits"] as const) {
      for (const dir of ["ASC", "DESC"] as const) {
        expect(await reader.list({}, { field, dir }, 7, 14)).toEqual(store.list({}, { field, dir }, 7, 14));
      }
    }
    const filter = { searchTerm: "l01", excludeMaxVisitsReached: true };
    expect(await reader.list(filter, { field: "visits", dir: "DESC" }, -1, 0)).toEqual(
      store.list(filter, { field: "visits", dir: "DESC" }, -1, 0),
    );
    const stats = await reader.tagStats();
    expect(stats).toEqual(tags.stats());
    expect(stats.find((t) => t.name === "every-third")?.short_urls).toBe(14);
    expect(calls.n).toBe(0);
  });

  test("sees what the main connection committed before the request", async () => {
    const { store, reader } = startedReader(3);
    expect((await reader.list({}, { field: "dateCreated", dir: "ASC" }, -1, 0)).total).toBe(3);
    store.insert(plainLinkRow("late", { created_at: 99 }));
    const after = await reader.list({}, { field: "dateCreated", dir: "DESC" }, 1, 0);
    expect(after.total).toBe(4);
    expect(after.rows.map((r) => r.short_code)).toEqual(["late"]);
  });

  test("reads on the calling thread before start and after stop", async () => {
    const { db, store, tags, path } = seeded(5);
    const { here, calls } = countingHere(store, tags);
    const reader = new BackgroundReader(path, here);
    expect((await reader.list({}, { field: "shortCode", dir: "ASC" }, 2, 0)).rows.map((r) => r.short_code)).toEqual(["l000", "l001"]);
    expect(calls.n).toBe(1);
    reader.start();
    // The thread starts with the first read, not before: a node nobody browses does not carry it.
    expect(reader.running).toBe(false);
    await reader.list({}, { field: "shortCode", dir: "ASC" }, 2, 0);
    expect(reader.running).toBe(true);
    expect(calls.n).toBe(1);
    await reader.stop();
    expect(reader.running).toBe(false);
    expect((await reader.list({}, { field: "shortCode", dir: "DESC" }, 1, 0)).rows.map((r) => r.short_code)).toEqual(["l004"]);
    expect((await reader.tagStats()).map((t) => t.name)).toEqual(["every-third", "t0", "t3"]);
    expect(calls.n).toBe(3);
    db.close();
  });

  test("when the worker cannot open the database, reads run on the calling thread and the failure is reported", async () => {
    const { db, store, tags } = seeded(4);
    const { here, calls } = countingHere(store, tags);
    const failures: string[] = [];
    const reader = new BackgroundReader(join(tmpdir(), "shortener-reader-missing", "none.db"), here, (m) => failures.push(m));
    reader.start();
    try {
      const listed = await reader.list({}, { field: "dateCreated", dir: "ASC" }, -1, 0);
      expect(listed.total).toBe(4);
      expect(calls.n).toBe(1);
      expect(failures.length).toBeGreaterThan(0);
      expect(failures[0]).toStartWith("reader worker: ");
    } finally {
      await reader.stop();
      db.close();
    }
  });

  test("reads a listing in batches on its worker, the same rows as a whole listing, in order", async () => {
    const { store, reader, calls } = startedReader(23);
    for (const order of [
      { field: "visits", dir: "DESC" },
      { field: "shortCode", dir: "ASC" },
    ] as const) {
      const whole = store.list({ excludeMaxVisitsReached: true }, order, -1, 0).rows.map((r) => r.short_code);
      const batches = await drain(await reader.openList({ excludeMaxVisitsReached: true }, order, -1, 0, 5));
      expect(batches.map((b) => b.length)).toEqual([5, 5, 5, 5, 3]);
      expect(batches.flat()).toEqual(whole);
    }
    // Two listings open at once do not share a statement.
    const a = await reader.openList({}, { field: "shortCode", dir: "ASC" }, -1, 0, 4);
    const b = await reader.openList({}, { field: "shortCode", dir: "DESC" }, -1, 0, 4);
    expect((await a.next()).map((r) => r.short_code)).toEqual(["l000", "l001", "l002", "l003"]);
    expect((await b.next()).map((r) => r.short_code)).toEqual(["l022", "l021", "l020", "l019"]);
    expect((await a.next()).map((r) => r.short_code)).toEqual(["l004", "l005", "l006", "l007"]);
    a.close();
    b.close();
    expect(await a.next()).toEqual([]);
    expect(calls.n).toBe(0);
  });

  test("a listing holds its snapshot until it ends or is closed, and no longer", async () => {
    const { db, store, reader } = startedReader(12);
    for (const end of ["closed", "read to the end"] as const) {
      const before = store.list({}, { field: "dateCreated", dir: "ASC" }, -1, 0).total;
      const listing = await reader.openList({}, { field: "dateCreated", dir: "ASC" }, -1, 0, 5);
      store.insert(plainLinkRow(`new-${end.length}`, { created_at: 100 + end.length }));
      // The worker still reads the snapshot the listing started in: the checkpoint cannot pass it.
      const held = checkpoint(db);
      expect(held.checkpointed).toBeLessThan(held.log);
      if (end === "closed") listing.close();
      // Read to the end, it holds what was there when it started, not the link added since.
      else expect((await drain(listing)).flat()).toHaveLength(before);
      // Messages reach the worker in order: once a later read is answered, the close was done.
      await reader.tagStats();
      const freed = checkpoint(db);
      expect(freed.checkpointed).toBe(freed.log);
    }
  });

  test("a listing read on the calling thread comes whole in batches; one cut off by stop fails rather than ends short", async () => {
    const { db, store, tags, path } = seeded(9);
    const { here, calls } = countingHere(store, tags);
    const reader = new BackgroundReader(path, here);
    const before = await drain(await reader.openList({}, { field: "shortCode", dir: "ASC" }, -1, 0, 4));
    expect(before.map((b) => b.length)).toEqual([4, 4, 1]);
    expect(calls.n).toBe(1);
    reader.start();
    const listing = await reader.openList({}, { field: "shortCode", dir: "ASC" }, -1, 0, 4);
    expect(await listing.next()).toHaveLength(4);
    await reader.stop();
    expect(listing.next()).rejects.toThrow("the reader worker stopped during a listing");
    expect(calls.n).toBe(1);
    db.close();
  });
});
