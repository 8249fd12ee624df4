/**
 * What handing one visit flush chunk to the visit writer's thread costs the event loop. The writer writes on its own
 * thread, but the event loop still picks the chunk's links, gathers their records, encodes the message, serializes
 * it into postMessage, and settles the buffer after the commit; all of it holds every redirect that arrives meanwhile,
 * once a chunk (at 24 000 redirects a second, every ~40 ms).
 * This drives the real VisitBuffer (imported, not copied) with a ChunkWriter that serializes each message as
 * postMessage does (structuredClone, its buffers transferred) and answers at once, and times `flushInChunks` of one
 * chunk's visits (the event loop's whole share of a chunk). Visits are drawn as the redirect benchmarks draw them:
 * hot (90 % to the first 1 000 links of 100 000) or uniform. The reference, measured in the same rounds: the floor of
 * handing the same number of record bytes to another thread (one copy into a new buffer, transferred).
 * Usage: bun bench/chunk-handoff.ts [--links 100000] [--hot 1000] [--visits 1000] [--rounds 2000]
 */
import { parseArgs } from "node:util";
import { generateShortCode } from "../src/domain/short-code";
import type { Visit, VisitedLink } from "../src/domain/visit";
import { VisitBuffer } from "../src/domain/visit-buffer";
import { type ChunkMessage, type ChunkReply, type ChunkWriter, chunkTransfers } from "../src/domain/visit-chunk";
import { openDatabase } from "../src/storage/database";
import { ShortUrlStore } from "../src/storage/short-url-store";
import { drawIndex } from "./lib/codes";
import { runWithCleanup, tempDir } from "./lib/processes";
import { percentile } from "./lib/stats";

const { values } = parseArgs({
  options: {
    links: { type: "string", default: "100000" },
    hot: { type: "string", default: "1000" },
    visits: { type: "string", default: "1000" },
    rounds: { type: "string", default: "2000" },
  },
});
const links = Number(values.links);
const hotCount = Number(values.hot);
const visitsPerChunk = Number(values.visits);
const rounds = Number(values.rounds);
/** Rounds left out of the figures while the JIT settles. */
const WARMUP = Math.min(200, Math.floor(rounds / 5));

const USER_AGENT = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36";

/** Answers every chunk at once, after serializing it as postMessage would; keeps the byte size of each one's records. */
class SerializingWriter implements ChunkWriter {
  readonly usable = true;
  commits = 0;
  recordBytes = 0;

  write(chunk: ChunkMessage): Promise<ChunkReply> {
    this.recordBytes = chunk.records.byteLength;
    structuredClone(chunk, { transfer: chunkTransfers(chunk) });
    this.commits++;
    return Promise.resolve({ op: "written", enqueued: false });
  }
}

await runWithCleanup(async () => {
  // The buffer writes nothing itself with a writer, but takes a database and a link store.
  const db = openDatabase(`${tempDir("shortener-bench-handoff-")}/shortener.db`);
  const visited: VisitedLink[] = Array.from({ length: links }, (_, i) => ({ id: i + 1, shortCode: generateShortCode(7), domain: "" }));
  const source = Buffer.alloc(visitsPerChunk * 2048, 7);

  console.log(
    `handing a chunk of ${visitsPerChunk.toLocaleString("en")} visits to the visit writer (${links.toLocaleString("en")} links), ` +
      `${rounds - WARMUP} rounds after ${WARMUP} of warm-up, the event loop's time per chunk`,
  );
  for (const [name, hot] of [
    ["hot", true],
    ["uniform", false],
  ] as const) {
    const writer = new SerializingWriter();
    const buffer = new VisitBuffer(db, new ShortUrlStore(db));
    buffer.addSink({ write() {} });
    buffer.useWriter(writer);
    const handoff: number[] = [];
    const floor: number[] = [];
    for (let round = 0; round < rounds; round++) {
      const at = Date.now();
      for (let i = 0; i < visitsPerChunk; i++) {
        const link = visited[drawIndex(links, hot ? hotCount : 0)] as VisitedLink;
        const visit: Visit = {
          link,
          orphanType: null,
          at,
          bot: false,
          referer: "https://news.example.org/a/story",
          userAgent: USER_AGENT,
          ip: "203.0.113.7",
          visitedUrl: `http://127.0.0.1:8080/${link.shortCode}`,
          redirectUrl: `https://example.com/page/${link.id}`,
        };
        buffer.record(link.id, false);
        buffer.capture(visit);
      }
      const started = performance.now();
      await buffer.flushInChunks(visitsPerChunk);
      const took = performance.now() - started;
      // The floor: the same bytes copied once into a buffer of their own and transferred.
      const copyStarted = performance.now();
      const out = Buffer.allocUnsafeSlow(writer.recordBytes);
      source.copy(out, 0, 0, writer.recordBytes);
      structuredClone(out, { transfer: [out.buffer as ArrayBuffer] });
      const copyTook = performance.now() - copyStarted;
      if (buffer.depth !== 0) throw new Error(`a chunk of ${visitsPerChunk} visits left ${buffer.depth} buffered`);
      if (round < WARMUP) continue;
      handoff.push(took);
      floor.push(copyTook);
    }
    handoff.sort((a, b) => a - b);
    floor.sort((a, b) => a - b);
    const p50 = percentile(handoff, 50);
    const floor50 = percentile(floor, 50);
    console.log(
      `  ${name.padEnd(7)} per chunk p50 ${p50.toFixed(3)} ms p90 ${percentile(handoff, 90).toFixed(3)} ms ` +
        `(${((1000 * p50) / visitsPerChunk).toFixed(2)} µs a visit); the floor p50 ${floor50.toFixed(3)} ms ` +
        `(${(writer.recordBytes / 1024).toFixed(0)} KiB); handoff ÷ floor ${(p50 / floor50).toFixed(1)}`,
    );
  }
});
