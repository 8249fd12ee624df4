/**
 * Buffered visits' details as bytes, not objects. A visit waits up to a second for its flush: long enough to outlive
 * a young collection, so its object and strings (~550 bytes) were promoted to the old generation and died there a
 * moment later, and between full collections the process's memory sawed by tens of MiB (bench/RESULTS.md, fifteenth
 * session). Here a visit is one record of its fields and UTF-8 strings in a reused arena, which the collector never
 * sees; the flush reads a chunk's records back into Visit objects, which die young.
 */
import { cropText, VISIT_FIELD_LIMITS as LIMITS, type OrphanType, type Visit, type VisitedLink } from "./visit";

/** Bytes of an arena: a dozen of the largest records (their fields cropped to LIMITS), a thousand typical ones. */
const ARENA_BYTES = 256 * 1024;
/** Emptied arenas kept for reuse: enough for a second's visits at several thousand a second. */
const POOL_LIMIT = 8;
/** A record's reference is its arena's id times this, plus its offset: offsets stay below it. */
const REF_SPAN = 2 ** 24;
/** at (float64), flags (uint8, padded to 4 bytes), then five int32 string lengths (-1: null). */
const HEADER_BYTES = 32;
const LENGTHS_AT = 12;
const BOT = 1;
const ORPHAN_TYPES: readonly (OrphanType | null)[] = [null, "base_url", "invalid_short_url", "regular_404"];

interface Arena {
  id: number;
  bytes: Buffer;
  view: DataView;
  used: number;
  /** Records appended and not yet released. */
  live: number;
}

type Text = string | null;

/**
 * The most bytes records may hold (VisitLog.heldBytes) for `visits` visits' details: 600 a visit, twice a typical
 * one's (~265), as visits with long headers take up to ~6 KB each even cropped; never below four arenas, since held
 * bytes count whole arenas.
 */
export function heldBytesLimit(visits: number): number {
  return Math.max(visits * 600, 4 * ARENA_BYTES);
}

/** The most bytes a string can take in UTF-8: three per UTF-16 unit. */
function reserve(text: Text): number {
  return text === null ? 0 : text.length * 3;
}

/** What a visit keeps of a field (VISIT_FIELD_LIMITS). */
function kept(text: Text, limit: number): Text {
  return text === null ? null : cropText(text, limit);
}

export class VisitLog {
  readonly #arenas = new Map<number, Arena>();
  readonly #pool: Arena[] = [];
  #current: Arena | null = null;
  /** The arena #arena found last. */
  #last: Arena | null = null;
  #nextId = 1;

  /** Bytes of the arenas allocated, in use or pooled. */
  get bytes(): number {
    return (this.#arenas.size + this.#pool.length) * ARENA_BYTES;
  }

  /** Bytes of the arenas holding records (or taking them): what the records keep allocated. */
  get heldBytes(): number {
    return this.#arenas.size * ARENA_BYTES;
  }

  /**
   * Copies a visit's details (all but its link, which the caller keeps) into the log, each string cropped to what a
   * visit keeps (VISIT_FIELD_LIMITS); returns the record's reference.
   */
  append(visit: Visit): number {
    const referer = kept(visit.referer, LIMITS.referer);
    const userAgent = kept(visit.userAgent, LIMITS.userAgent);
    const ip = kept(visit.ip, LIMITS.ip);
    const visitedUrl = cropText(visit.visitedUrl, LIMITS.visitedUrl);
    const redirectUrl = kept(visit.redirectUrl, LIMITS.redirectUrl);
    const most = HEADER_BYTES + reserve(referer) + reserve(userAgent) + reserve(ip) + reserve(visitedUrl) + reserve(redirectUrl) + 7;
    const arena = this.#arenaFor(most);
    const start = arena.used;
    const view = arena.view;
    view.setFloat64(start, visit.at, true);
    view.setUint8(start + 8, (visit.bot ? BOT : 0) | (ORPHAN_TYPES.indexOf(visit.orphanType) << 1));
    let at = start + HEADER_BYTES;
    at = writeText(arena, at, start + LENGTHS_AT, referer);
    at = writeText(arena, at, start + LENGTHS_AT + 4, userAgent);
    at = writeText(arena, at, start + LENGTHS_AT + 8, ip);
    at = writeText(arena, at, start + LENGTHS_AT + 12, visitedUrl);
    at = writeText(arena, at, start + LENGTHS_AT + 16, redirectUrl);
    // Records start 8-aligned, so the next one's float64 is aligned too.
    arena.used = (at + 7) & ~7;
    arena.live++;
    return arena.id * REF_SPAN + start;
  }

  /** The visit a record holds, as a new object; `link` is the one it was recorded for (null for an orphan visit). */
  read(ref: number, link: VisitedLink | null): Visit {
    const arena = this.#arena(ref);
    return decodeAt(arena.bytes, arena.view, ref % REF_SPAN, link);
  }

  /**
   * The records' bytes one after another in a new buffer, for another thread to read with `decodeRecords` (the
   * visit writer's): a copy, so the records stay here until their visits are written. Unlike in an arena, a
   * record there need not start 8-aligned (DataView reads unaligned).
   */
  copyOut(refs: readonly number[]): Uint8Array {
    const lengths = new Int32Array(refs.length);
    let size = 0;
    refs.forEach((ref, i) => {
      const length = recordBytes(this.#arena(ref).view, ref % REF_SPAN);
      lengths[i] = length;
      size += length;
    });
    // Its own ArrayBuffer (never Buffer's shared pool), so it can be transferred to the other thread; not zeroed
    // (every byte is written below), which takes a tenth of the time of a zeroed one this size.
    const out = Buffer.allocUnsafeSlow(size);
    let at = 0;
    refs.forEach((ref, i) => {
      const start = ref % REF_SPAN;
      const length = lengths[i] as number;
      this.#arena(ref).bytes.copy(out, at, start, start + length);
      at += length;
    });
    return out;
  }

  /** When a record's visit came (epoch milliseconds). */
  at(ref: number): number {
    return this.#arena(ref).view.getFloat64(ref % REF_SPAN, true);
  }

  /** Whether a record's visit came from a bot. */
  isBot(ref: number): boolean {
    const arena = this.#arena(ref);
    return (arena.view.getUint8((ref % REF_SPAN) + 8) & BOT) !== 0;
  }

  /** Forgets a record (its visit was written). An arena whose records are all released is reused. */
  release(ref: number): void {
    const arena = this.#arena(ref);
    arena.live--;
    if (arena.live > 0) return;
    this.#arenas.delete(arena.id);
    // The current arena starts over under a new id.
    if (arena === this.#current) {
      this.#current = this.#open(arena.bytes);
      return;
    }
    if (this.#pool.length < POOL_LIMIT) this.#pool.push(arena);
  }

  #arena(ref: number): Arena {
    const id = Math.floor(ref / REF_SPAN);
    // Records are mostly read in runs from one arena.
    const last = this.#last;
    if (last !== null && last.id === id && last.live > 0) return last;
    const arena = this.#arenas.get(id);
    if (arena === undefined) throw new Error(`visit log: no arena holds record ${ref}`);
    this.#last = arena;
    return arena;
  }

  /** The arena the next record of at most `most` bytes goes into: the current one while it has room. */
  #arenaFor(most: number): Arena {
    const current = this.#current;
    if (current !== null && current.used + most <= current.bytes.length) return current;
    // The current arena (if any) stays until its records are released (then it is pooled).
    this.#current = this.#open(this.#pool.pop()?.bytes ?? Buffer.allocUnsafeSlow(ARENA_BYTES));
    return this.#current;
  }

  /** An arena over `bytes`, with a new id even for pooled bytes: a reference is never valid for two records. */
  #open(bytes: Buffer): Arena {
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
    const arena: Arena = { id: this.#nextId++, bytes, view, used: 0, live: 0 };
    this.#arenas.set(arena.id, arena);
    return arena;
  }
}

/** A record's length in bytes: its header and its strings. */
function recordBytes(view: DataView, start: number): number {
  let length = HEADER_BYTES;
  for (let field = start + LENGTHS_AT; field < start + HEADER_BYTES; field += 4) length += Math.max(0, view.getInt32(field, true));
  return length;
}

/** The visit of the record at `start`. */
function decodeAt(bytes: Buffer, view: DataView, start: number, link: VisitedLink | null): Visit {
  const flags = view.getUint8(start + 8);
  const cursor = { at: start + HEADER_BYTES };
  const referer = readText(bytes, view, cursor, start + LENGTHS_AT);
  const userAgent = readText(bytes, view, cursor, start + LENGTHS_AT + 4);
  const ip = readText(bytes, view, cursor, start + LENGTHS_AT + 8);
  const visitedUrl = readText(bytes, view, cursor, start + LENGTHS_AT + 12) ?? "";
  const redirectUrl = readText(bytes, view, cursor, start + LENGTHS_AT + 16);
  return {
    link,
    orphanType: ORPHAN_TYPES[flags >> 1] ?? null,
    at: view.getFloat64(start, true),
    bot: (flags & BOT) !== 0,
    referer,
    userAgent,
    ip,
    visitedUrl,
    redirectUrl,
  };
}

/** The visits of records copied out by `copyOut`, in order; `linkOf(i)` is the i-th record's link. */
export function decodeRecords(records: Uint8Array, linkOf: (index: number) => VisitedLink | null): Visit[] {
  const bytes = Buffer.from(records.buffer, records.byteOffset, records.byteLength);
  const view = new DataView(records.buffer, records.byteOffset, records.byteLength);
  const visits: Visit[] = [];
  for (let start = 0; start < bytes.length; start += recordBytes(view, start))
    visits.push(decodeAt(bytes, view, start, linkOf(visits.length)));
  return visits;
}

/** Writes a string's UTF-8 bytes at `at` and its length (-1 for null) at `field`; returns where the next string goes. */
function writeText(arena: Arena, at: number, field: number, text: Text): number {
  const length = text === null ? -1 : arena.bytes.write(text, at, "utf8");
  arena.view.setInt32(field, length, true);
  return length > 0 ? at + length : at;
}

/** Reads the string whose length is at `field` and whose bytes are at `cursor.at`, and moves the cursor past it. */
function readText(bytes: Buffer, view: DataView, cursor: { at: number }, field: number): Text {
  const length = view.getInt32(field, true);
  if (length < 0) return null;
  const text = bytes.toString("utf8", cursor.at, cursor.at + length);
  cursor.at += length;
  return text;
}

/**
 * One link's records, in time order: the first inline, as most links wait for a flush with a single visit (an array
 * each would outlive young collections too), the rest in `more`.
 */
export interface LinkRecords {
  /** The first visit's record, or -1. */
  first: number;
  more: number[] | null;
}

export function addRecord(records: LinkRecords, ref: number): void {
  if (records.first < 0) records.first = ref;
  else if (records.more === null) records.more = [ref];
  else records.more.push(ref);
}

/** How many records a link holds. */
export function heldRecords(records: LinkRecords): number {
  return records.first < 0 ? 0 : 1 + (records.more === null ? 0 : records.more.length);
}

/** A link's i-th record. */
export function recordAt(records: LinkRecords, i: number): number {
  return i === 0 ? records.first : ((records.more as number[])[i - 1] as number);
}

/** Forgets a link's first `n` records. */
export function dropRecords(records: LinkRecords, n: number): void {
  const more = records.more;
  if (n === 0) return;
  if (more === null || n > more.length) {
    records.first = -1;
    records.more = null;
    return;
  }
  records.first = more[n - 1] as number;
  records.more = n === more.length ? null : more.slice(n);
}
