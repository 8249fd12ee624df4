/**
 * Prepared statements kept per SQL text, for stores whose SQL is put together per call from a few fixed parts
 * (a lane's condition, a bot filter): each distinct text is prepared once.
 */
import type { Database, Statement } from "bun:sqlite";

export type Binding = string | number | null;

export class StatementCache {
  readonly #statements = new Map<string, Statement>();

  constructor(private readonly db: Database) {}

  get<T>(sql: string): Statement<T, Binding[]> {
    let statement = this.#statements.get(sql);
    if (statement === undefined) {
      statement = this.db.query(sql);
      this.#statements.set(sql, statement);
    }
    return statement as Statement<T, Binding[]>;
  }
}
