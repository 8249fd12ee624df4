/**
 * Webhook management: endpoints that receive signed link events (Standard Webhooks), their deliveries, and
 * putting dead deliveries back in line. Never sees HTTP. Only admin keys may manage webhooks: a webhook can read
 * every link and visit.
 */
import { AppError, forbidden, type InvalidElement, invalidData } from "../errors";
import { namesInternalHost } from "../lib/internal-address";
import { formatIsoDate } from "../lib/iso-date";
import type { GroupCommit } from "../storage/group-commit";
import type { DeliveryState, OutboxRow, WebhookRow, WebhookStore } from "../storage/webhook-store";
import type { ApiKey } from "./api-keys";
import { type AuditAction, type AuditActor, type AuditLog, cliActor, keyActor } from "./audit-log";
import { generateSecret } from "./webhooks-signature";

export const WEBHOOK_EVENTS = ["link.created", "link.updated", "link.deleted", "link.visited"] as const;
export type WebhookEventType = (typeof WEBHOOK_EVENTS)[number];
export const DELIVERY_STATES: readonly DeliveryState[] = ["pending", "delivered", "dead"];

const URL_MAX_BYTES = 2048;
/** How long a rotated-out secret still signs deliveries: a day for the receiver to switch. */
export const SECRET_OVERLAP_MS = 86_400_000;
/** Outbox rows deleted per transaction when a webhook is deleted (a few milliseconds each). */
const DELETE_BATCH = 2000;
/** A bound on the batches (20 million rows); whatever is left then goes with the webhook, in one transaction. */
const MAX_DELETE_BATCHES = 10_000;
const NAME_MAX_CHARS = 100;

export interface Webhook {
  id: number;
  name: string | null;
  url: string;
  events: WebhookEventType[];
  createdAt: number;
  disabled: boolean;
  /** Until when the secret replaced by the last rotation still signs deliveries too (epoch ms), or null. */
  previousSecretUntil: number | null;
  /** Deliveries waiting to be sent or retried, and dead ones, each counted up to 10 000. */
  deliveries: { pending: number; dead: number };
}

/** One event for one webhook, as the outbox holds it. */
export interface Delivery {
  id: number;
  messageId: string;
  eventType: string;
  state: DeliveryState;
  attempts: number;
  nextAttemptAt: number | null;
  lastStatus: number | null;
  lastError: string | null;
  createdAt: number;
  updatedAt: number;
  deliveredAt: number | null;
  /** The body sent, parsed. */
  payload: unknown;
}

export interface WebhookInput {
  url: string;
  events: WebhookEventType[];
  name: string | null;
}

export function webhookNotFound(id: string | number): AppError {
  return new AppError(404, "webhook-not-found", "Webhook not found", `No webhook found with id "${id}".`, { webhookId: String(id) });
}

export function deliveryNotFound(webhookId: number, id: string | number): AppError {
  return new AppError(404, "webhook-delivery-not-found", "Webhook delivery not found", `Webhook ${webhookId} has no delivery "${id}".`, {
    webhookId: String(webhookId),
    deliveryId: String(id),
  });
}

/** Where a webhook may be sent: this machine and link-local addresses only with --webhook-allow-loopback. */
export interface WebhookUrlPolicy {
  allowLoopback: boolean;
}

const LOOPBACK_REFUSED =
  "must not point at this machine or a link-local address (its own services and cloud metadata answer there); a receiver on this machine needs --webhook-allow-loopback";

/** The webhook URL, checked: absolute http(s), at most 2048 bytes, without credentials or a fragment. */
function parseUrl(raw: unknown, problems: InvalidElement[], policy: WebhookUrlPolicy): string | null {
  if (typeof raw !== "string" || raw.trim() === "") {
    problems.push({ field: "url", reason: "must be an absolute http or https URL" });
    return null;
  }
  let url: URL;
  try {
    url = new URL(raw.trim());
  } catch {
    problems.push({ field: "url", reason: "is not a valid URL" });
    return null;
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") problems.push({ field: "url", reason: "must use http or https" });
  else if (url.username !== "" || url.password !== "")
    problems.push({ field: "url", reason: "must not carry credentials (the signature authenticates deliveries)" });
  else if (url.hash !== "") problems.push({ field: "url", reason: "must not have a fragment" });
  else if (Buffer.byteLength(url.href) > URL_MAX_BYTES) problems.push({ field: "url", reason: `must be at most ${URL_MAX_BYTES} bytes` });
  else if (!policy.allowLoopback && namesInternalHost(url.hostname)) problems.push({ field: "url", reason: LOOPBACK_REFUSED });
  else return url.href;
  return null;
}

function parseEvents(raw: unknown, problems: InvalidElement[]): WebhookEventType[] {
  const list = typeof raw === "string" ? raw.split(",").map((e) => e.trim()) : raw;
  if (!Array.isArray(list) || list.length === 0 || list.some((e) => typeof e !== "string")) {
    problems.push({ field: "events", reason: `must be a non-empty list of: ${WEBHOOK_EVENTS.join(", ")}` });
    return [];
  }
  const unknown = list.filter((e) => !WEBHOOK_EVENTS.includes(e as WebhookEventType));
  if (unknown.length > 0) {
    problems.push({ field: "events", reason: `unknown event type ${JSON.stringify(unknown[0])}; allowed: ${WEBHOOK_EVENTS.join(", ")}` });
    return [];
  }
  return WEBHOOK_EVENTS.filter((e) => list.includes(e));
}

/** A webhook to create, from a request body or CLI flags; throws invalid-data naming each bad field. */
export function parseWebhookInput(body: unknown, policy: WebhookUrlPolicy): WebhookInput {
  const fields = body !== null && typeof body === "object" && !Array.isArray(body) ? (body as Record<string, unknown>) : {};
  const problems: InvalidElement[] = [];
  const url = parseUrl(fields.url, problems, policy);
  const events = parseEvents(fields.events, problems);
  let name: string | null = null;
  if (fields.name !== undefined && fields.name !== null) {
    if (typeof fields.name !== "string" || fields.name.trim() === "" || fields.name.length > NAME_MAX_CHARS)
      problems.push({ field: "name", reason: `must be a non-empty string of at most ${NAME_MAX_CHARS} characters` });
    else name = fields.name.trim();
  }
  if (problems.length > 0) throw invalidData(problems);
  return { url: url as string, events, name };
}

/** The body of a webhook edit: only `disabled` can change (a new URL or secret is a new webhook). */
export function parseWebhookEdit(body: unknown): { disabled: boolean } {
  const fields = body !== null && typeof body === "object" && !Array.isArray(body) ? (body as Record<string, unknown>) : {};
  if (typeof fields.disabled !== "boolean") throw invalidData([{ field: "disabled", reason: "must be true or false" }]);
  return { disabled: fields.disabled };
}

/** A positive integer id from a path or argument; anything else is no such thing. */
export function parseId(raw: string | undefined): number | null {
  if (raw === undefined || !/^[1-9]\d{0,15}$/.test(raw)) return null;
  return Number(raw);
}

function toWebhook(row: WebhookRow, deliveries: { pending: number; dead: number }): Webhook {
  return {
    id: row.id,
    name: row.name,
    url: row.url,
    events: row.events.split(",") as WebhookEventType[],
    createdAt: row.created_at,
    disabled: row.disabled !== 0,
    previousSecretUntil: row.previous_secret !== null ? row.previous_secret_until : null,
    deliveries,
  };
}

function toDelivery(row: OutboxRow): Delivery {
  return {
    id: row.id,
    messageId: row.message_id,
    eventType: row.event_type,
    state: row.state,
    attempts: row.attempts,
    nextAttemptAt: row.next_attempt_at,
    lastStatus: row.last_status,
    lastError: row.last_error,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    deliveredAt: row.delivered_at,
    payload: JSON.parse(row.payload),
  };
}

/** Who asks: an API key through the REST API, or null for the operator's CLI on the node. */
type Caller = ApiKey | null;

export class WebhookService {
  constructor(
    private readonly deps: {
      store: WebhookStore;
      writes: GroupCommit;
      /** Throws (503) when this node refuses writes (a standby). */
      guardWrites?: () => void;
      /** Told when the set of webhooks changed (the outbox's subscription cache). */
      onChange?: () => void;
      /** Told when a delivery was put back in line (wakes the dispatcher). */
      onRequeue?: () => void;
      /** Records who changed which webhook, in the change's transaction (never a secret). */
      audit?: AuditLog;
    },
  ) {}

  /** An admin key through the API, or someone at the command line (no key). */
  #record(caller: Caller, action: AuditAction, id: number, details: Record<string, unknown> = {}): void {
    const actor: AuditActor = caller === null ? cliActor() : keyActor(caller);
    this.deps.audit?.record(actor, action, `webhook ${id}`, details);
  }

  /** Creates a webhook; the secret is returned here only, to be shown once. */
  async create(input: WebhookInput, caller: Caller, now = Date.now()): Promise<{ webhook: Webhook; secret: string }> {
    this.#assertAdmin(caller);
    this.deps.guardWrites?.();
    const secret = generateSecret();
    const id = await this.deps.writes.run(() => {
      const created = this.deps.store.insertWebhook({
        name: input.name,
        url: input.url,
        secret,
        events: input.events.join(","),
        created_at: now,
      });
      this.#record(caller, "webhook.created", created, { name: input.name, url: input.url, events: input.events });
      return created;
    });
    this.deps.onChange?.();
    return { webhook: this.get(id, caller), secret };
  }

  list(caller: Caller): Webhook[] {
    this.#assertAdmin(caller);
    return this.deps.store.webhooks().map((row) => toWebhook(row, this.deps.store.countsOf(row.id)));
  }

  get(id: number, caller: Caller): Webhook {
    this.#assertAdmin(caller);
    const row = this.deps.store.webhook(id);
    if (row === null) throw webhookNotFound(id);
    return toWebhook(row, this.deps.store.countsOf(id));
  }

  /**
   * Deletes a webhook with its undelivered and delivered events: 1. turn it off, so no event is queued for it;
   * 2. delete its outbox rows in batches of DELETE_BATCH, each its own short transaction (a long backlog must not
   * hold the event loop in one); 3. delete the webhook.
   */
  async delete(id: number, caller: Caller): Promise<void> {
    this.#assertAdmin(caller);
    this.deps.guardWrites?.();
    const row = this.deps.store.webhook(id);
    const found = await this.deps.writes.run(() => this.deps.store.setDisabled(id, true));
    if (!found || row === null) throw webhookNotFound(id);
    this.deps.onChange?.();
    for (let batch = 0; batch < MAX_DELETE_BATCHES; batch++) {
      const deleted = await this.deps.writes.run(() => this.deps.store.deleteDeliveries(id, DELETE_BATCH));
      if (deleted < DELETE_BATCH) break;
    }
    await this.deps.writes.run(() => {
      this.deps.store.deleteWebhook(id);
      this.#record(caller, "webhook.deleted", id, { name: row.name, url: row.url });
    });
    this.deps.onChange?.();
  }

  /**
   * Gives a webhook a new secret, returned here only. The old one keeps signing deliveries too (a second
   * signature in `webhook-signature`) for `overlapMs`, so the receiver can switch without rejecting any.
   */
  async rotateSecret(
    id: number,
    caller: Caller,
    overlapMs = SECRET_OVERLAP_MS,
    now = Date.now(),
  ): Promise<{ webhook: Webhook; secret: string }> {
    this.#assertAdmin(caller);
    this.deps.guardWrites?.();
    const secret = generateSecret();
    const found = await this.deps.writes.run(() => {
      const rotated = this.deps.store.rotateSecret(id, secret, now + overlapMs);
      if (rotated) this.#record(caller, "webhook.secret-rotated", id, { previousSecretValidUntil: formatIsoDate(now + overlapMs) });
      return rotated;
    });
    if (!found) throw webhookNotFound(id);
    return { webhook: this.get(id, caller), secret };
  }

  /** Turns a webhook off (its deliveries wait; no new events are queued for it) or back on (they are sent at once). */
  async setDisabled(id: number, disabled: boolean, caller: Caller): Promise<Webhook> {
    this.#assertAdmin(caller);
    this.deps.guardWrites?.();
    const found = await this.deps.writes.run(() => {
      const was = this.deps.store.webhook(id);
      const changed = this.deps.store.setDisabled(id, disabled);
      if (changed && was !== null && (was.disabled === 1) !== disabled)
        this.#record(caller, "webhook.edited", id, { disabled: { from: !disabled, to: disabled } });
      return changed;
    });
    if (!found) throw webhookNotFound(id);
    this.deps.onChange?.();
    if (!disabled) this.deps.onRequeue?.();
    return this.get(id, caller);
  }

  /** A webhook's deliveries, newest first, optionally only those in one state (`dead`: the dead letters). */
  deliveries(id: number, query: { state: DeliveryState | null; limit: number; beforeId?: number }, caller: Caller): Delivery[] {
    this.get(id, caller);
    return this.deps.store.deliveries(id, query.state, query.limit, query.beforeId).map(toDelivery);
  }

  /** Puts a dead delivery back in its link's queue, with a fresh count of attempts and the same message id. */
  async retry(id: number, deliveryId: number, caller: Caller, now = Date.now()): Promise<Delivery> {
    this.get(id, caller);
    this.deps.guardWrites?.();
    const row = this.deps.store.delivery(id, deliveryId);
    if (row === null) throw deliveryNotFound(id, deliveryId);
    if (row.state !== "dead") {
      throw new AppError(
        409,
        "webhook-delivery-not-dead",
        "Webhook delivery not dead",
        `Delivery ${deliveryId} is ${row.state}: only dead deliveries can be retried.`,
        { deliveryId: String(deliveryId), state: row.state },
      );
    }
    await this.deps.writes.run(() => {
      this.deps.store.requeue(id, deliveryId, now);
      this.#record(caller, "webhook.delivery-retried", id, { deliveryId: String(deliveryId) });
    });
    this.deps.onRequeue?.();
    return toDelivery(this.deps.store.delivery(id, deliveryId) as OutboxRow);
  }

  #assertAdmin(caller: Caller): void {
    if (caller !== null && caller.role !== "admin") throw forbidden("Only admin API keys can manage webhooks.");
  }
}
