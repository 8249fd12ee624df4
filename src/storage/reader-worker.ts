/**
 * The background reader's thread (see background-reader.ts): its own read-only connection, answering the API's
 * reads that sort or scan every link with the same store code the main thread would run, so that they never hold
 * the event loop that serves redirects.
 */
import type { Database } from "bun:sqlite";
import { openDatabase } from "./database";
import { type ListFilter, type OrderField, type ShortUrlRow, ShortUrlStore } from "./short-url-store";
import { type TagStatsRow, TagStore } from "./tag-store";

declare const self: Worker;

export type ReadRequest =
  | {
      id: number;
      op: "list";
      filter: ListFilter;
      order: { field: OrderField; dir: "ASC" | "DESC" };
      limit: number;
      offset: number;
    }
  | { id: number; op: "tagStats" };

export type ReadResult = { rows: ShortUrlRow[]; total: number } | TagStatsRow[];

export type ReadReply = { id: number; result: ReadResult } | { id: number; error: string };

let db: Database | null = null;
let stores: { shortUrls: ShortUrlStore; tags: TagStore } | null = null;

function read(request: ReadRequest): ReadResult {
  if (stores === null) throw new Error("the reader worker has no database open");
  if (request.op === "tagStats") return stores.tags.stats();
  return stores.shortUrls.list(request.filter, request.order, request.limit, request.offset);
}

self.onmessage = (event: MessageEvent<{ path: string } | ReadRequest | "stop">) => {
  const data = event.data;
  if (data === "stop") {
    db?.close();
    db = null;
    stores = null;
    postMessage("stopped");
    return;
  }
  if ("path" in data) {
    db = openDatabase(data.path, { readonly: true });
    stores = { shortUrls: new ShortUrlStore(db), tags: new TagStore(db) };
    return;
  }
  try {
    postMessage({ id: data.id, result: read(data) } satisfies ReadReply);
  } catch (error) {
    postMessage({ id: data.id, error: error instanceof Error ? error.message : String(error) } satisfies ReadReply);
  }
};
