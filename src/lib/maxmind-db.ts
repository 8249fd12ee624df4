/**
 * Opens a local MaxMind-format database (.mmdb, such as GeoLite2-City) with the `maxmind` package's reader. The
 * file is read into memory once per process and per path, so validating the setting (config) and using it (the
 * visit flush) share one copy. Nothing is ever downloaded.
 */
import { readFileSync, statSync } from "node:fs";
import { Reader, type Response } from "maxmind";

const METADATA_MARKER = Buffer.from("\xAB\xCD\xEFMaxMind.com", "latin1");
const opened = new Map<string, Reader<Response>>();

/** Why a file is not a usable MaxMind database: the message is safe to print and ends with what to do. */
export class MaxmindDbError extends Error {}

/** The reader of the .mmdb file at `path` (absolute), opened once; throws MaxmindDbError when it is not usable. */
export function openMaxmindDb(path: string): Reader<Response> {
  const known = opened.get(path);
  if (known !== undefined) return known;
  let bytes: Buffer;
  try {
    if (!statSync(path).isFile()) throw new MaxmindDbError(`${path} is not a file`);
    bytes = readFileSync(path);
  } catch (error) {
    if (error instanceof MaxmindDbError) throw error;
    const code = (error as { code?: string }).code;
    const why = code === "ENOENT" ? "no such file" : code === "EACCES" ? "permission denied" : String(error);
    throw new MaxmindDbError(`cannot read ${path}: ${why}`);
  }
  const reader = parse(path, bytes);
  opened.set(path, reader);
  return reader;
}

function parse(path: string, bytes: Buffer): Reader<Response> {
  const notMmdb = (why: string) =>
    new MaxmindDbError(`${path} is not a MaxMind DB (.mmdb) file: ${why}. Try: point it at GeoLite2-City.mmdb from MaxMind`);
  if (bytes.lastIndexOf(METADATA_MARKER) === -1) throw notMmdb("no metadata marker");
  let reader: Reader<Response>;
  try {
    reader = new Reader<Response>(bytes);
    // A lookup walks the search tree and decodes a record: a truncated or garbled file fails here, not at flush time.
    reader.get("0.0.0.0");
  } catch (error) {
    throw notMmdb(error instanceof Error ? error.message : String(error));
  }
  const { nodeCount, ipVersion, binaryFormatMajorVersion } = reader.metadata;
  if (binaryFormatMajorVersion !== 2) throw notMmdb(`binary format version ${binaryFormatMajorVersion}, not 2`);
  if (!(nodeCount > 0) || (ipVersion !== 4 && ipVersion !== 6)) throw notMmdb("bad metadata");
  return reader;
}
