/**
 * `shortener import shlink URL [--visits] [--json]`: copies the links of a server that speaks Shlink's REST API v3
 * (Shlink, or another node of this shortener) into this node's database, with --visits their visits too, as
 * domain/link-import.ts writes them. The server may run meanwhile: the import writes a batch at a time, and a new link
 * is served at once (on a domain the running server had no link on yet, within seconds: it reads them again). The
 * source's API key comes from SHLINK_API_KEY, never a flag, so it is not in the process list or shell history.
 * `shortener import db FILE [--after-link-id N]` does the same from another database of this shortener, for the links
 * with ids above N (by default the last id of the state `promote` restored on this node): the links an old primary
 * acknowledged after that state, which only its set-aside database holds (ops/database-source.ts); with --visits
 * also its visits after that state to the older links (ops/import-later-visits.ts).
 */
import { resolve } from "node:path";
import { createApp } from "../app";
import type { Command } from "../commands/command";
import { loadConfig } from "../config";
import {
  type ImportBatchEntry,
  type ImportedLink,
  importedLink,
  importedRules,
  LinkImportWriter,
  stagedVisit,
} from "../domain/link-import";
import { UsageError } from "../errors";
import type { ParsedArgs } from "../lib/args";
import { RedirectRuleStore } from "../storage/redirect-rule-store";
import { readReplicaEnv } from "../storage/replica-epoch";
import { ShipmentLedger } from "../storage/shipment-ledger";
import { ShortUrlStore } from "../storage/short-url-store";
import { TagStore } from "../storage/tag-store";
import { VisitPurgeStore } from "../storage/visit-purge-store";
import { VisitStaging } from "../storage/visit-staging";
import { VisitStore } from "../storage/visit-store";
import { openDatabaseSource } from "./database-source";
import { wholeNumberFlag } from "./flags";
import { afterVisitIdOf, importLaterVisits, type LaterVisitsTally } from "./import-later-visits";
import { refuseEmptyDatabaseOverReplica, refuseWriteOffPrimary } from "./replica-guard";
import { ShlinkSource, SourceFailed } from "./shlink-source";

/** A batch is written once it holds this many links or staged visits (one transaction, one fsync). */
const BATCH_LINKS = 100;
const BATCH_VISITS = 50_000;

interface Problem {
  shortCode: string;
  domain: string | null;
  reason: string;
}

type Json = Record<string, unknown>;

/** The source's visit count of a link, when it says (visitsSummary since Shlink 3.4, visitsCount before). */
function visitCount(raw: Json): number | null {
  const summary = raw.visitsSummary as Json | undefined;
  if (summary !== null && typeof summary === "object" && typeof summary.total === "number") return summary.total;
  return typeof raw.visitsCount === "number" ? raw.visitsCount : null;
}

export const importLinks: Command = {
  name: "import",
  usage:
    "shortener import shlink URL [--visits] [--json]  (the source's API key in the environment: SHLINK_API_KEY) | import db FILE [--after-link-id N] [--visits [--after-visit-id N]] [--json]",
  summary: "copy links, with --visits their visits, from a Shlink server's REST API, or another database's newer links, into this database",
  booleans: ["visits", "json"],
  options: ["after-link-id", "after-visit-id"],
  async run(args) {
    const [kind, from, extra] = args.positionals;
    if (kind !== "shlink" && kind !== "db") {
      throw new UsageError(
        kind === undefined ? "import needs a source: shlink URL, or db FILE" : `unknown source "${kind}"; try: shlink URL, or db FILE`,
      );
    }
    if (kind === "shlink" && (from === undefined || !/^https?:\/\/[^/]/.test(from) || !URL.canParse(from))) {
      throw new UsageError("import shlink needs the source's base URL, e.g. https://s.example.com");
    }
    if (from === undefined) throw new UsageError("import db needs the database file, e.g. /var/lib/shortener/before-demotion/shortener.db");
    if (extra !== undefined) throw new UsageError(`unexpected argument "${extra}"`);
    for (const flag of ["after-link-id", "after-visit-id"]) {
      if (kind === "shlink" && args.flags.has(flag)) throw new UsageError(`--${flag} is for import db FILE`);
    }
    if (args.flags.has("after-visit-id") && !args.flags.has("visits")) throw new UsageError("--after-visit-id goes with --visits");
    const apiKey = process.env.SHLINK_API_KEY ?? "";
    if (kind === "shlink" && apiKey === "")
      throw new UsageError("set SHLINK_API_KEY to an API key of the source (it is never taken as a flag)");
    const settings = new Map(args.flags);
    for (const own of ["visits", "json", "after-link-id", "after-visit-id"]) settings.delete(own);
    const config = loadConfig(settings, process.env);
    const afterLinkId = kind === "db" ? afterLinkIdOf(args, config.dataDir) : 0;
    const afterVisitId = kind === "db" && args.flags.has("visits") ? afterVisitIdOf(args, config.dataDir) : null;
    await refuseWriteOffPrimary(config, process.env, `import ${kind}`);
    await refuseEmptyDatabaseOverReplica(config, process.env);
    await using app = createApp(config);
    await using file = kind === "db" ? await openDatabaseSource(from, afterLinkId, config.minDiskFreeBytes) : null;
    using staging = new VisitStaging(app.db, config.dataDir);
    const links = new ShortUrlStore(app.db);
    const stores = {
      links,
      tags: new TagStore(app.db),
      rules: new RedirectRuleStore(app.db),
      visits: new VisitStore(app.db),
      purges: new VisitPurgeStore(app.db),
    };
    const writer = new LinkImportWriter(
      app.db,
      stores,
      app.audit,
      kind === "db" ? `file:${resolve(from)}` : from,
      config.visitsRetentionMs,
    );
    const source = file?.source ?? new ShlinkSource(from, apiKey);
    if (file !== null) process.stderr.write(`import: ${file.count} links in ${from} have ids above ${afterLinkId}\n`);
    const withVisits = args.flags.has("visits");
    // Visits up to now (the end of this second: the API's dates are whole seconds); those arriving at the source
    // meanwhile would shift its pages under the reader.
    const until = Math.ceil(Date.now() / 1000) * 1000;
    const tally = { imported: 0, visits: 0, present: 0 };
    const conflicts: (Problem & { here: string })[] = [];
    const refused: Problem[] = [];
    let batch: ImportBatchEntry[] = [];
    let stagedVisits = 0;
    let staged = 0;

    const conflict = (link: ImportedLink, here: string) =>
      conflicts.push({
        shortCode: link.input.customSlug,
        domain: link.domain === "" ? null : link.domain,
        reason: "taken here by another long URL",
        here,
      });

    const flush = async () => {
      if (batch.length === 0) return;
      const outcomes = await writer.write(batch, staging);
      outcomes.forEach((outcome, i) => {
        const { link } = batch[i] as ImportBatchEntry;
        if (outcome.kind === "imported") {
          tally.imported++;
          tally.visits += outcome.visits;
        } else if (outcome.kind === "present") tally.present++;
        else if (outcome.kind === "conflict") conflict(link, outcome.longUrl);
      });
      batch = [];
      stagedVisits = 0;
      staging.clear();
      process.stderr.write(`import: ${tally.imported} links imported (${tally.visits} visits), ${tally.present} already here\n`);
    };

    try {
      for await (const raw of file?.links() ?? source.links()) {
        const sourceDomain = typeof raw.domain === "string" && raw.domain !== "" ? raw.domain : null;
        const link: ImportedLink | { refused: string } = importedLink(raw, (d) => app.shortUrls.domainKey(d));
        const code = String(raw.shortCode);
        if ("refused" in link) {
          refused.push({ shortCode: code, domain: sourceDomain, reason: link.refused });
          continue;
        }
        // Already here: nothing more to ask the source (a second run repeats no request for what the first wrote).
        const here = links.find(link.domain, code);
        if (here !== null) {
          if (here.long_url === link.input.longUrl) tally.present++;
          else conflict(link, here.long_url);
          continue;
        }
        const rules = raw.hasRedirectRules === false ? [] : importedRules(await source.redirectRules(code, sourceDomain));
        if ("refused" in rules) {
          refused.push({ shortCode: code, domain: sourceDomain, reason: rules.refused });
          continue;
        }
        const number = staged++;
        if (withVisits && visitCount(raw) !== 0) {
          let undated = 0;
          for await (const page of source.visits(code, sourceDomain, until)) {
            const rows = page.map(stagedVisit);
            const dated = rows.filter((row) => row !== null);
            undated += rows.length - dated.length;
            staging.add(number, dated);
            stagedVisits += dated.length;
          }
          if (undated > 0) {
            refused.push({ shortCode: code, domain: sourceDomain, reason: `${undated} of its visits have no valid date` });
            continue;
          }
        }
        batch.push({ link, rules, staged: number });
        if (batch.length >= BATCH_LINKS || stagedVisits >= BATCH_VISITS) await flush();
      }
      await flush();
    } catch (error) {
      // The links read whole so far are written, and what was written stays: running the import again goes on.
      if (!(error instanceof SourceFailed)) throw error;
      await flush();
      throw new Error(`${error.message}. The ${tally.imported} links imported so far stay; run the import again to go on`);
    }

    const later =
      file !== null && afterVisitId !== null
        ? await importLaterVisits(file, { afterVisitId, throughLinkId: afterLinkId }, writer, staging, new ShipmentLedger(app.db))
        : null;

    if (args.flags.has("json")) {
      console.log(JSON.stringify({ ...tally, ...(kind === "db" && withVisits ? { laterVisits: later } : {}), conflicts, refused }));
    } else {
      for (const c of conflicts) console.log(`conflict\t${label(c)}\t${c.reason} (${c.here})`);
      for (const r of refused) console.log(`refused\t${label(r)}\t${r.reason}`);
      if (kind === "db" && withVisits) console.log(laterLine(later, afterLinkId));
      console.log(
        `imported ${tally.imported} links (${tally.visits} visits); ${tally.present} already here; ` +
          `${conflicts.length} conflicts; ${refused.length} refused`,
      );
    }
    return conflicts.length === 0 && refused.length === 0 ? 0 : 1;
  },
};

/**
 * `import db`'s cut: links with higher ids than this were created after it. --after-link-id, else what `promote`
 * kept in this node's replica.env (the last link id of the state it restored).
 */
function afterLinkIdOf(args: ParsedArgs, dataDir: string): number {
  const given = wholeNumberFlag(args, "after-link-id");
  if (given !== undefined) return given;
  const restored = readReplicaEnv(dataDir)?.restoredLinkId;
  if (restored == null) {
    throw new UsageError(
      "this node's replica.env names no restored link id (promote keeps it there when it restores an old epoch): give --after-link-id N, the ids through which promote printed that it restored",
    );
  }
  return restored;
}

/** What import db did with the old primary's later visits to the older links. */
function laterLine(later: LaterVisitsTally | null, afterLinkId: number): string {
  if (later === null) {
    return "later visits to links through the cut: not imported; this node's replica.env names no restored visit id (promote keeps it there): give --after-visit-id N, the visit ids through which promote printed that it restored";
  }
  return (
    `later visits to links through id ${afterLinkId}: imported ${later.imported} (ids above ${later.afterVisitId}); ` +
    `${later.alreadyHere} already here; ${later.linkGone} to links deleted here`
  );
}

const label = (p: Problem) => (p.domain === null ? p.shortCode : `${p.domain}/${p.shortCode}`);
