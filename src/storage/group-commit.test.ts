import { Database } from "bun:sqlite";
import { describe, expect, test } from "bun:test";
import { GroupCommit } from "./group-commit";

function memoryDb(): Database {
  const db = new Database(":memory:");
  db.exec("CREATE TABLE t (v TEXT PRIMARY KEY)");
  return db;
}

describe("GroupCommit", () => {
  test("commits writes submitted together in one transaction", async () => {
    const db = memoryDb();
    let commits = 0;
    // Counts outer (immediate) transactions; nested ones are savepoints and are called directly.
    const counting = new Proxy(db, {
      get(target, prop) {
        if (prop === "transaction") {
          return (fn: () => unknown) => {
            const tx = target.transaction(fn);
            const wrapped = () => tx();
            wrapped.immediate = () => {
              commits++;
              return tx.immediate();
            };
            return wrapped;
          };
        }
        const value = Reflect.get(target, prop);
        return typeof value === "function" ? value.bind(target) : value;
      },
    });
    const writes = new GroupCommit(counting);
    const results = await Promise.all(
      Array.from({ length: 50 }, (_, i) => writes.run(() => db.run("INSERT INTO t VALUES (?)", [`v${i}`]).changes)),
    );
    expect(results).toEqual(Array(50).fill(1));
    expect(commits).toBe(1);
    expect(db.query("SELECT count(*) AS n FROM t").get()).toEqual({ n: 50 });
  });

  test("rolls back only the write that throws; the others commit", async () => {
    const db = memoryDb();
    const writes = new GroupCommit(db);
    const outcomes = await Promise.allSettled([
      writes.run(() => db.run("INSERT INTO t VALUES ('a')")),
      writes.run(() => {
        db.run("INSERT INTO t VALUES ('b')");
        throw new Error("refused");
      }),
      writes.run(() => db.run("INSERT INTO t VALUES ('c')")),
    ]);
    expect(outcomes.map((o) => o.status)).toEqual(["fulfilled", "rejected", "fulfilled"]);
    expect(db.query("SELECT v FROM t ORDER BY v").all()).toEqual([{ v: "a" }, { v: "c" }]);
  });
});
