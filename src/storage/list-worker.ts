/**
 * The background lister's thread (see background-lister.ts): its own read-only connection, answering link listings
 * with the same ShortUrlStore code the main thread would run, so that a listing that sorts or scans every link never
 * holds the event loop that serves redirects.
 */
import type { Database } from "bun:sqlite";
import { openDatabase } from "./database";
import { type ListFilter, type OrderField, type ShortUrlRow, ShortUrlStore } from "./short-url-store";

declare const self: Worker;

export interface ListRequest {
  id: number;
  filter: ListFilter;
  order: { field: OrderField; dir: "ASC" | "DESC" };
  limit: number;
  offset: number;
}

export type ListReply = { id: number; rows: ShortUrlRow[]; total: number } | { id: number; error: string };

let db: Database | null = null;
let store: ShortUrlStore | null = null;

self.onmessage = (event: MessageEvent<{ path: string } | ListRequest | "stop">) => {
  const data = event.data;
  if (data === "stop") {
    db?.close();
    db = null;
    store = null;
    postMessage("stopped");
    return;
  }
  if ("path" in data) {
    db = openDatabase(data.path, { readonly: true });
    store = new ShortUrlStore(db);
    return;
  }
  try {
    if (store === null) throw new Error("the list worker has no database open");
    const { rows, total } = store.list(data.filter, data.order, data.limit, data.offset);
    postMessage({ id: data.id, rows, total } satisfies ListReply);
  } catch (error) {
    postMessage({ id: data.id, error: error instanceof Error ? error.message : String(error) } satisfies ListReply);
  }
};
