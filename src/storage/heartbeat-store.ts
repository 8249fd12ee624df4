/** All SQL for the heartbeat table: one row the primary rewrites every second, so a replica's age is measurable. */
import type { Database } from "bun:sqlite";
import { relaxedWrite } from "./database";

export class HeartbeatStore {
  // Prepared on first use: `check` opens databases that may predate the table.
  #beat: ReturnType<Database["query"]> | undefined;
  #latest: ReturnType<Database["query"]> | undefined;

  constructor(private readonly db: Database) {}

  /**
   * Records `at` (epoch ms) as the newest heartbeat, in its own immediate transaction (no fsync wait), waiting for
   * another process's write lock on timers (relaxedWrite).
   */
  async beat(at: number): Promise<void> {
    this.#beat ??= this.db.query("UPDATE heartbeat SET at = ? WHERE id = 1");
    await relaxedWrite(this.db, () => this.#beat?.run(at));
  }

  /** The newest heartbeat (epoch ms), or null if none was written yet. */
  latest(): number | null {
    this.#latest ??= this.db.query("SELECT at FROM heartbeat WHERE id = 1");
    const row = this.#latest.get() as { at: number } | null;
    return row === null || row.at === 0 ? null : row.at;
  }
}
