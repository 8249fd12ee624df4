/**
 * A minimal MaxMind DB (.mmdb) writer, for tests that need a location database without downloading one (no npm
 * writer is kept up). Format (MaxMind DB spec 2.0): a binary search tree over the 128 bits of an IPv6 address
 * (IPv4 networks sit at ::/96, where readers look for them), 24-bit records; a 16-byte zero separator; the data
 * section; then "\xAB\xCD\xEFMaxMind.com" and the metadata map.
 * Supported values: strings, booleans, whole numbers 0..2^32-1 (uint32), other numbers (double), arrays, maps.
 */
import { writeFileSync } from "node:fs";
import { parseIp } from "../../src/lib/cidr";

export type MmdbValue = string | number | boolean | MmdbValue[] | { [key: string]: MmdbValue };

export interface MmdbNetwork {
  /** "203.0.113.0/24" or "2001:db8::/32". */
  network: string;
  data: MmdbValue;
}

const MARKER = Buffer.from("\xAB\xCD\xEFMaxMind.com", "latin1");
const TYPE = { utf8: 2, double: 3, uint32: 6, map: 7, uint64: 9, array: 11, boolean: 14 } as const;

function control(type: number, size: number): Buffer {
  const extended = type > 7;
  const head = [((extended ? 0 : type) << 5) | (size < 29 ? size : size < 285 ? 29 : size < 65_821 ? 30 : 31)];
  if (extended) head.push(type - 7);
  if (size >= 65_821) head.push(((size - 65_821) >> 16) & 0xff, ((size - 65_821) >> 8) & 0xff, (size - 65_821) & 0xff);
  else if (size >= 285) head.push(((size - 285) >> 8) & 0xff, (size - 285) & 0xff);
  else if (size >= 29) head.push(size - 29);
  return Buffer.from(head);
}

/** Encodes one value of the data section. */
export function encodeValue(value: MmdbValue): Buffer {
  if (typeof value === "string") {
    const bytes = Buffer.from(value, "utf8");
    return Buffer.concat([control(TYPE.utf8, bytes.length), bytes]);
  }
  if (typeof value === "boolean") return control(TYPE.boolean, value ? 1 : 0);
  if (typeof value === "number") {
    if (Number.isInteger(value) && value >= 0 && value < 2 ** 32) {
      const bytes = Buffer.alloc(4);
      bytes.writeUInt32BE(value);
      return Buffer.concat([control(TYPE.uint32, 4), bytes]);
    }
    const bytes = Buffer.alloc(8);
    bytes.writeDoubleBE(value);
    return Buffer.concat([control(TYPE.double, 8), bytes]);
  }
  if (Array.isArray(value)) return Buffer.concat([control(TYPE.array, value.length), ...value.map(encodeValue)]);
  const entries = Object.entries(value);
  return Buffer.concat([control(TYPE.map, entries.length), ...entries.flatMap(([k, v]) => [encodeValue(k), encodeValue(v)])]);
}

/** A network as 128 bits (IPv4 at ::/96) and its prefix length in that space. */
function bitsOf(network: string): { value: bigint; prefix: number } {
  const [address = "", length] = network.split("/");
  const v4 = /^\d+\.\d+\.\d+\.\d+$/.test(address);
  const parsed = parseIp(address);
  if (parsed === null) throw new Error(`not an address: ${network}`);
  const value = v4 ? parsed & 0xffff_ffffn : parsed;
  const prefix = (v4 ? 96 : 0) + (length === undefined ? (v4 ? 32 : 128) : Number(length));
  return { value, prefix };
}

type Child = { node: number } | { data: number } | null;

/** The bytes of a .mmdb file mapping each network to its data (networks must not overlap). */
export function buildMmdb(networks: readonly MmdbNetwork[], databaseType = "GeoLite2-City"): Buffer {
  const nodes: [Child, Child][] = [[null, null]];
  const data: Buffer[] = [];
  let dataSize = 0;
  for (const { network, data: record } of networks) {
    const encoded = encodeValue(record);
    const offset = dataSize;
    data.push(encoded);
    dataSize += encoded.length;
    const { value, prefix } = bitsOf(network);
    let node = 0;
    for (let depth = 0; depth < prefix; depth++) {
      const bit = Number((value >> BigInt(127 - depth)) & 1n);
      const pair = nodes[node] as [Child, Child];
      if (depth === prefix - 1) {
        if (pair[bit] !== null) throw new Error(`${network} overlaps another network`);
        pair[bit] = { data: offset };
        break;
      }
      const child = pair[bit] as Child;
      if (child !== null && "data" in child) throw new Error(`${network} overlaps another network`);
      if (child === null) {
        nodes.push([null, null]);
        pair[bit] = { node: nodes.length - 1 };
      }
      node = (pair[bit] as { node: number }).node;
    }
  }
  const nodeCount = nodes.length;
  const record = (child: Child) => (child === null ? nodeCount : "node" in child ? child.node : nodeCount + 16 + child.data);
  const tree = Buffer.alloc(nodeCount * 6);
  nodes.forEach(([left, right], i) => {
    tree.writeUIntBE(record(left), i * 6, 3);
    tree.writeUIntBE(record(right), i * 6 + 3, 3);
  });
  const metadata = encodeValue({
    binary_format_major_version: 2,
    binary_format_minor_version: 0,
    build_epoch: Math.floor(Date.now() / 1000),
    database_type: databaseType,
    description: { en: "shortener test database" },
    ip_version: 6,
    languages: ["en"],
    node_count: nodeCount,
    record_size: 24,
  });
  return Buffer.concat([tree, Buffer.alloc(16), ...data, MARKER, metadata]);
}

/** Writes a .mmdb file and returns its path. */
export function writeMmdb(path: string, networks: readonly MmdbNetwork[]): string {
  writeFileSync(path, buildMmdb(networks));
  return path;
}

/** A GeoLite2-City-shaped record, as MaxMind ships them (English names only). */
export function cityRecord(place: {
  countryCode: string;
  country: string;
  region?: string;
  city?: string;
  latitude: number;
  longitude: number;
  timezone: string;
}): MmdbValue {
  const record: Record<string, MmdbValue> = {
    continent: { code: "EU", geoname_id: 6255148, names: { en: "Europe" } },
    country: { geoname_id: 2921044, iso_code: place.countryCode, names: { en: place.country, de: `${place.country} (de)` } },
    location: { accuracy_radius: 20, latitude: place.latitude, longitude: place.longitude, time_zone: place.timezone },
    registered_country: { geoname_id: 2921044, iso_code: place.countryCode, names: { en: place.country } },
  };
  if (place.city !== undefined) record.city = { geoname_id: 2950159, names: { en: place.city } };
  if (place.region !== undefined) record.subdivisions = [{ geoname_id: 2950157, iso_code: "BE", names: { en: place.region } }];
  return record;
}
