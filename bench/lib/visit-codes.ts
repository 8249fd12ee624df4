/** Requests codes once each and checks every answer: this both verifies the seeding and fills the server's LRU. */
import { targetFor } from "./codes";

/**
 * GETs `/{codes[i]}` for every i in `indexes` with `concurrency` requests in flight; throws on the first
 * response that is not a 3xx to `targetFor(i)`.
 */
export async function visitCodes(baseUrl: string, codes: readonly string[], indexes: Iterable<number>, concurrency = 32): Promise<number> {
  const queue = indexes[Symbol.iterator]();
  let visited = 0;
  const worker = async () => {
    for (let next = queue.next(); !next.done; next = queue.next()) {
      const i = next.value;
      const response = await fetch(`${baseUrl}/${codes[i]}`, { redirect: "manual" });
      await response.arrayBuffer();
      const location = response.headers.get("location");
      if (response.status < 300 || response.status > 399 || location !== targetFor(i)) {
        throw new Error(`GET /${codes[i]} answered ${response.status} to ${location}; expected a redirect to ${targetFor(i)}`);
      }
      visited++;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return visited;
}

/** 0, 1, …, n-1. */
export function* range(n: number): Generator<number> {
  for (let i = 0; i < n; i++) yield i;
}
