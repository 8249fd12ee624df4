/**
 * `shortener import db FILE --visits`, its second part: the visits an old primary recorded after the state a
 * promotion restored, to links both databases share. The restored state is that primary's own, so a link with an id
 * through the link cut is the same link here under the same id (unless deleted here since); raw visit ids are given in
 * order, so the visits past the state are those with ids above the visit cut (`promote` keeps both cuts in
 * replica.env). The newer links' visits came with their links.
 *
 * Each batch is written in one transaction with its name in the ledger of visits taken from elsewhere (the standby
 * shipments' ledger), a name that says which file and which of its visit ids it covers: a later run from that file,
 * whatever cuts it was given, leaves out the visits in the ranges already named, so none is written twice. The file
 * is named by its lineage (storage/database-lineage.ts), which every restore that may be served renews: a file from
 * another promotion gives the same visit ids to other visits, and its ranges stay apart. A file older than lineages
 * is named by the link cut, as before lineages were kept. Visitor counts stay 0, as with any imported visit: raw rows
 * keep no visitor hash.
 */
import type { LinkImportWriter } from "../domain/link-import";
import type { ParsedArgs } from "../lib/args";
import { readReplicaEnv } from "../storage/replica-epoch";
import { IMPORTED_BATCH_PREFIX, type ShipmentLedger } from "../storage/shipment-ledger";
import type { StagedVisit, VisitStaging } from "../storage/visit-staging";
import type { DatabaseSource } from "./database-source";
import { wholeNumberFlag } from "./flags";

/** Visits per batch: one transaction each, as long as a visit flush's chunk or so. */
const BATCH = 5000;

export interface LaterVisitsTally {
  /** The visit cut: visits with higher ids were looked at. */
  afterVisitId: number;
  imported: number;
  /** Written by a run before (their batches are in the ledger, with how many it wrote). */
  alreadyHere: number;
  /** To links deleted here since the promotion: not written. */
  linkGone: number;
}

/** The visit cut: --after-visit-id, else what `promote` kept in replica.env; null when neither says. */
export function afterVisitIdOf(args: ParsedArgs, dataDir: string): number | null {
  return wholeNumberFlag(args, "after-visit-id") ?? readReplicaEnv(dataDir)?.restoredVisitId ?? null;
}

/** How the ledger names the file the batches come from: its lineage, or for a file older than lineages the link cut. */
export function batchSourceName(lineage: string | null, throughLinkId: number): string {
  return lineage === null ? `links-${throughLinkId}` : `lineage-${lineage}`;
}

/** Writes `file`'s visits above `afterVisitId` to its links through `throughLinkId` into this database. */
export async function importLaterVisits(
  file: DatabaseSource,
  cut: { afterVisitId: number; throughLinkId: number },
  writer: LinkImportWriter,
  staging: VisitStaging,
  ledger: ShipmentLedger,
): Promise<LaterVisitsTally> {
  const tally: LaterVisitsTally = { afterVisitId: cut.afterVisitId, imported: 0, alreadyHere: 0, linkGone: 0 };
  const prefix = `${IMPORTED_BATCH_PREFIX}${batchSourceName(file.lineage, cut.throughLinkId)}:visits-`;
  const covered = new CoveredIds(ledger.namesStartingWith(prefix), prefix);
  for (const batch of file.laterVisits(cut.afterVisitId, cut.throughLinkId, BATCH)) {
    const links = new Map<number, { id: number; domain: string; shortCode: string; visits: StagedVisit[]; before: number }>();
    let first: number | null = null;
    let last = 0;
    for (const { id: visitId, link, domain, shortCode, visit } of batch) {
      const entry = links.get(link) ?? { id: link, domain, shortCode, visits: [], before: 0 };
      links.set(link, entry);
      if (covered.has(visitId)) {
        entry.before++;
        continue;
      }
      entry.visits.push(visit);
      first ??= visitId;
      last = visitId;
    }
    for (const { id, visits } of links.values()) if (visits.length > 0) staging.add(id, visits);
    const outcome = await writer.writeLater(
      {
        name: first === null ? null : `${prefix}${first}-${last}`,
        links: [...links.values()].map(({ id, domain, shortCode, visits, before }) => ({
          id,
          domain,
          shortCode,
          visits: visits.length,
          before,
        })),
      },
      staging,
      ledger,
    );
    staging.clear();
    tally.imported += outcome.written;
    tally.alreadyHere += outcome.before;
    tally.linkGone += outcome.gone;
    process.stderr.write(`import: ${tally.imported} later visits imported, ${tally.alreadyHere} already here\n`);
  }
  return tally;
}

/**
 * The source visit id ranges named in the ledger under a prefix (`…visits-FIRST-LAST`), asked about ids in rising
 * order. A range covers every visit between its ends: each one to a link through the cut was in that batch, or left
 * out of it as covered by an earlier one. Ranges written by runs with other cuts may nest or overlap.
 */
export class CoveredIds {
  readonly #ranges: [number, number][] = [];
  #next = 0;

  constructor(names: readonly string[], prefix: string) {
    for (const name of names) {
      const match = /^(\d+)-(\d+)$/.exec(name.slice(prefix.length));
      if (match !== null) this.#ranges.push([Number(match[1]), Number(match[2])]);
    }
    this.#ranges.sort((a, b) => a[0] - b[0]);
  }

  /** Whether `id` is in a range; each call's id must be above the last one's. */
  has(id: number): boolean {
    // A range that ends below this id ends below every later one.
    while (this.#next < this.#ranges.length && (this.#ranges[this.#next] as [number, number])[1] < id) this.#next++;
    const range = this.#ranges[this.#next];
    return range !== undefined && range[0] <= id;
  }
}
