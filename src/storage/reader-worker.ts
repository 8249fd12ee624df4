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

/** What ShortUrlStore.list and openList take. */
interface ListArgs {
  filter: ListFilter;
  order: { field: OrderField; dir: "ASC" | "DESC" };
  limit: number;
  offset: number;
}

export type ReadRequest =
  | ({ id: number; op: "list" } & ListArgs)
  | { id: number; op: "tagStats" }
  /** Opens a listing read in batches (see ShortUrlStore.openList): the reply has its first batch. */
  | ({ id: number; op: "openList"; batch: number } & ListArgs)
  /** The next batch of an open listing, named by the id of the request that opened it; closed once empty. */
  | { id: number; op: "nextRows"; listing: number; batch: number }
  | { id: number; op: "closeList"; listing: number };

/** A batch of an open listing; `listing` null when the rows are all of it (read on the calling thread). */
export interface OpenedList {
  rows: ShortUrlRow[];
  listing: number | null;
}

export type ReadResult = { rows: ShortUrlRow[]; total: number } | OpenedList | TagStatsRow[] | null;

export type ReadReply = { id: number; result: ReadResult } | { id: number; error: string };

let db: Database | null = null;
let stores: { shortUrls: ShortUrlStore; tags: TagStore } | null = null;
type Listing = ReturnType<ShortUrlStore["openList"]>;
/** Open listings by the id of the request that opened them. */
const listings = new Map<number, Listing>();

/** The next batch of a listing; an empty one closes it (its statement and read snapshot go). */
function nextRows(id: number, listing: Listing, batch: number): ShortUrlRow[] {
  const rows = listing.next(batch);
  if (rows.length === 0) {
    listing.close();
    listings.delete(id);
  }
  return rows;
}

function read(request: ReadRequest): ReadResult {
  if (stores === null) throw new Error("the reader worker has no database open");
  switch (request.op) {
    case "tagStats":
      return stores.tags.stats();
    case "list":
      return stores.shortUrls.list(request.filter, request.order, request.limit, request.offset);
    case "openList": {
      const listing = stores.shortUrls.openList(request.filter, request.order, request.limit, request.offset);
      listings.set(request.id, listing);
      return { rows: nextRows(request.id, listing, request.batch), listing: request.id };
    }
    case "nextRows": {
      const listing = listings.get(request.listing);
      if (listing === undefined) throw new Error(`no open listing ${request.listing}`);
      return { rows: nextRows(request.listing, listing, request.batch), listing: request.listing };
    }
    case "closeList":
      listings.get(request.listing)?.close();
      listings.delete(request.listing);
      return null;
  }
}

self.onmessage = (event: MessageEvent<{ path: string; pageCache: boolean } | ReadRequest | "stop">) => {
  const data = event.data;
  if (data === "stop") {
    for (const listing of listings.values()) listing.close();
    listings.clear();
    db?.close();
    db = null;
    stores = null;
    postMessage("stopped");
    return;
  }
  if ("path" in data) {
    db = openDatabase(data.path, { readonly: true, pageCache: data.pageCache });
    stores = { shortUrls: new ShortUrlStore(db), tags: new TagStore(db) };
    return;
  }
  try {
    postMessage({ id: data.id, result: read(data) } satisfies ReadReply);
  } catch (error) {
    postMessage({ id: data.id, error: error instanceof Error ? error.message : String(error) } satisfies ReadReply);
  }
};
