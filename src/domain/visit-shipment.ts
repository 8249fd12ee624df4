/**
 * A standby's visits, shipped to the primary. A standby cannot write its copy of the replica (it is the primary's
 * database), so the visits it serves during a failover are written to its spool (domain/visit-spool.ts), one file a
 * flush, and put beside the replica in its bucket (storage/shipment-store.ts); the primary that holds the replica
 * takes each shipment into its database once (domain/visit-inbox.ts). A shipment carries visits as the privacy
 * settings let them be stored: the client's address anonymised or left out, its location and the day's visitor hash
 * already worked out from it on the standby, so no address leaves a node that the visits tables would not keep.
 */

import { cropText, VISIT_FIELD_LIMITS as LIMITS, type OrphanType, type Visit, type VisitedLink } from "./visit";
import type { VisitLocation } from "./visit-recorder";

/** A visit as the standby served it (its link as the standby's copy knew it), less the client's address. */
export interface ShippedVisit extends Omit<Visit, "ip"> {
  /** The client's address as the visits tables keep it: anonymised, whole, or null (the privacy settings). */
  remoteAddr: string | null;
  location: VisitLocation | null;
  /** The day's salted hash of address and user agent (hex, 16 bytes): counts distinct visitors, reveals neither. */
  visitor: string;
}

/** The shipment format's version: a primary refuses a shipment of a version it does not know. */
const FORMAT = 1;

export function encodeShipment(visits: readonly ShippedVisit[]): string {
  return encodeShipmentItems(visits.map((visit) => JSON.stringify(visit)));
}

/** The same from each visit's JSON, as a spill encodes them a slice at a time. */
export function encodeShipmentItems(items: readonly string[]): string {
  return [...shipmentPieces([items])].join("");
}

/** The same in pieces, a slice of visits' JSON each, for writing as they are encoded (the spill thread's). */
export function* shipmentPieces(slices: Iterable<readonly string[]>): Generator<string> {
  yield `{"format":${FORMAT},"visits":[`;
  let first = true;
  for (const items of slices) {
    if (items.length === 0) continue;
    yield first ? items.join(",") : `,${items.join(",")}`;
    first = false;
  }
  yield "]}\n";
}

/** A shipment that is not one of ours, or was damaged: it is named and left where it is. */
export class ShipmentError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ShipmentError";
  }
}

type Json = Record<string, unknown>;
const isObject = (value: unknown): value is Json => value !== null && typeof value === "object" && !Array.isArray(value);
const ORPHAN_TYPES = new Set<unknown>(["base_url", "invalid_short_url", "regular_404"]);
const LOCATION_TEXTS = ["countryCode", "countryName", "regionName", "cityName", "timezone"] as const;

function text(value: unknown, limit: number, field: string): string | null {
  if (value === null) return null;
  if (typeof value !== "string") throw new ShipmentError(`${field} is not a string`);
  return cropText(value, limit);
}

function location(value: unknown): VisitLocation | null {
  if (value === null || value === undefined) return null;
  if (!isObject(value)) throw new ShipmentError("location is not an object");
  const place = {} as Record<string, string | number | null>;
  for (const field of LOCATION_TEXTS) place[field] = text(value[field] ?? null, 255, `location.${field}`);
  for (const field of ["latitude", "longitude"] as const) {
    const n = value[field] ?? null;
    if (n !== null && !(typeof n === "number" && Number.isFinite(n))) throw new ShipmentError(`location.${field} is not a number`);
    place[field] = n;
  }
  return place as unknown as VisitLocation;
}

function link(value: unknown): VisitedLink | null {
  if (value === null) return null;
  if (!isObject(value) || !Number.isSafeInteger(value.id) || (value.id as number) < 1) throw new ShipmentError("link has no id");
  if (typeof value.shortCode !== "string" || typeof value.domain !== "string") throw new ShipmentError("link has no shortCode or domain");
  return { id: value.id as number, shortCode: value.shortCode, domain: value.domain };
}

function visit(raw: unknown): ShippedVisit {
  if (!isObject(raw)) throw new ShipmentError("a visit is not an object");
  const visited = link(raw.link ?? null);
  const orphanType = raw.orphanType ?? null;
  if (visited === null ? !ORPHAN_TYPES.has(orphanType) : orphanType !== null)
    throw new ShipmentError("a visit has neither a link nor an orphan type");
  if (typeof raw.at !== "number" || !Number.isSafeInteger(raw.at) || raw.at < 0) throw new ShipmentError("a visit has no time (at)");
  if (typeof raw.bot !== "boolean") throw new ShipmentError("bot is not a boolean");
  if (typeof raw.visitor !== "string" || !/^[0-9a-f]{32}$/.test(raw.visitor)) throw new ShipmentError("visitor is not a 16-byte hex hash");
  const visitedUrl = text(raw.visitedUrl, LIMITS.visitedUrl, "visitedUrl");
  if (visitedUrl === null) throw new ShipmentError("a visit has no visitedUrl");
  return {
    link: visited,
    orphanType: orphanType as OrphanType | null,
    at: raw.at,
    bot: raw.bot,
    referer: text(raw.referer ?? null, LIMITS.referer, "referer"),
    userAgent: text(raw.userAgent ?? null, LIMITS.userAgent, "userAgent"),
    remoteAddr: text(raw.remoteAddr ?? null, LIMITS.ip, "remoteAddr"),
    visitedUrl,
    redirectUrl: text(raw.redirectUrl ?? null, LIMITS.redirectUrl, "redirectUrl"),
    location: location(raw.location),
    visitor: raw.visitor,
  };
}

/** The visits of a shipment's text; a ShipmentError names what is wrong with one that is not a whole shipment. */
export function decodeShipment(body: string): ShippedVisit[] {
  let doc: unknown;
  try {
    doc = JSON.parse(body);
  } catch {
    throw new ShipmentError("it is not JSON (cut short, or not a shipment)");
  }
  if (!isObject(doc) || doc.format !== FORMAT || !Array.isArray(doc.visits)) {
    throw new ShipmentError(`it is not a shipment of format ${FORMAT} ({"format":${FORMAT},"visits":[…]})`);
  }
  return doc.visits.map(visit);
}
