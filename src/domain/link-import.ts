/**
 * Links and their history brought in from a Shlink server (`shortener import shlink`), written as they were there:
 * the same code and domain, creation date, tags, title, validity, redirect rules, and visits with their dates. A link
 * is written whole, with its visits, in one transaction, or not at all. One already here with the same long URL is
 * left as it is (so running the import again picks up what a first run missed and repeats nothing); one here with
 * another long URL is a conflict; one these rules refuse (a reserved code, a target that is not http(s), a password
 * that the API never shows) is named with why. Visits older than the retention period are counted, not kept, as the
 * retention job would have left them. Never sees HTTP.
 */
import type { Database } from "bun:sqlite";
import { AppError } from "../errors";
import { formatIsoDate, parseIsoDate } from "../lib/iso-date";
import { whenLockFree, writeTransactionIfFree } from "../storage/database";
import type { RedirectRuleStore } from "../storage/redirect-rule-store";
import type { ShipmentLedger } from "../storage/shipment-ledger";
import type { ShortUrlStore } from "../storage/short-url-store";
import type { TagStore } from "../storage/tag-store";
import type { VisitPurgeStore } from "../storage/visit-purge-store";
import type { StagedVisit, VisitStaging } from "../storage/visit-staging";
import type { VisitStore } from "../storage/visit-store";
import { type AuditLog, cliActor, createdFacts } from "./audit-log";
import { DEVICES, parseRedirectRulesInput, type RedirectRuleInput, rowsFromRules } from "./redirect-rules";
import { type CreateShortUrlInput, newLinkRow, parseCreateInput } from "./short-url-input";
import { cropText, VISIT_FIELD_LIMITS } from "./visit";

/** How long a batch waits for the running server's write lock: its own writes hold it for milliseconds. */
const LOCK_WAIT_MS = 30_000;

type Json = Record<string, unknown>;
const isObject = (value: unknown): value is Json => value !== null && typeof value === "object" && !Array.isArray(value);

/** A source link, checked by the rules the API applies to a create. */
export interface ImportedLink {
  input: CreateShortUrlInput & { customSlug: string };
  /** The stored domain key: '' for the default domain. */
  domain: string;
  createdAt: number;
  /** Its Shlink 3 device long URLs, as the device rules Shlink 4 turned them into. */
  deviceRules: RedirectRuleInput[];
}

/** What became of a source link. */
export type ImportOutcome =
  | { kind: "imported"; visits: number }
  | { kind: "present" }
  | { kind: "conflict"; longUrl: string }
  | { kind: "refused"; reason: string };

/** Why an AppError refused the input, in one line: `field: reason; field: reason`. */
function reasonOf(error: unknown): string {
  if (!(error instanceof AppError)) throw error;
  return error.detail.replace(/^Provided data is not valid: /, "");
}

/** A source link as the API's create would take it, or why it cannot be imported. */
export function importedLink(raw: Json, domainKey: (domain: string | null) => string): ImportedLink | { refused: string } {
  if (raw.passwordProtected === true) return { refused: "it is password-protected, and its password is never shown by the API" };
  if (typeof raw.shortCode !== "string") return { refused: "it has no shortCode" };
  const createdAt = typeof raw.dateCreated === "string" ? parseIsoDate(raw.dateCreated) : null;
  if (createdAt === null) return { refused: "dateCreated: must be an ISO 8601 date" };
  const meta = isObject(raw.meta) ? raw.meta : {};
  const body: Json = {
    longUrl: raw.longUrl,
    customSlug: raw.shortCode,
    domain: raw.domain ?? null,
    title: raw.title ?? null,
    tags: raw.tags ?? [],
    crawlable: raw.crawlable ?? false,
    forwardQuery: raw.forwardQuery ?? true,
    validSince: meta.validSince ?? null,
    validUntil: meta.validUntil ?? null,
    maxVisits: meta.maxVisits ?? null,
  };
  if (raw.redirectStatus !== undefined && raw.redirectStatus !== null) body.redirectStatus = raw.redirectStatus;
  let input: CreateShortUrlInput;
  let deviceRules: RedirectRuleInput[];
  try {
    input = parseCreateInput(body);
    deviceRules = deviceLongUrlRules(raw.deviceLongUrls);
  } catch (error) {
    return { refused: reasonOf(error) };
  }
  return { input: input as ImportedLink["input"], domain: domainKey(input.domain ?? null), createdAt, deviceRules };
}

/** Shlink 3's per-device long URLs as device rules (android, ios, desktop), checked like any rule. */
function deviceLongUrlRules(raw: unknown): RedirectRuleInput[] {
  if (!isObject(raw)) return [];
  const rules = DEVICES.filter((d) => typeof raw[d] === "string" && raw[d] !== "").map((device) => ({
    longUrl: raw[device],
    conditions: [{ type: "device", matchKey: null, matchValue: device }],
  }));
  return rules.length === 0 ? [] : parseRedirectRulesInput({ redirectRules: rules });
}

/** A source link's redirect rules (as its API lists them), checked like a `POST …/redirect-rules`, or why not. */
export function importedRules(raw: unknown[]): RedirectRuleInput[] | { refused: string } {
  try {
    return parseRedirectRulesInput({ redirectRules: raw });
  } catch (error) {
    return { refused: `redirect rules: ${reasonOf(error)}` };
  }
}

const text = (value: unknown, limit: number): string | null => (typeof value === "string" && value !== "" ? cropText(value, limit) : null);
const real = (value: unknown): number | null => (typeof value === "number" && Number.isFinite(value) ? value : null);

/** A source visit as staged (VISIT_COLUMNS from `at`), or null when it has no date. Fields are cut as a redirect cuts them. */
export function stagedVisit(raw: Json): StagedVisit | null {
  const at = typeof raw.date === "string" ? parseIsoDate(raw.date) : null;
  if (at === null) return null;
  const place = isObject(raw.visitLocation) ? raw.visitLocation : {};
  return [
    at,
    raw.potentialBot === true ? 1 : 0,
    text(raw.referer, VISIT_FIELD_LIMITS.referer),
    text(raw.userAgent, VISIT_FIELD_LIMITS.userAgent),
    null,
    text(raw.visitedUrl, VISIT_FIELD_LIMITS.visitedUrl),
    text(raw.redirectUrl, VISIT_FIELD_LIMITS.redirectUrl),
    text(place.countryCode, 2),
    text(place.countryName, 255),
    text(place.regionName, 255),
    text(place.cityName, 255),
    place.isEmpty === true ? null : real(place.latitude),
    place.isEmpty === true ? null : real(place.longitude),
    text(place.timezone, 255),
  ];
}

/**
 * Links already here whose later visits are staged under their ids (import db): the link each id must still be, how
 * many of its visits are staged (new), and how many more an earlier run brought (before).
 */
export interface LaterVisitsBatch {
  /**
   * The ledger's name for the staged visits: the range of source visit ids they cover, so that no later run takes
   * them again; null when none is staged.
   */
  name: string | null;
  links: readonly { id: number; domain: string; shortCode: string; visits: number; before: number }[];
}

/** A link ready to write: its checked fields, rules, and the number its visits are staged under. */
export interface ImportBatchEntry {
  link: ImportedLink;
  rules: RedirectRuleInput[];
  staged: number;
}

export class LinkImportWriter {
  constructor(
    private readonly db: Database,
    private readonly stores: {
      links: ShortUrlStore;
      tags: TagStore;
      rules: RedirectRuleStore;
      visits: VisitStore;
      purges: VisitPurgeStore;
    },
    private readonly audit: AuditLog,
    /** Where the links came from, for the audit history. */
    private readonly source: string,
    /** Raw visits older than this are counted, not kept (--visits-retention); null keeps all. */
    private readonly retentionMs: number | null,
  ) {}

  /** Writes a batch of links with their staged visits in one transaction; a link already here is left alone. */
  write(batch: readonly ImportBatchEntry[], staging: VisitStaging): Promise<ImportOutcome[]> {
    const cutoff = this.retentionMs === null ? null : Date.now() - this.retentionMs;
    return whenLockFree(() => writeTransactionIfFree(this.db, () => batch.map((entry) => this.#one(entry, staging, cutoff))), LOCK_WAIT_MS);
  }

  /**
   * Writes a batch of later visits to links already here, staged under their link ids, with its name in the ledger,
   * in one transaction: the number written, the number whose link is gone here (deleted since, or its id given to
   * another code, staged or brought before), and `before`, how many to links still here a run before brought (all
   * of them, with nothing written, when the ledger already has the name).
   */
  writeLater(
    batch: LaterVisitsBatch,
    staging: VisitStaging,
    ledger: ShipmentLedger,
  ): Promise<{ written: number; gone: number; before: number }> {
    const cutoff = this.retentionMs === null ? null : Date.now() - this.retentionMs;
    return whenLockFree(
      () =>
        writeTransactionIfFree(this.db, () => {
          // Another run at the same time wrote these very visits.
          const taken = batch.name === null ? null : ledger.taken(batch.name);
          if (taken !== null) return { written: 0, gone: 0, before: taken };
          let written = 0;
          let gone = 0;
          let before = 0;
          for (const { id, domain, shortCode, visits, before: earlier } of batch.links) {
            const here = this.stores.links.findById(id);
            if (here === null || here.domain !== domain || here.short_code !== shortCode) gone += visits + earlier;
            else {
              written += this.#visits(id, domain, staging, id, cutoff);
              before += earlier;
            }
          }
          if (batch.name !== null) ledger.add(batch.name, written);
          return { written, gone, before };
        }),
      LOCK_WAIT_MS,
    );
  }

  #one({ link, rules, staged }: ImportBatchEntry, staging: VisitStaging, cutoff: number | null): ImportOutcome {
    const { input, domain } = link;
    const here = this.stores.links.find(domain, input.customSlug);
    if (here !== null) return here.long_url === input.longUrl ? { kind: "present" } : { kind: "conflict", longUrl: here.long_url };
    const id = this.stores.links.insert(newLinkRow(input, domain, link.createdAt, null)) as number;
    if (input.tags !== undefined && input.tags.length > 0) this.stores.tags.setTags(id, input.tags);
    const allRules = [...link.deviceRules, ...rules];
    if (allRules.length > 0) this.stores.rules.replace(id, rowsFromRules(allRules));
    const visits = this.#visits(id, domain, staging, staged, cutoff);
    this.audit.record(
      cliActor(),
      "short-url.imported",
      { domain, shortCode: input.customSlug },
      {
        ...createdFacts(input),
        dateCreated: formatIsoDate(link.createdAt),
        ...(allRules.length > 0 ? { redirectRules: allRules.length } : {}),
        visits,
        from: this.source,
      },
    );
    return { kind: "imported", visits };
  }

  /** Writes a link's visits (oldest first) and their roll-ups, as the visit flush would have; returns how many. */
  #visits(id: number, domain: string, staging: VisitStaging, staged: number, cutoff: number | null): number {
    const { visits, links, purges } = this.stores;
    const days = staging.days(staged);
    if (days.length === 0) return 0;
    const kept = staging.copyInto(staged, id, cutoff ?? Number.MIN_SAFE_INTEGER);
    let total = 0;
    let bots = 0;
    for (const day of days) {
      // Visitor counts stay 0: a Shlink API says nothing about who visited.
      visits.addToDay(id, day.day, day.total, day.bots, 0);
      visits.addToDomainDay(domain, day.day, day.total, day.bots);
      total += day.total;
      bots += day.bots;
    }
    visits.addToTotals("non_orphan", total, bots);
    links.addVisits(id, total, bots);
    if (kept < total) purges.countLinkPurged(id, total - kept);
    return total;
  }
}
