/**
 * `shortener webhooks create|list|delete|deliveries|retry`: manage webhooks on the node's database, as the REST
 * API does. The signing secret is printed once, alone on stdout, at creation. A running server notices webhooks
 * created or deleted here at its next event (it watches the database's data_version).
 */
import { createApp } from "../app";
import type { Command } from "../commands/command";
import { loadConfig } from "../config";
import { DELIVERY_STATES, parseId, parseWebhookInput } from "../domain/webhooks";
import { AppError, UsageError } from "../errors";
import type { ParsedArgs } from "../lib/args";
import { formatIsoDate } from "../lib/iso-date";
import type { DeliveryState } from "../storage/webhook-store";
import { stringFlag } from "./flags";
import { refuseWriteOffPrimary } from "./replica-guard";

/** Bad input, as the API's invalid-data problem puts it, becomes a usage error (exit 2). */
function asUsage(error: unknown): never {
  if (error instanceof AppError && error.status < 500) throw new UsageError(error.detail);
  throw error;
}

function idArgument(args: ParsedArgs, what: string, index: number): number {
  const raw = args.positionals[index];
  const id = parseId(raw);
  if (id === null) throw new UsageError(raw === undefined ? `needs the ${what}` : `"${raw}" is not a ${what}`);
  return id;
}

export const webhooks: Command = {
  name: "webhooks",
  usage:
    "shortener webhooks create --url URL --events link.created,link.updated,link.deleted,link.visited [--name NAME] | webhooks list [--json] | " +
    "webhooks delete ID | webhooks enable|disable ID | webhooks rotate-secret ID | webhooks deliveries ID [--state pending|delivered|dead] [--json] | webhooks retry ID DELIVERY_ID",
  summary: "manage webhooks (the signing secret is printed once, at creation)",
  options: ["url", "events", "name", "state"],
  booleans: ["json"],
  async run(args) {
    const action = args.positionals[0];
    const config = loadConfig(args.flags, process.env);
    if (action !== undefined && !["list", "deliveries"].includes(action))
      await refuseWriteOffPrimary(config, process.env, `webhooks ${action}`);
    await using app = createApp(config);
    const json = args.flags.has("json");
    switch (action) {
      case "create": {
        let input: ReturnType<typeof parseWebhookInput>;
        try {
          input = parseWebhookInput(
            { url: stringFlag(args, "url"), events: stringFlag(args, "events"), name: stringFlag(args, "name") },
            { allowLoopback: config.webhookAllowLoopback },
          );
        } catch (error) {
          asUsage(error);
        }
        const { webhook, secret } = await app.webhooks.create(input, null);
        process.stdout.write(`${secret}\n`);
        console.error(
          `created webhook ${webhook.id} for ${webhook.url} (${webhook.events.join(", ")}); the secret above is shown only now`,
        );
        return 0;
      }
      case "list": {
        const list = app.webhooks.list(null);
        if (json) {
          console.log(JSON.stringify(list));
          return 0;
        }
        console.log(["ID", "NAME", "URL", "EVENTS", "CREATED", "DISABLED", "PENDING", "DEAD"].join("\t"));
        for (const w of list) {
          const columns = [w.id, w.name ?? "-", w.url, w.events.join(","), formatIsoDate(w.createdAt), w.disabled ? "yes" : "no"];
          console.log([...columns, w.deliveries.pending, w.deliveries.dead].join("\t"));
        }
        return 0;
      }
      case "delete": {
        const id = idArgument(args, "webhook ID", 1);
        await app.webhooks.delete(id, null).catch(asUsage);
        console.error(`deleted webhook ${id} and its deliveries`);
        return 0;
      }
      case "rotate-secret": {
        const id = idArgument(args, "webhook ID", 1);
        let rotated: Awaited<ReturnType<typeof app.webhooks.rotateSecret>>;
        try {
          rotated = await app.webhooks.rotateSecret(id, null);
        } catch (error) {
          asUsage(error);
        }
        process.stdout.write(`${rotated.secret}\n`);
        const until = formatIsoDate(rotated.webhook.previousSecretUntil as number);
        console.error(`webhook ${id} has a new secret (above, shown only now); the old one also signs deliveries until ${until}`);
        return 0;
      }
      case "enable":
      case "disable": {
        const id = idArgument(args, "webhook ID", 1);
        await app.webhooks.setDisabled(id, action === "disable", null).catch(asUsage);
        console.error(action === "enable" ? `enabled webhook ${id}; its waiting deliveries are sent now` : `disabled webhook ${id}`);
        return 0;
      }
      case "deliveries": {
        const id = idArgument(args, "webhook ID", 1);
        const state = stringFlag(args, "state") ?? null;
        if (state !== null && !DELIVERY_STATES.includes(state as DeliveryState))
          throw new UsageError(`--state "${state}" is not one of ${DELIVERY_STATES.join(", ")}`);
        let list: ReturnType<typeof app.webhooks.deliveries> = [];
        try {
          list = app.webhooks.deliveries(id, { state: state as DeliveryState | null, limit: 100 }, null);
        } catch (error) {
          asUsage(error);
        }
        if (json) {
          console.log(JSON.stringify(list));
          return 0;
        }
        console.log(["ID", "MESSAGE", "EVENT", "STATE", "ATTEMPTS", "LAST ERROR"].join("\t"));
        for (const d of list) console.log([d.id, d.messageId, d.eventType, d.state, d.attempts, d.lastError ?? "-"].join("\t"));
        return 0;
      }
      case "retry": {
        const id = idArgument(args, "webhook ID", 1);
        const deliveryId = idArgument(args, "DELIVERY_ID", 2);
        await app.webhooks.retry(id, deliveryId, null).catch(asUsage);
        console.error(`delivery ${deliveryId} is back in line; the running server sends it within a second`);
        return 0;
      }
      default:
        throw new UsageError(
          action === undefined
            ? "webhooks needs an action: create, list, delete, enable, disable, rotate-secret, deliveries or retry"
            : `unknown webhooks action "${action}"`,
        );
    }
  },
};
