import { Database } from "bun:sqlite";
import { expect, test } from "bun:test";
import { runMigrations } from "./migrations";
import { IMPORTED_BATCH_PREFIX, ShipmentLedger } from "./shipment-ledger";

test("importedBatches changes with each batch `import db` keeps, and with nothing else in the ledger", () => {
  const db = new Database(":memory:", { strict: true });
  runMigrations(db, ":memory:");
  const ledger = new ShipmentLedger(db);
  const empty = ledger.importedBatches();
  // A standby's shipment, and names that sort just outside the prefix, are not the import's.
  ledger.add("standby-1/2026-12-06T10:00:00.000Z-1.ndjson", 10, 1_000);
  ledger.add("import-db;later", 10, 2_000);
  ledger.add("import-da:x", 10, 2_000);
  expect(ledger.importedBatches()).toBe(empty);

  ledger.add(`${IMPORTED_BATCH_PREFIX}links-7:visits-1-5`, 5, 3_000);
  const one = ledger.importedBatches();
  expect(one).not.toBe(empty);
  // A second batch written in the same millisecond still changes it.
  ledger.add(`${IMPORTED_BATCH_PREFIX}links-7:visits-6-9`, 4, 3_000);
  expect(ledger.importedBatches()).not.toBe(one);
  expect(ledger.taken(`${IMPORTED_BATCH_PREFIX}links-7:visits-6-9`)).toBe(4);
});
