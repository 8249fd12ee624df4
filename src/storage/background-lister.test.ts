import { afterEach, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BackgroundLister, type ListLinks } from "./background-lister";
import { openDatabase } from "./database";
import { plainLinkRow, ShortUrlStore } from "./short-url-store";

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** A database with `count` links (codes l000..), every third visited (id visits); the store and its path. */
function seeded(count: number) {
  const dir = mkdtempSync(join(tmpdir(), "shortener-lister-"));
  dirs.push(dir);
  const path = join(dir, "shortener.db");
  const db = openDatabase(path);
  const store = new ShortUrlStore(db);
  for (let i = 0; i < count; i++) {
    const id = store.insert(plainLinkRow(`l${String(i).padStart(3, "0")}`, { created_at: i, title: i % 2 === 0 ? `T${i}` : null }));
    if (id !== null && i % 3 === 0) store.addVisits(id, i, 1);
  }
  return { db, store, path };
}

/** The fallback, counting its calls: a listing that reaches it did not run on the worker. */
function countingHere(store: ShortUrlStore) {
  const calls = { n: 0 };
  const here: ListLinks = (...args) => {
    calls.n++;
    return store.list(...args);
  };
  return { here, calls };
}

describe("BackgroundLister", () => {
  test("lists on its worker exactly what the store lists here, for every order and a filter", async () => {
    const { db, store, path } = seeded(40);
    const { here, calls } = countingHere(store);
    const lister = new BackgroundLister(path, here);
    lister.start();
    try {
      for (const field of ["dateCreated", "shortCode", "longUrl", "title", "visits", "nonBotVisits"] as const) {
        for (const dir of ["ASC", "DESC"] as const) {
          expect(await lister.list({}, { field, dir }, 7, 14)).toEqual(store.list({}, { field, dir }, 7, 14));
        }
      }
      const filter = { searchTerm: "l01", excludeMaxVisitsReached: true };
      expect(await lister.list(filter, { field: "visits", dir: "DESC" }, -1, 0)).toEqual(
        store.list(filter, { field: "visits", dir: "DESC" }, -1, 0),
      );
      expect(calls.n).toBe(0);
    } finally {
      await lister.stop();
      db.close();
    }
  });

  test("sees what the main connection committed before the request", async () => {
    const { db, store, path } = seeded(3);
    const lister = new BackgroundLister(path, countingHere(store).here);
    lister.start();
    try {
      expect((await lister.list({}, { field: "dateCreated", dir: "ASC" }, -1, 0)).total).toBe(3);
      store.insert(plainLinkRow("late", { created_at: 99 }));
      const after = await lister.list({}, { field: "dateCreated", dir: "DESC" }, 1, 0);
      expect(after.total).toBe(4);
      expect(after.rows.map((r) => r.short_code)).toEqual(["late"]);
    } finally {
      await lister.stop();
      db.close();
    }
  });

  test("lists on the calling thread before start and after stop", async () => {
    const { db, store, path } = seeded(5);
    const { here, calls } = countingHere(store);
    const lister = new BackgroundLister(path, here);
    expect((await lister.list({}, { field: "shortCode", dir: "ASC" }, 2, 0)).rows.map((r) => r.short_code)).toEqual(["l000", "l001"]);
    expect(calls.n).toBe(1);
    lister.start();
    await lister.list({}, { field: "shortCode", dir: "ASC" }, 2, 0);
    expect(calls.n).toBe(1);
    await lister.stop();
    expect((await lister.list({}, { field: "shortCode", dir: "DESC" }, 1, 0)).rows.map((r) => r.short_code)).toEqual(["l004"]);
    expect(calls.n).toBe(2);
    db.close();
  });

  test("when the worker cannot open the database, listings run on the calling thread and the failure is reported", async () => {
    const { db, store } = seeded(4);
    const { here, calls } = countingHere(store);
    const failures: string[] = [];
    const lister = new BackgroundLister(join(tmpdir(), "shortener-lister-missing", "none.db"), here, (m) => failures.push(m));
    lister.start();
    try {
      const listed = await lister.list({}, { field: "dateCreated", dir: "ASC" }, -1, 0);
      expect(listed.total).toBe(4);
      expect(calls.n).toBe(1);
      expect(failures.length).toBeGreaterThan(0);
      expect(failures[0]).toStartWith("list worker: ");
    } finally {
      await lister.stop();
      db.close();
    }
  });
});
