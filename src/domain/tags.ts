/** Tag management: list, stats, rename, delete. Tags never change where a code redirects, so no cache work. */
import { forbiddenTagOperation, tagConflict, tagNotFound } from "../errors";
import type { GroupCommit } from "../storage/group-commit";
import type { TagStatsRow, TagStore } from "../storage/tag-store";
import type { ApiKey } from "./api-keys";
import { type AuditLog, keyActor } from "./audit-log";
import type { TagOrder } from "./list-query";
import { rethrowUnconfirmed } from "./unconfirmed-write";

const COUNTS: Record<Exclude<TagOrder["field"], "tag">, (row: TagStatsRow) => number> = {
  shortUrlsCount: (row) => row.short_urls,
  visits: (row) => row.visits_total,
  nonBotVisits: (row) => row.visits_total - row.visits_bots,
};

export class TagService {
  constructor(
    private readonly store: TagStore,
    private readonly writes: GroupCommit,
    /** Throws (for example 503 on a standby) when writes must be refused. */
    private readonly guardWrites: () => void = () => {},
    /** Reads the stats off the event loop (storage/background-reader.ts); by default store.stats here. */
    private readonly readStats: () => Promise<TagStatsRow[]> = async () => store.stats(),
    /** Records who renamed or deleted tags, in the change's transaction. */
    private readonly audit?: AuditLog,
  ) {}

  #assertCanWrite(key: ApiKey, operation: "rename" | "delete"): void {
    if (key.role === "read-only") throw forbiddenTagOperation(`You are not allowed to ${operation} tags`);
    this.guardWrites();
  }

  /** A write through the group commit; with replicated durability, an unconfirmed one becomes a 503. */
  #write(write: () => void): Promise<void> {
    return this.writes.run(write).catch(rethrowUnconfirmed());
  }

  /** Names in name order; Shlink orders this list by name whatever the field, so only the direction counts. */
  names(searchTerm?: string, dir: TagOrder["dir"] = "ASC"): string[] {
    const names = this.store.names(searchTerm);
    return dir === "DESC" ? names.toReversed() : names;
  }

  async stats(searchTerm?: string, order: TagOrder = { field: "tag", dir: "ASC" }): Promise<TagStatsRow[]> {
    const rows = await this.readStats();
    const found = searchTerm ? rows.filter((r) => r.name.toLowerCase().includes(searchTerm.toLowerCase())) : rows;
    if (order.field === "tag") return order.dir === "DESC" ? found.toReversed() : found;
    const count = COUNTS[order.field];
    const sign = order.dir === "ASC" ? 1 : -1;
    // The rows come in name order and the sort is stable, so equal counts stay by name, ascending, as in Shlink.
    return found.toSorted((a, b) => sign * (count(a) - count(b)));
  }

  async rename(oldName: string, newName: string, key: ApiKey): Promise<void> {
    this.#assertCanWrite(key, "rename");
    await this.#write(() => {
      if (!this.store.exists(oldName)) throw tagNotFound(oldName);
      if (oldName === newName) return;
      if (this.store.exists(newName)) throw tagConflict(oldName, newName);
      this.store.rename(oldName, newName);
      this.audit?.record(keyActor(key), "tag.renamed", `tag ${newName}`, { from: oldName, to: newName });
    });
  }

  async delete(names: readonly string[], key: ApiKey): Promise<void> {
    this.#assertCanWrite(key, "delete");
    await this.#write(() => {
      // Shlink ignores names that are not tags: the history names only the tags that went.
      const deleted = [...new Set(names)].filter((name) => this.store.exists(name));
      for (const name of deleted) this.store.delete(name);
      if (deleted.length > 0) this.audit?.record(keyActor(key), "tags.deleted", `tags ${deleted.join(", ")}`, { tags: deleted });
    });
  }
}
