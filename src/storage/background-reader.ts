/**
 * The API's heavy reads off the event loop. Ordering 1 000 000 links by visits, searching them, or summing every
 * tag's visits sorts or scans them all: 100-500 ms during which a read on the main thread would hold every redirect
 * (bench/list-links.ts). A worker thread with its own read-only connection runs them instead, with the same store
 * code. Until it is started (commands other than `serve`), after it is stopped, or if it fails, they run on the
 * calling thread. The thread itself starts with the first read: it costs ~10 MiB of memory, which a node nobody
 * browses (a standby, most of the time) need not carry.
 */
import { stopWorker, workerUrl } from "../lib/workers";
import type { OpenedList, ReadReply, ReadRequest, ReadResult } from "./reader-worker";
import type { ListFilter, OrderField, ShortUrlRow } from "./short-url-store";
import type { TagStatsRow } from "./tag-store";

export type ListLinks = (
  filter: ListFilter,
  order: { field: OrderField; dir: "ASC" | "DESC" },
  limit: number,
  offset: number,
) => { rows: ShortUrlRow[]; total: number };

/** A listing read in batches of rows, until an empty one. */
export interface LinkBatches {
  next(): Promise<ShortUrlRow[]>;
  /** Ends the listing before its last batch (its read snapshot goes); harmless after it or twice. */
  close(): void;
}

/** Batches of rows already read whole. */
export function batchesOf(listed: { rows: ShortUrlRow[] }, size: number): LinkBatches {
  let at = 0;
  return {
    next: async () => {
      const batch = listed.rows.slice(at, at + size);
      at += batch.length;
      return batch;
    },
    close: () => {
      at = listed.rows.length;
    },
  };
}

/** The reads, as the calling thread runs them: the fallback. */
export interface ReadHere {
  list: ListLinks;
  tagStats: () => TagStatsRow[];
}

/** A request without its id (given when it is sent). */
type Read = ReadRequest extends infer R ? (R extends ReadRequest ? Omit<R, "id"> : never) : never;

interface Pending {
  read: Read;
  resolve: (result: ReadResult) => void;
  reject: (error: unknown) => void;
}

export class BackgroundReader {
  #worker: Worker | null = null;
  /** Reads go to the worker (started on the first one) between start() and stop(), unless it failed. */
  #enabled = false;
  #failed = false;
  #nextId = 1;
  readonly #pending = new Map<number, Pending>();

  /** `failed` hears why the worker was given up, or why one read ran here instead. */
  /** `pageCache` as openDatabase's for the worker's connection (false on a standby: replica-copy.ts says why). */
  constructor(
    private readonly path: string,
    private readonly here: ReadHere,
    private readonly failed: (message: string) => void = () => {},
    private readonly pageCache = true,
  ) {}

  /** Whether the worker thread is up (it starts with the first read after start()). */
  get running(): boolean {
    return this.#worker !== null;
  }

  /** From now on reads go to the worker thread, which starts with the first of them. */
  start(): void {
    this.#enabled = true;
  }

  #spawn(): Worker {
    const worker = new Worker(workerUrl(new URL("./reader-worker.ts", import.meta.url), "./storage/reader-worker.ts"), { smol: true });
    worker.onmessage = (event: MessageEvent<ReadReply | "stopped">) => {
      const reply = event.data;
      if (reply === "stopped") return;
      const pending = this.#pending.get(reply.id);
      if (pending === undefined) return;
      this.#pending.delete(reply.id);
      if ("error" in reply) {
        this.failed(`reader worker: ${reply.error}`);
        this.#runHere(pending);
      } else pending.resolve(reply.result);
    };
    worker.onerror = (event) => {
      this.failed(`reader worker: ${event.message}`);
      this.#giveUp();
    };
    // The worker must not keep a draining process alive (Bun's Worker has unref, the DOM type does not).
    (worker as unknown as { unref(): void }).unref();
    worker.postMessage({ path: this.path, pageCache: this.pageCache });
    this.#worker = worker;
    return worker;
  }

  list(...[filter, order, limit, offset]: Parameters<ListLinks>): Promise<ReturnType<ListLinks>> {
    return this.#ask({ op: "list", filter, order, limit, offset }) as Promise<ReturnType<ListLinks>>;
  }

  /**
   * A listing in batches of `batch` rows, read by the worker as they are asked for, so a listing of every link is
   * neither held in memory whole nor read on the event loop. Without the worker it is read here, whole.
   */
  async openList(...[filter, order, limit, offset, batch]: [...Parameters<ListLinks>, number]): Promise<LinkBatches> {
    const opened = (await this.#ask({ op: "openList", filter, order, limit, offset, batch })) as OpenedList;
    const listing = opened.listing;
    if (listing === null) return batchesOf(opened, batch);
    let first: ShortUrlRow[] | null = opened.rows;
    // The worker closes a listing when it runs out of rows.
    let open = opened.rows.length > 0;
    return {
      next: async () => {
        if (first !== null) {
          const rows = first;
          first = null;
          return rows;
        }
        if (!open) return [];
        const { rows } = (await this.#ask({ op: "nextRows", listing, batch })) as OpenedList;
        if (rows.length === 0) open = false;
        return rows;
      },
      close: () => {
        if (!open) return;
        open = false;
        this.#ask({ op: "closeList", listing }).catch(() => {});
      },
    };
  }

  tagStats(): Promise<TagStatsRow[]> {
    return this.#ask({ op: "tagStats" }) as Promise<TagStatsRow[]>;
  }

  /** Stops the worker after it closed its connection (or after a timeout); reads in flight run here. */
  async stop(): Promise<void> {
    this.#enabled = false;
    const worker = this.#worker;
    if (worker === null) return;
    this.#worker = null;
    await stopWorker(worker);
    for (const pending of this.#drain()) this.#runHere(pending);
  }

  #ask(read: Read): Promise<ReadResult> {
    return new Promise((resolve, reject) => {
      const pending = { read, resolve, reject };
      const worker = this.#enabled && !this.#failed ? this.#workerOrNull() : null;
      if (worker === null) {
        this.#runHere(pending);
        return;
      }
      const id = this.#nextId++;
      this.#pending.set(id, pending);
      worker.postMessage({ ...read, id } satisfies ReadRequest);
    });
  }

  /** The running worker, or a new one; null (given up) if it cannot be started. */
  #workerOrNull(): Worker | null {
    if (this.#worker !== null) return this.#worker;
    try {
      return this.#spawn();
    } catch (error) {
      this.failed(`reader worker: ${error instanceof Error ? error.message : String(error)}`);
      this.#failed = true;
      return null;
    }
  }

  /** After a worker error: no worker from now on, and what it had not answered runs here. */
  #giveUp(): void {
    this.#failed = true;
    const worker = this.#worker;
    this.#worker = null;
    worker?.terminate();
    for (const pending of this.#drain()) this.#runHere(pending);
  }

  #drain(): Pending[] {
    const all = [...this.#pending.values()];
    this.#pending.clear();
    return all;
  }

  #runHere({ read, resolve, reject }: Pending): void {
    try {
      resolve(this.#readHere(read));
    } catch (error) {
      reject(error);
    }
  }

  #readHere(read: Read): ReadResult {
    switch (read.op) {
      case "tagStats":
        return this.here.tagStats();
      case "list":
        return this.here.list(read.filter, read.order, read.limit, read.offset);
      case "openList":
        return { rows: this.here.list(read.filter, read.order, read.limit, read.offset).rows, listing: null };
      case "closeList":
        return null;
      case "nextRows":
        // The listing's snapshot went with the worker: its remaining rows cannot be read on from here.
        throw new Error("the reader worker stopped during a listing");
    }
  }
}
