/**
 * /rest/v3/webhooks: our extension to Shlink's API, in its style (list envelopes, problem+json naming the
 * field). The signing secret is in the creation's answer only.
 */
import { Elysia } from "elysia";
import {
  DELIVERY_STATES,
  type Delivery,
  deliveryNotFound,
  parseId,
  parseWebhookEdit,
  parseWebhookInput,
  type Webhook,
  webhookNotFound,
} from "../../domain/webhooks";
import { invalidField } from "../../errors";
import { formatIsoDate } from "../../lib/iso-date";
import type { DeliveryState } from "../../storage/webhook-store";
import type { HttpDeps } from "../deps";
import { jsonResponse } from "../json-response";
import { requireApiKey, searchParams } from "./auth";

const DELIVERIES_DEFAULT = 50;
const DELIVERIES_MAX = 500;

const isoOrNull = (ms: number | null) => (ms === null ? null : formatIsoDate(ms));

function webhookJson(w: Webhook) {
  return {
    id: String(w.id),
    name: w.name,
    url: w.url,
    events: w.events,
    dateCreated: formatIsoDate(w.createdAt),
    disabled: w.disabled,
    previousSecretValidUntil: isoOrNull(w.previousSecretUntil),
    deliveriesSummary: w.deliveries,
  };
}

function deliveryJson(d: Delivery) {
  return {
    id: String(d.id),
    messageId: d.messageId,
    eventType: d.eventType,
    state: d.state,
    attempts: d.attempts,
    nextAttemptAt: isoOrNull(d.nextAttemptAt),
    lastStatus: d.lastStatus,
    lastError: d.lastError,
    dateCreated: formatIsoDate(d.createdAt),
    dateUpdated: formatIsoDate(d.updatedAt),
    dateDelivered: isoOrNull(d.deliveredAt),
    payload: d.payload,
  };
}

function webhookId(params: { id?: string }): number {
  const id = parseId(params.id);
  if (id === null) throw webhookNotFound(params.id ?? "");
  return id;
}

function deliveriesQuery(params: URLSearchParams): { state: DeliveryState | null; limit: number; beforeId?: number } {
  const state = params.get("state");
  if (state !== null && !DELIVERY_STATES.includes(state as DeliveryState))
    throw invalidField("state", `must be one of ${DELIVERY_STATES.join(", ")}`);
  const rawLimit = params.get("itemsPerPage");
  const limit = rawLimit === null ? DELIVERIES_DEFAULT : Number(rawLimit);
  if (!Number.isInteger(limit) || limit < 1 || limit > DELIVERIES_MAX)
    throw invalidField("itemsPerPage", `must be a whole number from 1 to ${DELIVERIES_MAX}`);
  const rawBefore = params.get("beforeId");
  const beforeId = rawBefore === null ? undefined : parseId(rawBefore);
  if (beforeId === null) throw invalidField("beforeId", "must be a delivery id");
  return { state: state as DeliveryState | null, limit, beforeId };
}

export function webhookRoutes(ctx: HttpDeps) {
  return new Elysia({ name: "webhooks" })
    .get("/rest/v3/webhooks", ({ request }) => {
      const key = requireApiKey(ctx, request);
      return jsonResponse({ webhooks: { data: ctx.webhooks.list(key).map(webhookJson) } });
    })
    .post("/rest/v3/webhooks", async ({ request, body }) => {
      const key = requireApiKey(ctx, request);
      const { webhook, secret } = await ctx.webhooks.create(
        parseWebhookInput(body, { allowLoopback: ctx.config.webhookAllowLoopback }),
        key,
      );
      return jsonResponse({ ...webhookJson(webhook), secret }, { status: 201, headers: { "Cache-Control": "no-store" } });
    })
    .get("/rest/v3/webhooks/:id", ({ request, params }) => {
      const key = requireApiKey(ctx, request);
      return jsonResponse(webhookJson(ctx.webhooks.get(webhookId(params), key)));
    })
    .patch("/rest/v3/webhooks/:id", async ({ request, params, body }) => {
      const key = requireApiKey(ctx, request);
      const id = webhookId(params);
      return jsonResponse(webhookJson(await ctx.webhooks.setDisabled(id, parseWebhookEdit(body).disabled, key)));
    })
    .delete("/rest/v3/webhooks/:id", async ({ request, params }) => {
      const key = requireApiKey(ctx, request);
      await ctx.webhooks.delete(webhookId(params), key);
      return new Response(null, { status: 204 });
    })
    .post("/rest/v3/webhooks/:id/rotate-secret", async ({ request, params }) => {
      const key = requireApiKey(ctx, request);
      const { webhook, secret } = await ctx.webhooks.rotateSecret(webhookId(params), key);
      return jsonResponse({ ...webhookJson(webhook), secret }, { headers: { "Cache-Control": "no-store" } });
    })
    .get("/rest/v3/webhooks/:id/deliveries", ({ request, params }) => {
      const key = requireApiKey(ctx, request);
      const deliveries = ctx.webhooks.deliveries(webhookId(params), deliveriesQuery(searchParams(request)), key);
      return jsonResponse({ deliveries: { data: deliveries.map(deliveryJson) } });
    })
    .post("/rest/v3/webhooks/:id/deliveries/:deliveryId/retry", async ({ request, params }) => {
      const key = requireApiKey(ctx, request);
      const id = webhookId(params);
      const deliveryId = parseId(params.deliveryId);
      if (deliveryId === null) throw deliveryNotFound(id, params.deliveryId ?? "");
      return jsonResponse(deliveryJson(await ctx.webhooks.retry(id, deliveryId, key)));
    });
}
