import { Database } from "bun:sqlite";
import { expect, test } from "bun:test";
import { LINK_CHANGES_KEPT, LinkChangeStore } from "../storage/link-change-store";
import { runMigrations } from "../storage/migrations";
import { FailureStreak } from "../telemetry/failure-streak";
import { type ChangedLinks, LinkChangeWatch, watchLinkChanges } from "./link-change-watch";

function journal(): { db: Database; store: LinkChangeStore } {
  const db = new Database(":memory:", { strict: true });
  runMigrations(db, ":memory:");
  return { db, store: new LinkChangeStore(db) };
}

/** A cache that remembers what it was told to drop. */
function recordingCache(): ChangedLinks & { forgotten: string[]; cleared: number } {
  const cache = {
    forgotten: [] as string[],
    cleared: 0,
    forgetChanged: (domain: string, code: string) => cache.forgotten.push(`${domain}/${code}`),
    forgetCached: () => {
      cache.cleared++;
    },
  };
  return cache;
}

test("a look drops the codes changed since the last one, each once, and nothing when none changed", () => {
  const { db, store } = journal();
  store.record("", "before");
  const cache = recordingCache();
  const watch = new LinkChangeWatch(store, cache);
  // Changes from before the watch started were made before anything was cached.
  expect(watch.look()).toBe(0);
  db.transaction(() => {
    store.record("", "abc");
    store.record("s.example.com", "abc");
  }).immediate();
  expect(watch.look()).toBe(2);
  expect(cache.forgotten).toEqual(["/abc", "s.example.com/abc"]);
  expect(watch.look()).toBe(0);
  store.record("", "xyz");
  expect(watch.look()).toBe(1);
  expect(cache.forgotten).toEqual(["/abc", "s.example.com/abc", "/xyz"]);
  expect(cache.cleared).toBe(0);
});

test("a rolled-back change leaves no hole in the numbers: the next look reads on without dropping everything", () => {
  const { db, store } = journal();
  const cache = recordingCache();
  const watch = new LinkChangeWatch(store, cache);
  expect(() =>
    db
      .transaction(() => {
        store.record("", "undone");
        throw new Error("the write failed");
      })
      .immediate(),
  ).toThrow("the write failed");
  store.record("", "kept");
  expect(watch.look()).toBe(1);
  expect(cache.forgotten).toEqual(["/kept"]);
  expect(cache.cleared).toBe(0);
});

test("the journal keeps its newest LINK_CHANGES_KEPT rows; a watcher that missed pruned ones drops everything", () => {
  const { db, store } = journal();
  const cache = recordingCache();
  const watch = new LinkChangeWatch(store, cache);
  const later = LINK_CHANGES_KEPT + 5;
  db.transaction(() => {
    for (let i = 0; i < later; i++) store.record("", `c${i}`);
  }).immediate();
  expect(db.query("SELECT count(*) AS n, min(seq) AS lo FROM link_changes").get()).toEqual({ n: LINK_CHANGES_KEPT, lo: 6 });
  expect(store.last()).toBe(later);
  // Rows 1-5 are gone unread: which codes they named is unknown.
  expect(watch.look()).toBe("all");
  expect(cache.cleared).toBe(1);
  expect(cache.forgotten).toEqual([]);
  // It reads on from the newest it saw when it dropped everything.
  store.record("", "next");
  expect(watch.look()).toBe(1);
  expect(cache.forgotten).toEqual(["/next"]);
});

test("more changes than one look reads drop everything, and the look after reads on from there", () => {
  const { db, store } = journal();
  const cache = recordingCache();
  const watch = new LinkChangeWatch(store, cache);
  db.transaction(() => {
    for (let i = 0; i < 1500; i++) store.record("", `c${i}`);
  }).immediate();
  expect(watch.look()).toBe("all");
  expect(cache.cleared).toBe(1);
  expect(watch.look()).toBe(0);
  store.record("", "one");
  expect(watch.look()).toBe(1);
  expect(cache.forgotten).toEqual(["/one"]);
});

test("failed looks are logged once as a streak, and the look that works again reads every change made meanwhile", async () => {
  const { store } = journal();
  let broken = false;
  let looks = 0;
  const flaky = {
    last: () => store.last(),
    after: (seq: number, limit: number) => {
      looks++;
      if (broken) throw new Error("database disk image is malformed");
      return store.after(seq, limit);
    },
  } as unknown as LinkChangeStore;
  const events: string[] = [];
  const streak = new FailureStreak("link_changes_watch", 60_000, Date.now, (_level, event) => events.push(event));
  const cache = recordingCache();
  const timer = watchLinkChanges(flaky, cache, 5, streak);
  try {
    broken = true;
    store.record("", "while-broken");
    const deadline = Date.now() + 5_000;
    while (events.length === 0 && Date.now() < deadline) await Bun.sleep(5);
    expect(events).toEqual(["link_changes_watch_failed"]);
    // Ten failed looks later, still one line.
    const failedBy = looks + 10;
    while (looks < failedBy && Date.now() < deadline) await Bun.sleep(5);
    expect(looks).toBeGreaterThanOrEqual(failedBy);
    expect(events).toEqual(["link_changes_watch_failed"]);
    expect(cache.forgotten).toEqual([]);
    broken = false;
    while (events.length < 2 && Date.now() < deadline) await Bun.sleep(5);
    expect(events).toEqual(["link_changes_watch_failed", "link_changes_watch_recovered"]);
    expect(cache.forgotten).toEqual(["/while-broken"]);
  } finally {
    clearInterval(timer);
  }
});
