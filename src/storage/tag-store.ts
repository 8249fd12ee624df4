/** All SQL for the tags and short_url_tags tables. */
import type { Database } from "bun:sqlite";

export interface TagStatsRow {
  name: string;
  short_urls: number;
  visits_total: number;
  visits_bots: number;
}

export class TagStore {
  readonly #db: Database;
  readonly #ensure;
  readonly #idOf;
  readonly #link;
  readonly #unlinkAll;
  readonly #rename;
  readonly #delete;

  constructor(db: Database) {
    this.#db = db;
    this.#ensure = db.query<unknown, [string]>("INSERT INTO tags (name) VALUES (?) ON CONFLICT (name) DO NOTHING");
    this.#idOf = db.query<{ id: number }, [string]>("SELECT id FROM tags WHERE name = ?");
    this.#link = db.query<unknown, [number, number]>("INSERT OR IGNORE INTO short_url_tags (short_url_id, tag_id) VALUES (?, ?)");
    this.#unlinkAll = db.query<unknown, [number]>("DELETE FROM short_url_tags WHERE short_url_id = ?");
    this.#rename = db.query<unknown, [string, string]>("UPDATE tags SET name = ? WHERE name = ?");
    this.#delete = db.query<unknown, [string]>("DELETE FROM tags WHERE name = ?");
  }

  /** Replaces the tags of a link (call inside a write transaction). */
  setTags(shortUrlId: number, names: readonly string[]): void {
    this.#unlinkAll.run(shortUrlId);
    for (const name of names) {
      this.#ensure.run(name);
      const tag = this.#idOf.get(name) as { id: number };
      this.#link.run(shortUrlId, tag.id);
    }
  }

  /** Tag names per link id, sorted, for a page of links. */
  tagsFor(ids: readonly number[]): Map<number, string[]> {
    const result = new Map<number, string[]>(ids.map((id) => [id, []]));
    if (ids.length === 0) return result;
    const rows = this.#db
      .query(
        `SELECT st.short_url_id AS id, t.name AS name FROM short_url_tags st JOIN tags t ON t.id = st.tag_id
         WHERE st.short_url_id IN (SELECT value FROM json_each(?)) ORDER BY t.name`,
      )
      .all(JSON.stringify(ids)) as { id: number; name: string }[];
    for (const row of rows) result.get(row.id)?.push(row.name);
    return result;
  }

  names(searchTerm?: string): string[] {
    if (!searchTerm) return (this.#db.query("SELECT name FROM tags ORDER BY name").all() as { name: string }[]).map((r) => r.name);
    const term = `%${searchTerm.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
    return (this.#db.query("SELECT name FROM tags WHERE name LIKE ? ESCAPE '\\' ORDER BY name").all(term) as { name: string }[]).map(
      (r) => r.name,
    );
  }

  stats(): TagStatsRow[] {
    // Prepared when asked for (and cached by bun:sqlite): `check` builds the app on a database that may predate link_visits.
    // short_url_tags rows go with their link (ON DELETE CASCADE), so they count links without reading short_urls' wide
    // rows: 2.9 s against 0.27 s for 1 000 000 tagged links.
    return this.#db
      .query<TagStatsRow, []>(
        `SELECT t.name AS name, count(st.short_url_id) AS short_urls,
           coalesce(sum(v.total), 0) AS visits_total, coalesce(sum(v.bots), 0) AS visits_bots
         FROM tags t LEFT JOIN short_url_tags st ON st.tag_id = t.id LEFT JOIN link_visits v ON v.short_url_id = st.short_url_id
         GROUP BY t.id ORDER BY t.name`,
      )
      .all();
  }

  exists(name: string): boolean {
    return this.#idOf.get(name) !== null;
  }

  rename(oldName: string, newName: string): void {
    this.#rename.run(newName, oldName);
  }

  delete(name: string): void {
    this.#delete.run(name);
  }
}
