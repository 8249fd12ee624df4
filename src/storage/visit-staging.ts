/**
 * A scratch SQLite file for `shortener import`: the visits of the links being imported, fetched page by page, held on
 * disk rather than in memory until they are written to the database together with their links, oldest first. It
 * lives in a directory of its own beside the database (the data volume has room for visits; /tmp may be memory).
 * Nothing in it needs to survive a crash (the import starts over), so it has no journal and no fsync, and disposing
 * of it removes it.
 */
import { Database } from "bun:sqlite";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { UNLOCATED_COLUMNS, VISIT_COLUMNS } from "./visit-store";

type Value = string | number | null;

/** A visit as staged: its VISIT_COLUMNS values after short_url_id and orphan_type, every location column included. */
export type StagedVisit = Value[];

/** Columns kept: at onwards (remote_addr stays null: a Shlink API does not give addresses). */
const KEPT = VISIT_COLUMNS.slice(2);
const LOCATION_FROM = UNLOCATED_COLUMNS - 2;

/** Whether a process with this pid exists (signal 0 checks without sending anything). */
function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as { code?: string }).code === "EPERM";
  }
}

export class VisitStaging implements Disposable {
  readonly #dir: string;
  readonly #db: Database;
  readonly #add;
  readonly #of;
  #seq = 0;

  /**
   * `parent`: where its directory goes (the data dir; the system's temp dir by default). Directories left there by an
   * import that was killed (its process gone) are removed first.
   */
  constructor(parent = tmpdir()) {
    for (const name of readdirSync(parent)) {
      const pid = /^\.import-(\d+)-/.exec(name)?.[1];
      if (pid !== undefined && !processExists(Number(pid))) rmSync(join(parent, name), { recursive: true, force: true });
    }
    this.#dir = mkdtempSync(join(parent, `.import-${process.pid}-`));
    this.#db = new Database(join(this.#dir, "visits.db"));
    this.#db.exec("PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF");
    this.#db.exec(
      `CREATE TABLE staged (link INTEGER NOT NULL, seq INTEGER NOT NULL, ${KEPT.join(", ")}, PRIMARY KEY (link, at, seq)) WITHOUT ROWID`,
    );
    this.#add = this.#db.query<unknown, Value[]>(`INSERT INTO staged VALUES (?, ?, ${KEPT.map(() => "?").join(", ")})`);
    // Pages come newest first, so among visits of the same millisecond the later-staged one is the older.
    this.#of = this.#db.query<Record<string, Value>, [number]>(
      `SELECT ${KEPT.join(", ")} FROM staged WHERE link = ? ORDER BY at, seq DESC`,
    );
  }

  /** Stages visits of the batch's link `link` (a number the caller chooses), each as StagedVisit, in the order given. */
  add(link: number, visits: readonly StagedVisit[]): void {
    this.#db.transaction(() => {
      for (const visit of visits) this.#add.run(link, this.#seq++, ...visit);
    })();
  }

  /**
   * The staged visits of `link`, oldest first, as VisitStore rows of link id `id`: unlocated ones without their
   * location columns (VisitStore.insert's short form).
   */
  *rows(link: number, id: number): Generator<Value[]> {
    for (const row of this.#of.iterate(link)) {
      const values = KEPT.map((column) => row[column] ?? null);
      const located = values.slice(LOCATION_FROM).some((v) => v !== null);
      yield [id, null, ...(located ? values : values.slice(0, LOCATION_FROM))];
    }
  }

  /** Forgets every staged visit (between batches). */
  clear(): void {
    this.#db.exec("DELETE FROM staged");
  }

  [Symbol.dispose](): void {
    this.#db.close();
    rmSync(this.#dir, { recursive: true, force: true });
  }
}
