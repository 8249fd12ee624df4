/** Migration 13's data change, in TypeScript: SQLite's lower() and trim() know only ASCII, the API's rule does not. */
import type { Database } from "bun:sqlite";
import { normalizeTagName } from "../lib/tag-name";

interface TagRow {
  id: number;
  name: string;
}

/**
 * Renames every tag to its normal form and merges the tags that then share a name ("Foo Bar" and "foo-bar"): the
 * links of the merged ones are moved to the tag kept, each link once, so no link loses a tag and no name is stored
 * twice. Runs inside the migration's transaction.
 */
/** Whether any stored tag is not in Shlink's form: only then does migration 13 change (and first copy) the database. */
export function tagNamesNeedNormalizing(db: Database): boolean {
  return db
    .query<{ name: string }, []>("SELECT name FROM tags")
    .all()
    .some((tag) => normalizeTagName(tag.name) !== tag.name);
}

export function normalizeStoredTagNames(db: Database): void {
  const groups = new Map<string, TagRow[]>();
  for (const tag of db.query<TagRow, []>("SELECT id, name FROM tags ORDER BY id").all()) {
    const name = normalizeTagName(tag.name);
    const group = groups.get(name);
    if (group) group.push(tag);
    else groups.set(name, [tag]);
  }
  const moveLinks = db.query<unknown, [number, number]>(
    "INSERT OR IGNORE INTO short_url_tags (short_url_id, tag_id) SELECT short_url_id, ? FROM short_url_tags WHERE tag_id = ?",
  );
  const unlink = db.query<unknown, [number]>("DELETE FROM short_url_tags WHERE tag_id = ?");
  const remove = db.query<unknown, [number]>("DELETE FROM tags WHERE id = ?");
  const rename = db.query<unknown, [string, number]>("UPDATE tags SET name = ? WHERE id = ?");
  for (const [name, group] of groups) {
    // The tag already so named is kept (else the oldest). A tag holding a group's name belongs to that group (the
    // rule changes nothing twice), so the rename cannot collide. Nothing but short_url_tags refers to a tag's id.
    const kept = group.find((t) => t.name === name) ?? (group[0] as TagRow);
    for (const tag of group) {
      if (tag === kept) continue;
      moveLinks.run(kept.id, tag.id);
      unlink.run(tag.id);
      remove.run(tag.id);
    }
    if (kept.name !== name) rename.run(name, kept.id);
  }
}
