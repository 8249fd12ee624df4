import { Database } from "bun:sqlite";
import { describe, expect, test } from "bun:test";
import { batchesOf } from "../storage/background-reader";
import { GroupCommit } from "../storage/group-commit";
import { LinkPasswordStore } from "../storage/link-password-store";
import { runMigrations } from "../storage/migrations";
import { RedirectRuleStore } from "../storage/redirect-rule-store";
import { ShortUrlStore } from "../storage/short-url-store";
import { TagStore } from "../storage/tag-store";
import type { ApiKey } from "./api-keys";
import type { LinkEvent, LinkEventListener, LinkEventType } from "./link-events";
import { LinkPasswords } from "./link-passwords";
import { LinkResolver } from "./link-resolver";
import { ALL_LINKS_BATCH, ShortUrlService } from "./short-urls";
import { VisitBuffer } from "./visit-buffer";

const ADMIN: ApiKey = { id: 1, name: "admin", role: "admin" };

type Deps = ConstructorParameters<typeof ShortUrlService>[0];

/** The service on a fresh in-memory database; `extra` adds or replaces dependencies, given the store and buffer. */
function setup(extra: (store: ShortUrlStore, visits: VisitBuffer) => Partial<Deps> = () => ({})) {
  const db = new Database(":memory:");
  runMigrations(db, ":memory:");
  db.run("INSERT INTO api_keys (id, name, key_hash, role, created_at) VALUES (1, 'admin', 'h', 'admin', 0)");
  const store = new ShortUrlStore(db);
  const visits = new VisitBuffer(db, store);
  const rules = new RedirectRuleStore(db);
  const links = new ShortUrlService({
    writes: new GroupCommit(db),
    shortUrls: store,
    tags: new TagStore(db),
    redirectRules: rules,
    passwords: { store: new LinkPasswordStore(db), hasher: new LinkPasswords() },
    resolver: new LinkResolver(store, visits, 10, rules),
    defaultDomain: "s.test",
    shortCodeLength: 7,
    pendingVisits: (id) => visits.pendingFor(id),
    ...extra(store, visits),
  });
  return { links, visits };
}

function service(listeners: LinkEventListener[]) {
  return setup(() => ({ linkEvents: listeners })).links;
}

/** A listener that records what it was told, in and after the transaction, for the types it wants. */
function recorder(wanted: readonly LinkEventType[] | null) {
  const told: string[] = [];
  const listener: LinkEventListener = {
    inTransaction: (e: LinkEvent) => told.push(`in ${e.type} ${e.shortUrl.shortCode} ${e.shortUrl.longUrl}`),
    afterCommit: (e: LinkEvent) => told.push(`after ${e.type} ${e.shortUrl.shortCode}`),
  };
  if (wanted !== null) listener.wants = (type) => wanted.includes(type);
  return { listener, told };
}

describe("link events", () => {
  test("go to the listeners that want them, inside the write and after the commit; a deletion carries the link as it was", async () => {
    const all = recorder(null);
    const deletions = recorder(["link.deleted"]);
    const none = recorder([]);
    const links = service([all.listener, deletions.listener, none.listener]);
    await links.create({ longUrl: "https://example.com/a", customSlug: "ev", findIfExists: false }, ADMIN);
    await links.edit("ev", null, { longUrl: "https://example.com/b" }, ADMIN);
    await links.delete("ev", null, ADMIN);
    expect(all.told).toEqual([
      "in link.created ev https://example.com/a",
      "after link.created ev",
      "in link.updated ev https://example.com/b",
      "after link.updated ev",
      "in link.deleted ev https://example.com/b",
      "after link.deleted ev",
    ]);
    expect(deletions.told).toEqual(["in link.deleted ev https://example.com/b", "after link.deleted ev"]);
    expect(none.told).toEqual([]);
  });

  test("a listener that throws inside the write rolls the write back; one that throws after the commit does not", async () => {
    const failing: LinkEventListener = {
      inTransaction: () => {
        throw new Error("outbox full");
      },
    };
    const links = service([failing]);
    await expect(links.create({ longUrl: "https://example.com/a", customSlug: "gone", findIfExists: false }, ADMIN)).rejects.toThrow(
      "outbox full",
    );
    expect(() => links.get("gone", null)).toThrow();

    const late = service([
      {
        afterCommit: () => {
          throw new Error("feed down");
        },
      },
    ]);
    const created = await late.create({ longUrl: "https://example.com/a", customSlug: "kept", findIfExists: false }, ADMIN);
    expect(late.get("kept", null).id).toBe(created.id);
  });
});

describe("listing", () => {
  test("a listing read elsewhere before a flush still counts every visit: the counters are read again", async () => {
    let flushBetween = true;
    const { links, visits } = setup((store, buffer) => ({
      // As the worker does: the rows are read, and meanwhile the flush commits what was pending.
      listLinks: async (...args) => {
        const read = store.list(...args);
        if (flushBetween) buffer.flush();
        return read;
      },
      visitFlushes: () => buffer.commits,
    }));
    const created = await links.create({ longUrl: "https://example.com/c", customSlug: "counted", findIfExists: false }, ADMIN);
    for (let i = 0; i < 3; i++) visits.record(created.id, i === 0);
    const query = { page: 1, itemsPerPage: 10, filter: {}, order: { field: "dateCreated", dir: "DESC" } } as const;
    const page = await links.list(query);
    expect(page.items.map((l) => [l.shortCode, l.visitsTotal, l.visitsBots])).toEqual([["counted", 3, 1]]);
    // Without a flush in between, stored plus pending is exact as read.
    flushBetween = false;
    visits.record(created.id, false);
    expect((await links.list(query)).items.map((l) => l.visitsTotal)).toEqual([4]);
  });

  test("a listing of every link comes in batches, each counting every visit though a flush committed after it was read", async () => {
    const { links, visits } = setup((store, buffer) => ({
      // As the worker does: the listing's rows are read from one snapshot, then handed out as asked for; meanwhile
      // the flush commits what was pending.
      openLinkList: async (filter, order, limit, offset, batch) => {
        const read = batchesOf(store.list(filter, order, limit, offset), batch);
        buffer.flush();
        return read;
      },
      visitFlushes: () => buffer.commits,
    }));
    const count = ALL_LINKS_BATCH + 3;
    const ids: number[] = [];
    for (let i = 0; i < count; i++) {
      const created = await links.create({ longUrl: `https://example.com/${i}`, customSlug: `all-${i}`, findIfExists: false }, ADMIN);
      ids.push(created.id);
    }
    visits.record(ids[0] as number, true);
    visits.record(ids[count - 1] as number, false);
    visits.record(ids[count - 1] as number, false);
    const listing = await links.listAll({ page: 1, itemsPerPage: -1, filter: {}, order: { field: "dateCreated", dir: "ASC" } });
    const batches = [await listing.next(), await listing.next(), await listing.next()];
    expect(batches.map((b) => b.length)).toEqual([ALL_LINKS_BATCH, 3, 0]);
    const all = batches.flat();
    expect(all.map((l) => l.shortCode)).toEqual(ids.map((_, i) => `all-${i}`));
    expect([all[0]?.visitsTotal, all[0]?.visitsBots, all[count - 1]?.visitsTotal]).toEqual([1, 1, 2]);
  });
});
