/**
 * Link listings off the event loop. Ordering 1 000 000 links by visits, or searching them, sorts or scans every
 * link: 100-500 ms during which a listing on the main thread would hold every redirect (bench/list-links.ts). A
 * worker thread with its own read-only connection runs them instead, with the same ShortUrlStore code. Until it is
 * started (commands other than `serve`), after it is stopped, or if it fails, listings run on the calling thread.
 */
import { stopWorker, workerUrl } from "../lib/workers";
import type { ListReply, ListRequest } from "./list-worker";
import type { ListFilter, OrderField, ShortUrlRow } from "./short-url-store";

export type ListLinks = (
  filter: ListFilter,
  order: { field: OrderField; dir: "ASC" | "DESC" },
  limit: number,
  offset: number,
) => { rows: ShortUrlRow[]; total: number };

interface Pending {
  request: ListRequest;
  resolve: (result: { rows: ShortUrlRow[]; total: number }) => void;
  reject: (error: unknown) => void;
}

export class BackgroundLister {
  #worker: Worker | null = null;
  #nextId = 1;
  readonly #pending = new Map<number, Pending>();

  /** `here` lists on the calling thread: the fallback. `failed` hears why the worker was given up. */
  constructor(
    private readonly path: string,
    private readonly here: ListLinks,
    private readonly failed: (message: string) => void = () => {},
  ) {}

  start(): void {
    if (this.#worker !== null) return;
    const worker = new Worker(workerUrl(new URL("./list-worker.ts", import.meta.url), "./storage/list-worker.ts"));
    worker.onmessage = (event: MessageEvent<ListReply | "stopped">) => {
      const reply = event.data;
      if (reply === "stopped") return;
      const pending = this.#pending.get(reply.id);
      if (pending === undefined) return;
      this.#pending.delete(reply.id);
      if ("error" in reply) {
        this.failed(`list worker: ${reply.error}`);
        this.#runHere(pending);
      } else pending.resolve({ rows: reply.rows, total: reply.total });
    };
    worker.onerror = (event) => {
      this.failed(`list worker: ${event.message}`);
      this.#giveUp();
    };
    // The worker must not keep a draining process alive (Bun's Worker has unref, the DOM type does not).
    (worker as unknown as { unref(): void }).unref();
    worker.postMessage({ path: this.path });
    this.#worker = worker;
  }

  list(...[filter, order, limit, offset]: Parameters<ListLinks>): Promise<{ rows: ShortUrlRow[]; total: number }> {
    const worker = this.#worker;
    if (worker === null) {
      try {
        return Promise.resolve(this.here(filter, order, limit, offset));
      } catch (error) {
        return Promise.reject(error);
      }
    }
    return new Promise((resolve, reject) => {
      const request: ListRequest = { id: this.#nextId++, filter, order, limit, offset };
      this.#pending.set(request.id, { request, resolve, reject });
      worker.postMessage(request);
    });
  }

  /** Stops the worker after it closed its connection (or after a timeout); listings in flight run here. */
  async stop(): Promise<void> {
    const worker = this.#worker;
    if (worker === null) return;
    this.#worker = null;
    await stopWorker(worker);
    for (const pending of this.#drain()) this.#runHere(pending);
  }

  /** After a worker error: no worker from now on, and what it had not answered runs here. */
  #giveUp(): void {
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

  #runHere({ request, resolve, reject }: Pending): void {
    try {
      resolve(this.here(request.filter, request.order, request.limit, request.offset));
    } catch (error) {
      reject(error);
    }
  }
}
