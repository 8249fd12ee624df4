import { Database } from "bun:sqlite";
import { describe, expect, test } from "bun:test";
import type { ShortUrl } from "../domain/short-urls";
import type { Visit } from "../domain/visit-buffer";
import { VisitRecorder } from "../domain/visit-recorder";
import { MIGRATIONS, runMigrations } from "./migrations";
import { plainLinkRow, ShortUrlStore } from "./short-url-store";
import { VisitDeletionStore } from "./visit-deletion-store";
import { VisitPurgeStore } from "./visit-purge-store";
import { VisitQueryStore } from "./visit-query-store";
import { VisitStore } from "./visit-store";

/** A deterministic pseudo-random sequence, so a failure reproduces. */
function rng(seed: number) {
  let s = seed;
  return () => {
    s = (s * 1103515245 + 12345) % 2 ** 31;
    return s / 2 ** 31;
  };
}

type Tally = { total: number; bots: number };
type Row = Tally & { day: number };

const DAY_MS = 86_400_000;
const DOMAINS = ["a", "b", ""];
const RANGES = [
  [0, 29],
  [5, 12],
  [20, 20],
  [40, 50],
] as const;

/** What the per-domain roll-ups stand for: the live links' day rows, summed by the slow join they replace. */
function brute(db: Database, domain: string | undefined, from: number, to: number): Tally {
  const onDomain = domain === undefined ? "" : " AND s.domain = ?";
  const params = domain === undefined ? [from, to] : [from, to, domain];
  return db
    .query(
      `SELECT coalesce(sum(d.total), 0) AS total, coalesce(sum(d.bots), 0) AS bots FROM visit_days d
       JOIN short_urls s ON s.id = d.short_url_id WHERE d.day BETWEEN ? AND ?${onDomain}`,
    )
    .get(...params) as Tally;
}

function sumsOf(db: Database): { domain: string | undefined; from: number; to: number; sums: Tally }[] {
  const store = new VisitQueryStore(db);
  return [...DOMAINS, "none", undefined].flatMap((domain) =>
    RANGES.map(([from, to]) => ({ domain, from, to, sums: store.linkSetDaySums(domain === undefined ? {} : { domain }, from, to) })),
  );
}

function bruteSums(db: Database): ReturnType<typeof sumsOf> {
  return [...DOMAINS, "none", undefined].flatMap((domain) =>
    RANGES.map(([from, to]) => ({ domain, from, to, sums: brute(db, domain, from, to) })),
  );
}

function visitOf(id: number, domain: string, day: number, bot: boolean): Visit {
  return {
    link: { id, shortCode: `c${id}`, domain },
    orphanType: null,
    at: day * DAY_MS + 1_000,
    bot,
    referer: null,
    userAgent: "Mozilla/5.0",
    ip: "192.0.2.1",
    visitedUrl: `https://s.test/c${id}`,
    redirectUrl: "https://e.test/",
  };
}

describe("the per-domain day roll-ups", () => {
  test("equal the live links' day rows through flushes, deletions of visits and of links, and dropped roll-ups", async () => {
    const db = new Database(":memory:", { strict: true });
    runMigrations(db, ":memory:");
    const links = new ShortUrlStore(db);
    const recorder = new VisitRecorder(new VisitStore(db));
    const deletions = new VisitDeletionStore(db);
    const purge = new VisitPurgeStore(db);
    const random = rng(7);
    const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)] as T;
    const domainOf = new Map<number, string>();
    const live: number[] = [];
    const deleted: number[] = [];
    /** Visits buffered before their link's deletion, flushed after it. */
    let buffered: Visit[] = [];
    const create = () => {
      const domain = pick(DOMAINS);
      const id = links.insert(plainLinkRow(`c${domainOf.size + 1}`, { domain })) as number;
      domainOf.set(id, domain);
      live.push(id);
    };
    for (let i = 0; i < 12; i++) create();
    const ops = { flush: 0, lateFlush: 0, subtract: 0, deleteLink: 0, rolledBackDelete: 0, dropRollups: 0, create: 0 };
    for (let step = 0; step < 400; step++) {
      const r = random();
      if (r < 0.45) {
        // A flush: a few links' visits over a few days, some of them bots.
        const visits = Array.from({ length: 1 + Math.floor(random() * 8) }, () => {
          const id = pick(live);
          return visitOf(id, domainOf.get(id) as string, Math.floor(random() * 30), random() < 0.3);
        });
        db.transaction(() => recorder.write(visits)).immediate();
        ops.flush++;
      } else if (r < 0.55 && buffered.length > 0) {
        db.transaction(() => recorder.write(buffered)).immediate();
        buffered = [];
        ops.lateFlush++;
      } else if (r < 0.7) {
        const id = pick(live);
        const days = db.query("SELECT day, total, bots FROM visit_days WHERE short_url_id = ? ORDER BY day").all(id) as Row[];
        if (days.length === 0) continue;
        const day = pick(days);
        // Some of the day's visits, or all of them (the row goes).
        const total = random() < 0.5 ? day.total : Math.ceil(day.total / 2);
        db.transaction(() => deletions.subtractFromDay("link", id, day.day, total, Math.min(day.bots, total))).immediate();
        ops.subtract++;
      } else if (r < 0.8 && live.length > 4) {
        const at = Math.floor(random() * live.length);
        const id = live[at] as number;
        // Its visits were buffered when it was deleted; the deletion tells the recorder inside its transaction.
        buffered.push(visitOf(id, domainOf.get(id) as string, Math.floor(random() * 30), false));
        const event = { type: "link.deleted" as const, shortUrl: { id } as ShortUrl, at: 0 };
        if (random() < 0.2) {
          // The deletion rolls back: the link lives on, and its visits count.
          expect(() =>
            db
              .transaction(() => {
                recorder.inTransaction(event);
                links.delete(id);
                throw new Error("rolled back");
              })
              .immediate(),
          ).toThrow("rolled back");
          ops.rolledBackDelete++;
        } else {
          db.transaction(() => {
            recorder.inTransaction(event);
            links.delete(id);
          }).immediate();
          live.splice(at, 1);
          deleted.push(id);
          ops.deleteLink++;
        }
      } else if (r < 0.87 && deleted.length > 0) {
        const id = deleted.splice(Math.floor(random() * deleted.length), 1)[0] as number;
        await purge.purgeDeletedLinkRows(id, 10_000);
        expect(await purge.dropDeletedLinkRollups(id)).toBe(true);
        ops.dropRollups++;
      } else {
        create();
        ops.create++;
      }
      expect({ step, sums: sumsOf(db) }).toEqual({ step, sums: bruteSums(db) });
    }
    // Every kind of change happened, several times.
    for (const count of Object.values(ops)) expect(count).toBeGreaterThan(3);
    expect(brute(db, undefined, 0, 29).total).toBeGreaterThan(100);
  });

  test("a closed day summed again takes in what an older binary's flush left out, and changes nothing else", async () => {
    const db = new Database(":memory:", { strict: true });
    runMigrations(db, ":memory:");
    const links = new ShortUrlStore(db);
    const a = links.insert(plainLinkRow("a1", { domain: "a" })) as number;
    const b = links.insert(plainLinkRow("b1")) as number;
    const recorder = new VisitRecorder(new VisitStore(db));
    db.transaction(() => recorder.write([visitOf(a, "a", 10, false), visitOf(b, "", 10, true), visitOf(b, "", 11, false)])).immediate();
    // The other colour, on the binary before schema 10, flushes visits of day 10 (it knows only visit_days).
    new VisitStore(db).addToDay(a, 10, 5, 1, 1);
    expect(sumsOf(db)).not.toEqual(bruteSums(db));
    const purge = new VisitPurgeStore(db);
    expect(await purge.resumDomainDay(10)).toEqual({ before: 2, after: 7 });
    expect(sumsOf(db)).toEqual(bruteSums(db));
    expect(await purge.resumDomainDay(11)).toEqual({ before: 1, after: 1 });
    expect(sumsOf(db)).toEqual(bruteSums(db));
  });

  test("an existing database (version 9) gets them summed from its live links' day rows", () => {
    const db = new Database(":memory:", { strict: true });
    for (const migration of MIGRATIONS.filter((m) => m.version <= 9)) db.exec(migration.sql);
    db.exec("PRAGMA user_version = 9");
    const link = db.query("INSERT INTO short_urls (id, domain, short_code, long_url, created_at) VALUES (?, ?, ?, 'https://e.test/', 0)");
    for (const [i, domain] of ["a", "a", "b", "", ""].entries()) link.run(i + 1, domain, `c${i + 1}`);
    const random = rng(3);
    const day = db.query("INSERT INTO visit_days (day, short_url_id, total, bots) VALUES (?, ?, ?, ?)");
    // Link 99 was deleted: its roll-ups wait for the purge, and count for no domain.
    for (const id of [1, 2, 3, 4, 5, 99]) for (let d = 0; d < 30; d++) if (random() < 0.7) day.run(d, id, 3 + d, d % 3);
    runMigrations(db, ":memory:");
    expect(sumsOf(db)).toEqual(bruteSums(db));
    expect(brute(db, "a", 0, 29).total).toBeGreaterThan(0);
  });
});
