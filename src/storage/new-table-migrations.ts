/**
 * Migrations 14 on: each adds a table and changes none that holds data (no snapshot before it), its schema beside the
 * rest of that table's SQL in its store. The old colour of a blue/green switch, still running, does not know the table
 * (README, Upgrading).
 */
import { AUDIT_EVENTS_SCHEMA } from "./audit-store";
import { DATABASE_LINEAGE_SCHEMA, LINEAGE_VERSION } from "./database-lineage";
import { LINK_CHANGES_SCHEMA } from "./link-change-store";
import { LINK_PASSWORDS_SCHEMA } from "./link-password-store";
import type { Migration } from "./migrations";
import { TAKEN_SHIPMENTS_SCHEMA } from "./shipment-ledger";

export const NEW_TABLE_MIGRATIONS: readonly Migration[] = [
  // The audit history: who changed what, when.
  { version: 14, changesExisting: false, sql: AUDIT_EVENTS_SCHEMA },
  // Password-protected links' hashes.
  { version: 15, changesExisting: false, sql: LINK_PASSWORDS_SCHEMA },
  // Standby visits' shipments taken, and `import db`'s batches.
  { version: 16, changesExisting: false, sql: TAKEN_SHIPMENTS_SCHEMA },
  // The journal of link changes another process serving this database drops from its cache (the other colour).
  { version: 17, changesExisting: false, sql: LINK_CHANGES_SCHEMA },
  // The lineage `import db` names what it takes from a file by.
  { version: LINEAGE_VERSION, changesExisting: false, sql: DATABASE_LINEAGE_SCHEMA },
];
