/**
 * One chunk of a visit flush as the event loop's thread hands it to the visit writer's thread (visit-writer.ts):
 * plain arrays and one buffer of the visits' records, so that building it costs the event loop a copy, not an
 * object per visit, and the writer's thread does the decoding and every SQLite call.
 */
import type { Visit, VisitedLink } from "./visit";
import type { ChunkPart } from "./visit-chunk-pace";
import { decodeRecords, heldRecords, type LinkRecords, recordAt, type VisitLog } from "./visit-log";

/** A chunk ready to write: what each part takes, its bots, how many of its visits have records; the orphans'. */
export interface PreparedChunk {
  parts: readonly ChunkPart[];
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
  /** Per part i: take, bots and held (how many of the taken visits have records) at 3i, 3i + 1 and 3i + 2. */
  counts: Int32Array;
  /** Per part: the link's short code and domain ('' for the default one), for the visits' events. */
  codes: string[];
  domains: string[];
  /** The held records of every part in part order, then `orphans` orphan visits' records (VisitLog.copyOut). */
  records: Uint8Array;
  orphans: number;
}

/** What the writer did with a chunk: committed it (and whether webhook events were stored), met a lock, or failed. */
export type ChunkReply =
  | { op: "written"; enqueued: boolean }
  | { op: "busy"; message: string }
  | { op: "failed"; message: string; code: string | null };

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
export function prepareChunk(
  parts: readonly ChunkPart[],
  orphanRefs: number[],
  linkOf: (id: number) => BufferedLink,
  log: VisitLog,
): PreparedChunk | null {
  if (parts.length === 0 && orphanRefs.length === 0) return null;
  const bots: number[] = [];
  const held: number[] = [];
  for (const { id, take } of parts) {
    const link = linkOf(id);
    const kept = Math.min(take, heldRecords(link));
    let keptBots = 0;
    for (let i = 0; i < kept; i++) if (log.isBot(recordAt(link, i))) keptBots++;
    held.push(kept);
    // The whole link: its exact bot count. Part of it: the held visits' bots, or (details dropped) as many as fit.
    bots.push(take === link.total ? link.bots : kept === take ? keptBots : Math.min(link.bots, take));
  }
  return { parts, bots, held, orphanRefs };
}

/** A prepared chunk's visits as objects (read from this thread's log), links' first, then the orphans'. */
export function readChunk(chunk: PreparedChunk, linkOf: (id: number) => BufferedLink, log: VisitLog): Visit[] {
  const visits: Visit[] = [];
  chunk.parts.forEach(({ id }, i) => {
    const link = linkOf(id);
    for (let j = 0; j < (chunk.held[i] as number); j++) visits.push(log.read(recordAt(link, j), link.link));
  });
  for (const ref of chunk.orphanRefs) visits.push(log.read(ref, null));
  return visits;
}

/** A prepared chunk as the writer's thread takes it; `linkOf` gives a part's buffered link and records. */
export function encodeChunk(chunk: PreparedChunk, linkOf: (id: number) => BufferedLink, log: VisitLog): ChunkMessage {
  const n = chunk.parts.length;
  const ids = new Float64Array(n);
  const counts = new Int32Array(3 * n);
  const codes: string[] = [];
  const domains: string[] = [];
  const refs: number[] = [];
  chunk.parts.forEach(({ id, take }, i) => {
    const link = linkOf(id);
    const held = chunk.held[i] as number;
    ids[i] = id;
    counts[3 * i] = take;
    counts[3 * i + 1] = chunk.bots[i] as number;
    counts[3 * i + 2] = held;
    codes.push(link.link?.shortCode ?? "");
    domains.push(link.link?.domain ?? "");
    for (let j = 0; j < held; j++) refs.push(recordAt(link, j));
  });
  for (const ref of chunk.orphanRefs) refs.push(ref);
  return { op: "chunk", seq: 0, ids, counts, codes, domains, records: log.copyOut(refs), orphans: chunk.orphanRefs.length };
}

/** The visits a chunk's records hold, each with its part's link (null for the orphans at the end). */
export function chunkVisits(chunk: ChunkMessage): Visit[] {
  const { ids, counts, codes, domains } = chunk;
  let part = -1;
  let left = 0;
  let link: VisitedLink | null = null;
  return decodeRecords(chunk.records, () => {
    while (left === 0 && part < ids.length) {
      part++;
      left = part < ids.length ? (counts[3 * part + 2] as number) : Number.POSITIVE_INFINITY;
      link = part < ids.length ? { id: ids[part] as number, shortCode: codes[part] as string, domain: domains[part] as string } : null;
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
