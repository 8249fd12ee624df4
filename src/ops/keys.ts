import { createApp } from "../app";
import type { Command } from "../commands/command";
import { loadConfig } from "../config";
import { UsageError } from "../errors";
import { parseDuration } from "../lib/duration";
import { formatIsoDate, parseIsoDate } from "../lib/iso-date";
import { stringFlag } from "./flags";
import { refuseEmptyDatabaseOverReplica, refuseWriteOffPrimary } from "./replica-guard";

/** `--expires` takes an ISO 8601 instant or a duration from now (90d, 12h). */
function parseExpiry(raw: string | true | undefined, now: number): number | null {
  if (raw === undefined) return null;
  if (raw === true) throw new UsageError("--expires needs a value, e.g. 2027-01-01T00:00:00Z or 90d");
  const at = parseIsoDate(raw);
  if (at !== null) return at;
  const after = parseDuration(raw);
  if (after !== null && /[a-z]$/.test(raw)) return now + after;
  throw new UsageError(`--expires "${raw}" is neither an ISO 8601 date nor a duration like 90d`);
}

export const keys: Command = {
  name: "keys",
  usage: "shortener keys create --name NAME [--role admin|read-only] [--expires T] | keys list [--json] | keys revoke NAME",
  summary: "manage API keys (the secret is printed once, at creation)",
  options: ["name", "role", "expires"],
  booleans: ["json"],
  async run(args) {
    const [action, ...rest] = args.positionals;
    // Here --role is the key's role (DESIGN.md), not the node's; the node's role stays SHORTENER_ROLE.
    const settings = new Map(args.flags);
    settings.delete("role");
    const config = loadConfig(settings, process.env);
    if (action === "create" || action === "revoke") await refuseWriteOffPrimary(config, process.env, `keys ${action}`);
    // Any action opens the database, creating it on a new node: the replica may hold one to restore first.
    if (config.role === "primary") await refuseEmptyDatabaseOverReplica(config, process.env);
    await using app = createApp(config);
    switch (action) {
      case "create": {
        const name = stringFlag(args, "name");
        if (name === undefined) throw new UsageError("keys create needs --name NAME");
        const now = Date.now();
        const secret = app.apiKeys.create(name, stringFlag(args, "role") ?? "admin", parseExpiry(args.flags.get("expires"), now), now);
        process.stdout.write(`${secret}\n`);
        return 0;
      }
      case "list": {
        const list = app.apiKeys.list();
        if (args.flags.has("json")) {
          console.log(JSON.stringify(list));
          return 0;
        }
        const date = (ms: number | null) => (ms === null ? "-" : formatIsoDate(ms));
        console.log(["NAME", "ROLE", "CREATED", "EXPIRES", "REVOKED"].join("\t"));
        for (const k of list) console.log([k.name, k.role, date(k.createdAt), date(k.expiresAt), date(k.revokedAt)].join("\t"));
        return 0;
      }
      case "revoke": {
        const name = rest[0] ?? stringFlag(args, "name");
        if (name === undefined) throw new UsageError("keys revoke needs the key's NAME");
        try {
          app.apiKeys.revoke(name);
        } catch {
          throw new UsageError(`no active key named "${name}"; see: shortener keys list`);
        }
        console.error(`revoked key "${name}"`);
        return 0;
      }
      default:
        throw new UsageError(action === undefined ? "keys needs an action: create, list or revoke" : `unknown keys action "${action}"`);
    }
  },
};
