/**
 * Another database of this shortener as the source of `shortener import db FILE`: in practice the old primary's,
 * set aside when it was demoted after a promotion (runbooks/promote-standby.md, step 7). With the default
 * `--durability local`, a primary cut off from the bucket but not from its clients acknowledged links its Litestream
 * could not upload; the promotion restored what was uploaded, and those links are only in that file. Link ids are
 * AUTOINCREMENT and never reused, so they are exactly the file's links with ids above the restored state's last one
 * (`promote` keeps it in replica.env).
 *
 * The file is copied first, beside it (with its -wal), so it stays as it was set aside; the copy is opened as `serve`
 * opens a database (migrated to this build's schema) and read through the REST API's own handler in this process,
 * with a key made in the copy for the read: each link, its redirect rules and its visits come out exactly as
 * `import shlink` reads them from a running node, and are written the same way.
 */
import { copyFileSync, existsSync, mkdtempSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { createApp } from "../app";
import { loadConfig } from "../config";
import { UsageError } from "../errors";
import { createRestApp } from "../http/rest/rest-app";
import { formatSize } from "../lib/size";
import { openDatabase } from "../storage/database";
import { lineageOf } from "../storage/database-lineage";
import { currentVersion, LATEST_VERSION } from "../storage/migrations";
import { ShortUrlStore } from "../storage/short-url-store";
import type { StagedVisit } from "../storage/visit-staging";
import { VISIT_COLUMNS } from "../storage/visit-store";
import { diskFreeBytes, fileSize } from "../telemetry/system-stats";
import { ShlinkSource } from "./shlink-source";

type Json = Record<string, unknown>;
type Value = string | number | null;

/** The columns a visit is staged with (VisitStaging): from `at` on. */
const STAGED = VISIT_COLUMNS.slice(2);

/** The base URL the source's links are read under (never reached over the network: the handler is in this process). */
const IN_PROCESS = "http://import-db.invalid";

export interface DatabaseSource extends AsyncDisposable {
  source: ShlinkSource;
  /** Its links with ids above the one given, oldest first, as its API gives them. */
  links(): AsyncGenerator<Json>;
  /** How many links that is. */
  readonly count: number;
  /** The file's lineage as it was set aside (storage/database-lineage.ts), null when its schema predates lineages. */
  readonly lineage: string | null;
  /**
   * Its raw visits with ids above `afterVisitId` to links with ids through `throughLinkId` (the links a promotion's
   * restored state shares with it, under the same ids), oldest first, in batches of up to `size`.
   */
  laterVisits(afterVisitId: number, throughLinkId: number, size: number): Generator<LaterVisit[]>;
}

/** One of the source's later visits: its id, its link's id, domain key and code, and the visit as staged. */
export interface LaterVisit {
  id: number;
  link: number;
  domain: string;
  shortCode: string;
  visit: StagedVisit;
}

/**
 * Refuses what is not a shortener database this build can read: `copy`, read as `file` (the copy, so that not even
 * a -shm file appears beside the set-aside one). Returns its lineage, read before the copy is migrated (a file
 * older than lineages would get a new one each time).
 */
function checkSchema(copy: string, file: string): string | null {
  let version: number;
  let lineage: string | null;
  try {
    const db = openDatabase(copy, { readonly: true });
    try {
      version = currentVersion(db);
      lineage = version > LATEST_VERSION ? null : lineageOf(db);
    } finally {
      db.close();
    }
  } catch (error) {
    throw new UsageError(`${file} cannot be read as a SQLite database (${error instanceof Error ? error.message : String(error)})`);
  }
  if (version === 0) throw new UsageError(`${file} is not a shortener database (schema version 0)`);
  if (version > LATEST_VERSION) {
    throw new UsageError(
      `${file} has schema version ${version}, newer than this binary knows (${LATEST_VERSION}): run the newer shortener`,
    );
  }
  return lineage;
}

/**
 * Refuses a copy that would leave less than `keepFree` bytes on the file's own disk: beside the file, where the
 * operator put it (on the data disk, the runbook's before-demotion directory), a full disk would stop the node.
 */
function checkRoom(file: string, keepFree: number): void {
  const size = fileSize(file) + fileSize(`${file}-wal`);
  const free = diskFreeBytes(dirname(file));
  if (free - size < keepFree) {
    throw new UsageError(
      `copying ${file} (${formatSize(size)}) beside it would leave ${formatSize(Math.max(0, free - size))} free on that disk, under --min-disk-free (${formatSize(keepFree)}): move the file to a disk with room, and name it there`,
    );
  }
}

/**
 * Opens a copy of `file` in a directory beside it (removed on dispose), refused when that would leave less than
 * `keepFree` bytes on its disk, and reads its links after `afterLinkId`.
 */
export async function openDatabaseSource(file: string, afterLinkId: number, keepFree: number): Promise<DatabaseSource> {
  if (!existsSync(file)) throw new UsageError(`there is no database at ${file}`);
  checkRoom(file, keepFree);
  const dir = mkdtempSync(join(dirname(file), ".import-db-"));
  const removeDir = () => rmSync(dir, { recursive: true, force: true });
  let app: ReturnType<typeof createApp>;
  let lineage: string | null;
  try {
    copyFileSync(file, join(dir, "shortener.db"));
    if (existsSync(`${file}-wal`)) copyFileSync(`${file}-wal`, join(dir, "shortener.db-wal"));
    lineage = checkSchema(join(dir, "shortener.db"), file);
    // This build's defaults and nothing from the environment: no replication, no lease, no webhooks sent from it.
    app = createApp(loadConfig(new Map([["data-dir", dir]]), {}));
  } catch (error) {
    removeDir();
    throw error;
  }
  const dispose = async () => {
    try {
      await app[Symbol.asyncDispose]();
    } finally {
      removeDir();
    }
  };
  try {
    const rest = createRestApp(app);
    const source = new ShlinkSource(
      IN_PROCESS,
      app.apiKeys.create("import-db", "admin", null),
      () => Promise.resolve(),
      (url, init) => rest.handle(new Request(url, init)),
    );
    const after = new ShortUrlStore(app.db).createdAfterId(afterLinkId);
    const later = app.db.query<Value[], [number, number, number]>(
      `SELECT v.id, v.short_url_id, s.domain, s.short_code, ${STAGED.map((c) => `v.${c}`).join(", ")}
       FROM visits v JOIN short_urls s ON s.id = v.short_url_id
       WHERE v.id > ?1 AND v.short_url_id <= ?2 ORDER BY v.id LIMIT ?3`,
    );
    return {
      source,
      count: after.length,
      lineage,
      async *links() {
        for (const { domain, shortCode } of after) {
          const link = await source.link(shortCode, domain === "" ? null : domain);
          if (link !== null) yield link;
        }
      },
      *laterVisits(afterVisitId, throughLinkId, size) {
        for (let after = afterVisitId; ; ) {
          const rows = later.values(after, throughLinkId, size);
          if (rows.length === 0) return;
          after = rows[rows.length - 1]?.[0] as number;
          yield rows.map(([id, link, domain, shortCode, ...visit]) => ({
            id: id as number,
            link: link as number,
            domain: domain as string,
            shortCode: shortCode as string,
            visit: visit as StagedVisit,
          }));
        }
      },
      [Symbol.asyncDispose]: dispose,
    };
  } catch (error) {
    await dispose();
    throw error;
  }
}
