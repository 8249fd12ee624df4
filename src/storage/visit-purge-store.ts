/**
 * All SQL that deletes raw visit rows: past the retention period (oldest first, by id), and those of deleted links
 * together with their roll-ups. Each call is one short immediate transaction; the caller yields between calls.
 * Retention never reduces roll-ups (visit_days, orphan_visit_days, visit_totals, link_visits): it counts
 * what it deleted in visits_purged (per link) and visit_kinds_purged (per kind), so the raw rows left are the
 * totals less the purged counts. A deleted link's roll-ups go once its last raw row has gone. The retention job
 * also re-sums each closed day's per-domain roll-ups from the links' (resumDomainDay).
 */
import type { Database } from "bun:sqlite";
import { relaxedWrite } from "./database";
import { type Lane, VisitBuckets } from "./visit-buckets";

export interface PurgeResult {
  /** Raw rows deleted. */
  deleted: number;
  /** True when the batch was full: there may be more to delete now. */
  more: boolean;
}

/** A link id seen in the roll-ups, and whether the link still exists. */
export interface RolledUpLink {
  id: number;
  live: boolean;
}

interface OldRow {
  id: number;
  at: number;
  short_url_id: number | null;
  orphan_type: string | null;
}

const linkLane = (id: number): Lane => ({ kind: "link", id });

export class VisitPurgeStore {
  readonly #oldest;
  readonly #deleteUpTo;
  readonly #addLinkPurged;
  readonly #addKindPurged;
  readonly #linksAfter;
  readonly #linkDays;
  readonly #linkPurged;
  readonly #subtractTotals;
  readonly #dropLinkRollups;
  readonly #domainDay;
  readonly #clearDomainDay;
  readonly #sumDomainDay;
  readonly #buckets;

  constructor(private readonly db: Database) {
    this.#buckets = new VisitBuckets(db);
    this.#oldest = db.query<OldRow, [number]>("SELECT id, at, short_url_id, orphan_type FROM visits ORDER BY id LIMIT ?");
    this.#deleteUpTo = db.query<unknown, [number]>("DELETE FROM visits WHERE id <= ?");
    this.#addLinkPurged = db.query<unknown, [number, number]>(
      `INSERT INTO visits_purged (short_url_id, count) VALUES (?1, ?2)
       ON CONFLICT (short_url_id) DO UPDATE SET count = count + ?2`,
    );
    this.#addKindPurged = db.query<unknown, [string, number]>(
      `INSERT INTO visit_kinds_purged (kind, count) VALUES (?1, ?2)
       ON CONFLICT (kind) DO UPDATE SET count = count + ?2`,
    );
    // A skip-scan over visit_days' primary key: one index seek per distinct link, however many days each has.
    this.#linksAfter = db.query<{ id: number; live: number }, [number, number]>(
      `WITH RECURSIVE ids(id, n) AS (
         SELECT (SELECT min(short_url_id) FROM visit_days WHERE short_url_id > ?1), 1
         UNION ALL
         SELECT (SELECT min(short_url_id) FROM visit_days WHERE short_url_id > ids.id), n + 1 FROM ids
         WHERE ids.id IS NOT NULL AND n < ?2
       )
       SELECT id, EXISTS (SELECT 1 FROM short_urls WHERE short_urls.id = ids.id) AS live FROM ids WHERE id IS NOT NULL`,
    );
    this.#linkDays = db.query<{ total: number | null; bots: number | null }, [number]>(
      "SELECT sum(total) AS total, sum(bots) AS bots FROM visit_days WHERE short_url_id = ?",
    );
    this.#linkPurged = db.query<{ count: number }, [number]>("SELECT count FROM visits_purged WHERE short_url_id = ?");
    this.#subtractTotals = db.query<unknown, [number, number]>(
      "UPDATE visit_totals SET total = total - ?1, bots = bots - ?2 WHERE kind = 'non_orphan'",
    );
    this.#domainDay = db.query<{ total: number }, [number]>("SELECT coalesce(sum(total), 0) AS total FROM domain_visit_days WHERE day = ?");
    this.#clearDomainDay = db.query<unknown, [number]>("DELETE FROM domain_visit_days WHERE day = ?");
    this.#sumDomainDay = db.query<unknown, [number]>(
      `INSERT INTO domain_visit_days (domain, day, total, bots)
         SELECT s.domain, d.day, sum(d.total), sum(d.bots) FROM visit_days d JOIN short_urls s ON s.id = d.short_url_id
         WHERE d.day = ? GROUP BY s.domain`,
    );
    // Its visitor hashes need no purge: only the current day's exist, and they go with the day.
    this.#dropLinkRollups = [
      db.query<unknown, [number]>("DELETE FROM visit_days WHERE short_url_id = ?"),
      db.query<unknown, [number]>("DELETE FROM visits_purged WHERE short_url_id = ?"),
      // Visits flushed after the link's deletion left it a counter row again.
      db.query<unknown, [number]>("DELETE FROM link_visits WHERE short_url_id = ?"),
    ];
  }

  /**
   * Deletes up to `limit` of the oldest raw rows (by id) that are older than `cutoff` (epoch ms), stopping at the
   * first younger row: rows are written in time order, give or take one flush, so a row older than a younger one
   * before it waits for a later pass.
   */
  purgeOlderThan(cutoff: number, limit: number): Promise<PurgeResult> {
    return relaxedWrite(this.db, () => {
      const rows = this.#oldest.all(limit);
      let end = 0;
      while (end < rows.length && (rows[end] as OldRow).at < cutoff) end++;
      if (end === 0) return { deleted: 0, more: false };
      const byLink = new Map<number, number>();
      const byKind = new Map<string, number>();
      for (let i = 0; i < end; i++) {
        const row = rows[i] as OldRow;
        const kind = row.short_url_id === null ? (row.orphan_type as string) : "non_orphan";
        byKind.set(kind, (byKind.get(kind) ?? 0) + 1);
        if (row.short_url_id !== null) byLink.set(row.short_url_id, (byLink.get(row.short_url_id) ?? 0) + 1);
      }
      this.#deleteUpTo.run((rows[end - 1] as OldRow).id);
      for (const [id, count] of byLink) this.#addLinkPurged.run(id, count);
      for (const [kind, count] of byKind) this.#addKindPurged.run(kind, count);
      return { deleted: end, more: end === limit };
    });
  }

  /**
   * Sums a day's per-domain roll-ups again from its live links' day rows (a row per link visited that day), in
   * one transaction: they then hold what an older binary's visit flush left out of them. Returns the day's
   * visits in them before and after.
   */
  resumDomainDay(day: number): Promise<{ before: number; after: number }> {
    return relaxedWrite(this.db, () => {
      const before = this.#domainDay.get(day)?.total ?? 0;
      this.#clearDomainDay.run(day);
      this.#sumDomainDay.run(day);
      return { before, after: this.#domainDay.get(day)?.total ?? 0 };
    });
  }

  /** Up to `limit` distinct link ids above `after` that have roll-ups, ascending, each with whether it exists. */
  linksAfter(after: number, limit: number): RolledUpLink[] {
    return this.#linksAfter.all(after, limit).map((row) => ({ id: row.id, live: row.live === 1 }));
  }

  /**
   * Deletes up to `limit` raw rows of a deleted link, counted as purged (so raw rows left = totals less purged
   * holds between batches).
   */
  purgeDeletedLinkRows(shortUrlId: number, limit: number): Promise<PurgeResult> {
    return relaxedWrite(this.db, () => {
      let deleted = 0;
      this.#buckets.eachPart(linkLane(shortUrlId), 0, Number.MAX_SAFE_INTEGER, "asc", (where, params) => {
        const sql = `DELETE FROM visits WHERE id IN (SELECT id FROM visits WHERE ${where} ORDER BY id LIMIT ?)`;
        deleted += this.db.query(sql).run(...params, limit - deleted).changes;
        return deleted === limit;
      });
      if (deleted > 0) this.countLinkPurged(shortUrlId, deleted);
      return { deleted, more: deleted === limit };
    });
  }

  /**
   * Inside a write transaction: counts `count` of a link's raw visits as purged (its own count and the non-orphan
   * kind's), so raw rows left = totals less purged holds: after deleting them, or for an import's visits older than the
   * retention period, never written.
   */
  countLinkPurged(shortUrlId: number, count: number): void {
    this.#addLinkPurged.run(shortUrlId, count);
    this.#addKindPurged.run("non_orphan", count);
  }

  /**
   * Once a deleted link has no raw row left: removes its roll-ups, and takes its visits out of the whole-database
   * totals (as Shlink forgets a deleted link's visits). All its counted visits were purged by then, so the
   * non-orphan purged count drops by the same number. False (nothing changed) while raw rows remain.
   */
  dropDeletedLinkRollups(shortUrlId: number): Promise<boolean> {
    return relaxedWrite(this.db, () => {
      let hasRows = false;
      this.#buckets.eachPart(linkLane(shortUrlId), 0, Number.MAX_SAFE_INTEGER, "asc", (where, params) => {
        hasRows = this.db.query(`SELECT 1 FROM visits WHERE ${where} LIMIT 1`).get(...params) !== null;
        return hasRows;
      });
      if (hasRows) return false;
      const days = this.#linkDays.get(shortUrlId);
      const purged = this.#linkPurged.get(shortUrlId)?.count ?? 0;
      this.#subtractTotals.run(days?.total ?? 0, days?.bots ?? 0);
      if (purged > 0) this.#addKindPurged.run("non_orphan", -purged);
      for (const statement of this.#dropLinkRollups) statement.run(shortUrlId);
      return true;
    });
  }
}
