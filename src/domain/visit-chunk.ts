/**
 * One chunk of a visit flush as the event loop's thread hands it to the visit writer's thread (visit-writer.ts):
 * plain arrays and one buffer of the visits' records, so that building it costs the event loop a copy, not an
 * object per visit, and the writer's thread does the decoding and every SQLite call.
 */
import type { Visit, VisitedLink } from "./visit";
import type { ChunkPart } from "./visit-chunk-pace";
import { decodeRecords, heldRecords, type LinkRecords, recordAt, type VisitLog } from "./visit-log";

/**
 * A chunk ready to write: what each part takes, its buffered link (looked up once for the chunk), its bots, how many
 * of its visits have records; the orphans'.
 */
export interface PreparedChunk<L extends BufferedLink = BufferedLink> {
  parts: readonly ChunkPart[];
  links: L[];
  bots: number[];
  held: number[];
  orphanRefs: number[];
}

export interface ChunkMessage {
  op: "chunk";
  /** Numbers the chunks a writer is given, so that an answer is never taken for a later chunk's. */
  seq: number;
  /** Per part (the first `take` buffered visits of one link): the link's id. */
  ids: Float64Array;
  /**
   * Per part i, at PART_COUNTS * i on: take, bots, held (how many of the taken visits have records), and the lengths
   * of the link's short code and domain in `names`.
   */
  counts: Int32Array;
  /**
   * Every part's short code then domain ('' for the default one), for the visits' events, one after another as
   * UTF-16 code units: transferred, where an array of strings was serialized at ~0.4 µs a string (0.3-1.1 ms a
   * chunk) and one string built from them took as long to flatten.
   */
  names: Uint16Array;
  /** The held records of every part in part order, then `orphans` orphan visits' records (VisitLog.copyOut). */
  records: Uint8Array;
  orphans: number;
}

/** What the writer did with a chunk: committed it (and whether webhook events were stored), met a lock, or failed. */
export type ChunkReply =
  | { op: "written"; enqueued: boolean }
  | { op: "busy"; message: string }
  | { op: "failed"; message: string; code: string | null };

/** Int32 counts per part in ChunkMessage.counts. */
const PART_COUNTS = 5;
/**
 * Reads ChunkMessage.names back (a Uint16Array is in the machine's order: little-endian on x86-64 and arm64). A lone
 * surrogate, never in a short code or host name, would read back as U+FFFD: still one unit, so the slices stay in step.
 */
const UTF16 = new TextDecoder("utf-16le");

/** Writes chunks in transactions of its own (on another connection, on another thread). */
export interface ChunkWriter {
  /** False once the writer has failed for good (its thread died): the buffer then writes on its own connection. */
  readonly usable: boolean;
  /** The writer's commits so far, counted by its thread as each one commits (before the buffer hears of it). */
  readonly commits: number;
  /** `urgent`: the flush is behind, so the writer must get the CPU even while this thread never idles. */
  write(chunk: ChunkMessage, urgent: boolean): Promise<ChunkReply>;
}

/** A link's buffered visits as a chunk sees them: its counts, its records, and the link they went to. */
export type BufferedLink = LinkRecords & { total: number; bots: number; link: VisitedLink | null };

/** A chunk of these parts and orphan records, ready to write; null when it would write nothing. */
export function prepareChunk<L extends BufferedLink>(
  parts: readonly ChunkPart[],
  orphanRefs: number[],
  linkOf: (id: number) => L,
  log: VisitLog,
): PreparedChunk<L> | null {
  if (parts.length === 0 && orphanRefs.length === 0) return null;
  const links: L[] = [];
  const bots: number[] = [];
  const held: number[] = [];
  for (const { id, take } of parts) {
    const link = linkOf(id);
    links.push(link);
    const kept = Math.min(take, heldRecords(link));
    held.push(kept);
    // The whole link: its exact bot count. Part of it: the held visits' bots, or (details dropped) as many as fit.
    bots.push(take === link.total ? link.bots : kept === take ? heldBots(link, kept, log) : Math.min(link.bots, take));
  }
  return { parts, links, bots, held, orphanRefs };
}

/** How many of a link's first `n` held visits came from bots. */
function heldBots(link: BufferedLink, n: number, log: VisitLog): number {
  let bots = 0;
  for (let i = 0; i < n; i++) if (log.isBot(recordAt(link, i))) bots++;
  return bots;
}

/** A prepared chunk's visits as objects (read from this thread's log), links' first, then the orphans'. */
export function readChunk(chunk: PreparedChunk, log: VisitLog): Visit[] {
  const visits: Visit[] = [];
  chunk.links.forEach((link, i) => {
    for (let j = 0; j < (chunk.held[i] as number); j++) visits.push(log.read(recordAt(link, j), link.link));
  });
  for (const ref of chunk.orphanRefs) visits.push(log.read(ref, null));
  return visits;
}

/** A prepared chunk as the writer's thread takes it. */
export function encodeChunk(chunk: PreparedChunk, log: VisitLog): ChunkMessage {
  const n = chunk.parts.length;
  const ids = new Float64Array(n);
  const counts = new Int32Array(PART_COUNTS * n);
  const refs: number[] = [];
  let units = 0;
  chunk.parts.forEach(({ id, take }, i) => {
    const link = chunk.links[i] as BufferedLink;
    const held = chunk.held[i] as number;
    const code = link.link?.shortCode ?? "";
    const domain = link.link?.domain ?? "";
    const base = PART_COUNTS * i;
    ids[i] = id;
    counts[base] = take;
    counts[base + 1] = chunk.bots[i] as number;
    counts[base + 2] = held;
    counts[base + 3] = code.length;
    counts[base + 4] = domain.length;
    units += code.length + domain.length;
    for (let j = 0; j < held; j++) refs.push(recordAt(link, j));
  });
  for (const ref of chunk.orphanRefs) refs.push(ref);
  const names = new Uint16Array(units);
  let at = 0;
  for (const { link } of chunk.links) {
    if (link === null) continue;
    at = putUnits(names, at, link.shortCode);
    at = putUnits(names, at, link.domain);
  }
  const records = log.copyOut(refs);
  return { op: "chunk", seq: 0, ids, counts, names, records, orphans: chunk.orphanRefs.length };
}

/** Writes `text`'s UTF-16 code units at `at`; returns where the next text goes. */
function putUnits(units: Uint16Array, at: number, text: string): number {
  for (let i = 0; i < text.length; i++) units[at + i] = text.charCodeAt(i);
  return at + text.length;
}

/** The buffers a chunk message carries, to transfer with it (postMessage) rather than copy. */
export function chunkTransfers(chunk: ChunkMessage): ArrayBuffer[] {
  return [chunk.records.buffer, chunk.ids.buffer, chunk.counts.buffer, chunk.names.buffer] as ArrayBuffer[];
}

/** What a chunk's i-th part adds to its link's counters: its visits, and how many of them came from bots. */
export function partCounts(chunk: ChunkMessage, i: number): { take: number; bots: number } {
  return { take: chunk.counts[PART_COUNTS * i] as number, bots: chunk.counts[PART_COUNTS * i + 1] as number };
}

/** The visits a chunk's records hold, each with its part's link (null for the orphans at the end). */
export function chunkVisits(chunk: ChunkMessage): Visit[] {
  const { ids, counts } = chunk;
  // One string for all the names, sliced (substrings share its characters).
  const names = UTF16.decode(chunk.names);
  let part = -1;
  let left = 0;
  let at = 0;
  let link: VisitedLink | null = null;
  return decodeRecords(chunk.records, () => {
    while (left === 0 && part < ids.length) {
      part++;
      if (part === ids.length) {
        left = Number.POSITIVE_INFINITY;
        link = null;
        break;
      }
      const base = PART_COUNTS * part;
      const codeEnd = at + (counts[base + 3] as number);
      const domainEnd = codeEnd + (counts[base + 4] as number);
      left = counts[base + 2] as number;
      link = { id: ids[part] as number, shortCode: names.slice(at, codeEnd), domain: names.slice(codeEnd, domainEnd) };
      at = domainEnd;
    }
    left--;
    return link;
  });
}

/**
 * Int32 slots in memory shared by the writer's thread and the event loop's: its commits, the chunks it has done, and
 * how the last one ended (CHUNK_STATUS) and whether it stored webhook events (1), both set before `done` moves.
 * The event loop reads a chunk's end there: under load, a worker's message took tens of milliseconds to arrive.
 * `deletions` counts the link.deleted events the event loop has posted (moved in the deletion's transaction), and
 * `lockWait` is 1 while the writer waits for the write lock: the event loop then makes room for it.
 */
export const SHARED_SLOTS = { commits: 0, done: 1, status: 2, enqueued: 3, deletions: 4, lockWait: 5 } as const;
export const SHARED_SLOT_COUNT = 6;
export const CHUNK_STATUS = { written: 1, busy: 2, failed: 3 } as const;
