/**
 * Group commit: writes submitted in the same tick share one immediate transaction (one fsync under
 * synchronous=FULL), each inside its own savepoint so a failing write rolls back alone.
 * A write's promise settles only after the shared COMMIT, so nothing is acknowledged before it is durable.
 */
import type { Database } from "bun:sqlite";

interface Pending {
  run: () => unknown;
  resolve: (value: unknown) => void;
  reject: (error: unknown) => void;
}

export class GroupCommit {
  #queue: Pending[] = [];
  #scheduled = false;

  constructor(
    private readonly db: Database,
    private readonly maxBatch = 256,
  ) {}

  /** Runs `write` inside the next shared transaction and resolves with its result once committed. */
  run<T>(write: () => T): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.#queue.push({ run: write, resolve: resolve as (value: unknown) => void, reject });
      if (!this.#scheduled) {
        this.#scheduled = true;
        setImmediate(() => this.#drain());
      }
    });
  }

  #drain(): void {
    this.#scheduled = false;
    while (this.#queue.length > 0) {
      const batch = this.#queue.splice(0, this.maxBatch);
      const outcomes: ({ ok: true; value: unknown } | { ok: false; error: unknown })[] = [];
      try {
        this.db
          .transaction(() => {
            for (const item of batch) {
              try {
                // A nested bun:sqlite transaction is a SAVEPOINT: a throwing write is rolled back alone.
                outcomes.push({ ok: true, value: this.db.transaction(item.run)() });
              } catch (error) {
                outcomes.push({ ok: false, error });
              }
            }
          })
          .immediate();
      } catch (error) {
        for (const item of batch) item.reject(error);
        continue;
      }
      batch.forEach((item, i) => {
        const outcome = outcomes[i];
        if (outcome?.ok) item.resolve(outcome.value);
        else item.reject(outcome?.error);
      });
    }
  }
}
