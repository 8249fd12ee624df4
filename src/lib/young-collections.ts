/**
 * Keeps the young generation small while the server allocates steadily. Bun's GC timer collects about once a second,
 * but once the heap has looked steady for 30 ticks it backs off to once in 30 s, and JavaScriptCore's own trigger then
 * lets the young generation grow by tens of MiB before collecting it: under steady traffic RSS climbed 4-5 MiB a
 * second for 10-20 s, to 170-215 MiB where it otherwise stays at 125-145 MiB (bench/RESULTS.md, fifteenth session).
 * The heap's size as bun:jsc reports it did not show those climbs (a young collection only past 16 MiB of its growth
 * still let RSS climb to 172 MiB), so a young collection simply runs every second: 1-2 ms with 100 000 links cached
 * and a second's redirects to sweep, next to nothing when idle.
 */
import { edenGC } from "bun:jsc";

/** Runs `collect` (a young collection) every `intervalMs` until stopped; the timer does not keep the process alive. */
export function startYoungCollections(collect: () => unknown = edenGC, intervalMs = 1000): { stop(): void } {
  const timer = setInterval(collect, intervalMs);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}
