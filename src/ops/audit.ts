/**
 * `shortener audit`: the audit history from the node's own database, newest first, for whoever can read it (no API
 * key needed on the machine itself): who changed which link, key or webhook, when, and what each change was.
 */
import { createApp } from "../app";
import type { Command } from "../commands/command";
import { loadConfig } from "../config";
import { auditEventJson } from "../domain/audit-log";
import { UsageError } from "../errors";
import { formatIsoDate } from "../lib/iso-date";
import type { AuditFilter } from "../storage/audit-store";
import { instantFlag, stringFlag } from "./flags";

const OWN_FLAGS = ["short-code", "domain", "actor", "since", "until", "limit", "json"];
const LIMIT_DEFAULT = 50;
const LIMIT_MAX = 100_000;

export const audit: Command = {
  name: "audit",
  usage: "shortener audit [--short-code C [--domain D]] [--actor NAME] [--since T] [--until T] [--limit N] [--json]",
  summary: "the audit history: who changed what, and when, newest first",
  options: ["short-code", "domain", "actor", "since", "until", "limit"],
  booleans: ["json"],
  async run(args) {
    if (args.positionals.length > 0) throw new UsageError(`unexpected argument "${args.positionals[0]}"`);
    const settings = new Map(args.flags);
    for (const own of OWN_FLAGS) settings.delete(own);
    const config = loadConfig(settings, process.env);
    const now = Date.now();
    const code = stringFlag(args, "short-code");
    const domain = stringFlag(args, "domain");
    if (domain !== undefined && code === undefined) throw new UsageError("--domain needs --short-code C: it picks one link's history");
    const rawLimit = stringFlag(args, "limit") ?? String(LIMIT_DEFAULT);
    if (!/^\d+$/.test(rawLimit) || Number(rawLimit) < 1 || Number(rawLimit) > LIMIT_MAX) {
      throw new UsageError(`--limit "${rawLimit}" must be a whole number from 1 to ${LIMIT_MAX}`);
    }
    const filter: AuditFilter = { from: instantFlag(args, "since", now), to: instantFlag(args, "until", now) };
    if (filter.from !== undefined && filter.to !== undefined && filter.from > filter.to) throw new UsageError("--since is after --until");
    const actor = stringFlag(args, "actor");
    if (actor !== undefined) filter.actor = actor;
    await using app = createApp(config);
    if (code !== undefined) filter.link = { domain: app.shortUrls.domainKey(domain), shortCode: code };
    const { items } = app.audit.list({ filter, page: 1, itemsPerPage: Number(rawLimit) });
    if (args.flags.has("json")) {
      console.log(JSON.stringify(items.map(auditEventJson)));
      return 0;
    }
    const rows = [["DATE", "ACTION", "ACTOR", "SUBJECT", "DETAILS"]];
    for (const e of items)
      rows.push([formatIsoDate(e.at), e.action, `${e.actor.type}:${e.actor.name}`, e.subject, JSON.stringify(e.details)]);
    console.log(rows.map((r) => r.join("\t")).join("\n"));
    return 0;
  },
};
