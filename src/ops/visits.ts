import { type AppContext, createApp } from "../app";
import type { Command } from "../commands/command";
import { loadConfig } from "../config";
import { AppError, UsageError } from "../errors";
import { formatIsoDate } from "../lib/iso-date";
import type { VisitRecord } from "../storage/visit-query-store";
import { instantFlag, stringFlag } from "./flags";

const DAY_MS = 86_400_000;

/** CSV columns, in order: the stored visit as the API shows it, plus the (anonymised) address. */
const CSV_COLUMNS: readonly [string, (v: VisitRecord) => string | number | null][] = [
  ["date", (v) => formatIsoDate(v.at)],
  ["referer", (v) => v.referer],
  ["user_agent", (v) => v.user_agent],
  ["potential_bot", (v) => (v.potential_bot === 1 ? "true" : "false")],
  ["visited_url", (v) => v.visited_url],
  ["redirect_url", (v) => v.redirect_url],
  ["remote_addr", (v) => v.remote_addr],
  ["country_code", (v) => v.country_code],
  ["country_name", (v) => v.country_name],
  ["region_name", (v) => v.region_name],
  ["city_name", (v) => v.city_name],
  ["latitude", (v) => v.latitude],
  ["longitude", (v) => v.longitude],
  ["timezone", (v) => v.timezone],
];

/** One RFC 4180 field: quoted when it holds a comma, a quote, CR or LF, with quotes doubled. */
export function csvField(value: string | number | null): string {
  if (value === null) return "";
  const text = String(value);
  return /[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

/** An RFC 4180 record, CRLF-terminated. */
export function csvRecord(fields: readonly (string | number | null)[]): string {
  return `${fields.map(csvField).join(",")}\r\n`;
}

/** The link, or a usage error with a hint: a mistyped code is a misuse, not a failure to retry. */
function findLink(app: AppContext, code: string, domain: string | undefined) {
  try {
    return app.shortUrls.get(code, domain);
  } catch (error) {
    if (error instanceof AppError && error.status === 404) {
      throw new UsageError(`${error.detail}. Try: check the code and its --domain (the default domain needs none)`);
    }
    throw error;
  }
}

const table = (rows: (string | number)[][]) => rows.map((r) => r.join("\t")).join("\n");

export const visits: Command = {
  name: "visits",
  usage: "shortener visits [--short-code C [--domain D]] [--csv] [--since T] [--until T]",
  summary: "visit totals (per day for a link), or a link's visits as CSV on stdout",
  options: ["short-code", "domain", "since", "until"],
  booleans: ["csv"],
  async run(args) {
    if (args.positionals.length > 0) throw new UsageError(`unexpected argument "${args.positionals[0]}"`);
    const settings = new Map(args.flags);
    for (const own of ["short-code", "domain", "since", "until", "csv"]) settings.delete(own);
    const config = loadConfig(settings, process.env);
    const now = Date.now();
    const code = stringFlag(args, "short-code");
    const domain = stringFlag(args, "domain");
    const since = instantFlag(args, "since", now);
    const until = instantFlag(args, "until", now);
    const csv = args.flags.has("csv");
    if (code === undefined && (csv || domain !== undefined || since !== undefined || until !== undefined)) {
      throw new UsageError("--csv, --domain, --since and --until need --short-code C");
    }
    if (since !== undefined && until !== undefined && since > until) throw new UsageError("--since is after --until");
    await using app = createApp(config);
    if (code === undefined) {
      const { nonOrphanVisits: n, orphanVisits: o } = app.visitQueries.overview();
      console.log(
        table([
          ["KIND", "TOTAL", "NON-BOTS", "BOTS"],
          ["non-orphan", n.total, n.nonBots, n.bots],
          ["orphan", o.total, o.nonBots, o.bots],
        ]),
      );
      return 0;
    }
    const link = findLink(app, code, domain);
    if (csv) {
      const out = Bun.stdout.writer();
      try {
        out.write(csvRecord(CSV_COLUMNS.map(([name]) => name)));
        let written = 0;
        for (const visit of app.visitQueries.linkVisitsOldestFirst(link.id, since, until)) {
          out.write(csvRecord(CSV_COLUMNS.map(([, value]) => value(visit))));
          if (++written % 1000 === 0) await out.flush();
        }
        await out.flush();
      } catch (error) {
        // The reader has gone (`shortener visits --csv | head`) and has all it wanted: end quietly, as rg does.
        if ((error as { code?: unknown }).code !== "EPIPE") throw error;
      }
      return 0;
    }
    const days = app.visitQueries.linkDays(link.id, since, until);
    const inRange = days.reduce((sum, d) => ({ total: sum.total + d.total, bots: sum.bots + d.bots }), { total: 0, bots: 0 });
    const lines = [
      `short URL\t${link.domain ?? config.defaultDomain}/${link.shortCode}`,
      `visits\t${link.visitsTotal} (non-bots ${link.visitsTotal - link.visitsBots}, bots ${link.visitsBots})`,
    ];
    if (since !== undefined || until !== undefined) {
      // Days are UTC days: the range is widened to whole days.
      lines.push(`in range\t${inRange.total} (non-bots ${inRange.total - inRange.bots}, bots ${inRange.bots})`);
    }
    console.log(lines.join("\n"));
    console.log(
      table([
        ["DAY", "TOTAL", "NON-BOTS", "BOTS", "VISITORS"],
        ...days.map((d) => [formatIsoDate(d.day * DAY_MS).slice(0, 10), d.total, d.total - d.bots, d.bots, d.visitors]),
      ]),
    );
    return 0;
  },
};
