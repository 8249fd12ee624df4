import { Database } from "bun:sqlite";
import { expect, test } from "bun:test";
import { runMigrations } from "./migrations";
import { IMPORTED_BATCH_PREFIX, importedSince, ShipmentLedger } from "./shipment-ledger";

const DAY = 86_400_000;

test("importedBatches moves on with each batch `import db` keeps, and with nothing else in the ledger", () => {
  const db = new Database(":memory:", { strict: true });
  runMigrations(db, ":memory:");
  const ledger = new ShipmentLedger(db);
  const empty = ledger.importedBatches();
  expect(empty).toEqual({ latest: 0, batches: 0 });
  // A standby's shipment, and names that sort just outside the prefix, are not the import's.
  ledger.add("standby-1/2026-12-06T10:00:00.000Z-1.ndjson", 10, 1_000);
  ledger.add("import-db;later", 10, 2_000);
  ledger.add("import-da:x", 10, 2_000);
  expect(ledger.importedBatches()).toEqual(empty);

  ledger.add(`${IMPORTED_BATCH_PREFIX}links-7:visits-1-5`, 5, 3_000);
  const one = ledger.importedBatches();
  expect(importedSince(empty, one)).toBe(true);
  expect(importedSince(one, ledger.importedBatches())).toBe(false);
  // A second batch written in the same millisecond moves it on too.
  ledger.add(`${IMPORTED_BATCH_PREFIX}links-7:visits-6-9`, 4, 3_000);
  const two = ledger.importedBatches();
  expect(importedSince(one, two)).toBe(true);
  expect(ledger.taken(`${IMPORTED_BATCH_PREFIX}links-7:visits-6-9`)).toBe(4);
  ledger.add(`${IMPORTED_BATCH_PREFIX}links-70:visits-1-2`, 2, 3_001);
  expect(ledger.namesStartingWith(`${IMPORTED_BATCH_PREFIX}links-7:`)).toEqual([
    `${IMPORTED_BATCH_PREFIX}links-7:visits-1-5`,
    `${IMPORTED_BATCH_PREFIX}links-7:visits-6-9`,
  ]);
  const three = ledger.importedBatches();

  // A month on, a standby's shipment taken prunes the old shipment's name, but none of the import's: a run from the
  // same file then would take those visits again. Nor is that a new batch.
  ledger.add("standby-1/2027-01-06T10:00:00.000Z-1.ndjson", 10, 3_000 + 31 * DAY);
  expect(ledger.has("standby-1/2026-12-06T10:00:00.000Z-1.ndjson")).toBe(false);
  expect(ledger.taken(`${IMPORTED_BATCH_PREFIX}links-7:visits-1-5`)).toBe(5);
  expect(ledger.namesStartingWith(IMPORTED_BATCH_PREFIX)).toHaveLength(3);
  expect(importedSince(three, ledger.importedBatches())).toBe(false);
});
