import type { Database } from "bun:sqlite";

/**
 * The database as stores see it, with every statement they prepare (`db.query`) recorded in `statements`, so a test
 * can ask SQLite how it runs each one (EXPLAIN QUERY PLAN).
 */
export function recordingStatements(db: Database): { recording: Database; statements: Set<string> } {
  const statements = new Set<string>();
  const recording = new Proxy(db, {
    get(target, name) {
      if (name === "query")
        return (sql: string) => {
          statements.add(sql);
          return target.query(sql);
        };
      const value = Reflect.get(target, name, target);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
  return { recording, statements };
}
