/**
 * How much of the buffer one flush chunk takes. On the event loop's thread a chunk holds every redirect until it
 * commits, so chunks are sized from the time recent ones took per unit of work (which varies with the machine and
 * the page cache): a visit is a unit (its raw row), and each link in the chunk adds LINK_UNITS more (its counters
 * and day roll-up, in pages of their own), so a chunk of many once-visited links is cut shorter than one of a few
 * busy links. The visit writer's thread (visit-writer.ts) gives way to the event loop by itself: its chunks take
 * the most a transaction may.
 */

/**
 * How long one chunk should hold the event loop. 1 ms halved the redirect tail again (p99 6.5 ms against 7-12 ms at
 * 8 000 req/s on the test VM) but, with twice the commits, cost throughput at saturation (the WAL frames every
 * commit rewrites); 2 ms did not.
 */
const CHUNK_TARGET_MS = 2;
const LINK_UNITS = 4;
/** Fewest units a chunk may be given, however slow recent chunks were. */
const MIN_CHUNK_UNITS = 32;
/** Weight of the newest chunk in the running time-per-unit estimate. */
const CHUNK_ESTIMATE_WEIGHT = 0.3;

/** The first `take` buffered visits of a link, as one chunk writes them. */
export interface ChunkPart {
  id: number;
  take: number;
}

export class ChunkPace {
  /** Running estimate of a chunk's milliseconds per unit of work; undefined until a chunk has been timed. */
  #msPerUnit: number | undefined;

  /** Units of work for the next chunk: CHUNK_TARGET_MS at the estimated pace, at least MIN_CHUNK_UNITS (unbounded before the first). */
  units(): number {
    if (this.#msPerUnit === undefined) return Number.POSITIVE_INFINITY;
    return Math.max(MIN_CHUNK_UNITS, Math.round(CHUNK_TARGET_MS / this.#msPerUnit));
  }

  /** A chunk of `units` units took `ms` on the event loop. */
  timed(units: number, ms: number): void {
    if (units <= 0) return;
    const pace = ms / units;
    this.#msPerUnit = this.#msPerUnit === undefined ? pace : this.#msPerUnit + CHUNK_ESTIMATE_WEIGHT * (pace - this.#msPerUnit);
  }

  /**
   * The next chunk of links from `ids[from]` on, of at most `units` units and `maxChunkVisits` visits (`totalOf`: a
   * link's buffered visits, undefined once written): its parts, units of work, and where the chunk after it starts.
   * A link with more visits than fit is split across chunks.
   */
  linkChunk(
    ids: Float64Array,
    from: number,
    maxChunkVisits: number,
    units: number,
    totalOf: (id: number) => number | undefined,
  ): { parts: ChunkPart[]; units: number; next: number } {
    const parts: ChunkPart[] = [];
    let next = from;
    let visits = maxChunkVisits;
    let left = units;
    let used = 0;
    while (next < ids.length && visits > 0 && (left > LINK_UNITS || parts.length === 0)) {
      const id = ids[next] as number;
      const total = totalOf(id);
      if (total === undefined) {
        next++;
        continue;
      }
      const take = Math.min(total, visits, Math.max(1, left - LINK_UNITS));
      parts.push({ id, take });
      visits -= take;
      left -= take + LINK_UNITS;
      used += take + LINK_UNITS;
      if (take === total) next++;
    }
    return { parts, units: used, next };
  }
}
