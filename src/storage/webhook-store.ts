/**
 * All SQL for the webhooks and webhook_outbox tables. Secrets are stored as given (they must sign every delivery),
 * and never leave through a list.
 *
 * The outbox keeps one queue per (webhook, link): its oldest pending row is the head, the only one with a
 * next_attempt_at; the rows behind it wait with NULL until the head is delivered or dead (activateNext).
 */
import type { Database } from "bun:sqlite";
import { relaxedWriteTransactionIfFree } from "./database";
import { preparedOnFirstUse } from "./first-use";

export interface WebhookRow {
  id: number;
  name: string | null;
  url: string;
  secret: string;
  previous_secret: string | null;
  previous_secret_until: number | null;
  /** Comma-separated event types. */
  events: string;
  created_at: number;
  disabled: number;
}

export type DeliveryState = "pending" | "delivered" | "dead";

export interface OutboxRow {
  id: number;
  webhook_id: number;
  message_id: string;
  event_type: string;
  link_id: number;
  payload: string;
  attempts: number;
  next_attempt_at: number | null;
  state: DeliveryState;
  last_status: number | null;
  last_error: string | null;
  created_at: number;
  updated_at: number;
  delivered_at: number | null;
}

/** A head of a queue that is due, with what it takes to send it. */
export interface DueDelivery {
  id: number;
  webhook_id: number;
  message_id: string;
  link_id: number;
  payload: string;
  attempts: number;
  url: string;
  secret: string;
  previous_secret: string | null;
  previous_secret_until: number | null;
}

export interface NewOutboxRow {
  webhook_id: number;
  message_id: string;
  event_type: string;
  link_id: number;
  payload: string;
}

/** What one attempt came to, as the dispatcher writes it back. */
export type AttemptResult =
  | { id: number; outcome: "delivered"; status: number }
  | { id: number; outcome: "failed"; attempts: number; nextAttemptAt: number; status: number | null; error: string }
  | { id: number; outcome: "dead"; attempts: number; status: number | null; error: string };

const ERROR_MAX_CHARS = 500;
/** The metrics' counts stop here (see backlog). */
export const COUNT_CAP = 10_000;

/** Every statement (prepared on first use: see first-use.ts). */
function prepare(db: Database) {
  return {
    insertWebhook: db.query<{ id: number }, Record<string, string | number | null>>(
      "INSERT INTO webhooks (name, url, secret, events, created_at) VALUES ($name, $url, $secret, $events, $created_at) RETURNING id",
    ),
    webhooks: db.query<WebhookRow, []>("SELECT * FROM webhooks ORDER BY id"),
    webhook: db.query<WebhookRow, [number]>("SELECT * FROM webhooks WHERE id = ?"),
    deleteWebhook: db.query<unknown, [number]>("DELETE FROM webhooks WHERE id = ?"),
    setDisabled: db.query<unknown, [number, number]>("UPDATE webhooks SET disabled = ? WHERE id = ?"),
    rotateSecret: db.query<unknown, [string, number, number]>(
      "UPDATE webhooks SET previous_secret = secret, previous_secret_until = ?2, secret = ?1 WHERE id = ?3",
    ),
    deleteDeliveries: db.query<unknown, [number, number]>(
      "DELETE FROM webhook_outbox WHERE id IN (SELECT id FROM webhook_outbox WHERE webhook_id = ? LIMIT ?)",
    ),
    dataVersion: db.query<{ data_version: number }, []>("PRAGMA data_version"),
    queueHasPending: db.query<{ one: number }, [number, number]>(
      "SELECT 1 AS one FROM webhook_outbox WHERE webhook_id = ? AND link_id = ? AND state = 'pending' LIMIT 1",
    ),
    enqueue: db.query<unknown, Record<string, string | number | null>>(
      `INSERT INTO webhook_outbox (webhook_id, message_id, event_type, link_id, payload, next_attempt_at, created_at, updated_at)
       VALUES ($webhook_id, $message_id, $event_type, $link_id, $payload, $next_attempt_at, $now, $now)`,
    ),
    due: db.query<DueDelivery, [number, number]>(
      `SELECT o.id, o.webhook_id, o.message_id, o.link_id, o.payload, o.attempts, w.url, w.secret, w.previous_secret, w.previous_secret_until
       FROM webhook_outbox o JOIN webhooks w ON w.id = o.webhook_id
       WHERE o.state = 'pending' AND o.next_attempt_at IS NOT NULL AND o.next_attempt_at <= ? AND w.disabled = 0
       ORDER BY o.next_attempt_at, o.id LIMIT ?`,
    ),
    nextDueAt: db.query<{ at: number | null }, []>(
      "SELECT min(next_attempt_at) AS at FROM webhook_outbox WHERE state = 'pending' AND next_attempt_at IS NOT NULL",
    ),
    delivered: db.query<unknown, [number, number, number, number]>(
      `UPDATE webhook_outbox SET state = 'delivered', attempts = attempts + 1, next_attempt_at = NULL, last_status = ?,
       last_error = NULL, delivered_at = ?, updated_at = ? WHERE id = ? AND state = 'pending'`,
    ),
    failed: db.query<unknown, [number, number, number | null, string, number, number]>(
      `UPDATE webhook_outbox SET attempts = ?, next_attempt_at = ?, last_status = ?, last_error = ?, updated_at = ?
       WHERE id = ? AND state = 'pending'`,
    ),
    dead: db.query<unknown, [number, number | null, string, number, number]>(
      `UPDATE webhook_outbox SET state = 'dead', attempts = ?, next_attempt_at = NULL, last_status = ?, last_error = ?,
       updated_at = ? WHERE id = ? AND state = 'pending'`,
    ),
    activateNext: db.query<unknown, [number, number, number]>(
      `UPDATE webhook_outbox SET next_attempt_at = ?1
       WHERE id = (SELECT id FROM webhook_outbox WHERE webhook_id = ?2 AND link_id = ?3 AND state = 'pending' ORDER BY id LIMIT 1)
         AND next_attempt_at IS NULL
         AND NOT EXISTS (SELECT 1 FROM webhook_outbox WHERE webhook_id = ?2 AND link_id = ?3 AND state = 'pending' AND next_attempt_at IS NOT NULL)`,
    ),
    deliveries: db.query<OutboxRow, [number, number, number]>(
      "SELECT * FROM webhook_outbox WHERE webhook_id = ? AND id < ? ORDER BY id DESC LIMIT ?",
    ),
    deliveriesInState: db.query<OutboxRow, [number, string, number, number]>(
      "SELECT * FROM webhook_outbox WHERE webhook_id = ? AND state = ? AND id < ? ORDER BY id DESC LIMIT ?",
    ),
    delivery: db.query<OutboxRow, [number, number]>("SELECT * FROM webhook_outbox WHERE webhook_id = ? AND id = ?"),
    requeue: db.query<unknown, [number, number]>(
      `UPDATE webhook_outbox SET state = 'pending', attempts = 0, next_attempt_at = NULL, updated_at = ? WHERE id = ? AND state = 'dead'`,
    ),
    pendingOf: db.query<{ n: number }, [number, number]>(
      "SELECT count(*) AS n FROM (SELECT 1 FROM webhook_outbox WHERE webhook_id = ? AND state = 'pending' LIMIT ?)",
    ),
    deadOf: db.query<{ n: number }, [number, number]>(
      "SELECT count(*) AS n FROM (SELECT 1 FROM webhook_outbox WHERE webhook_id = ? AND state = 'dead' LIMIT ?)",
    ),
    backlog: db.query<{ n: number }, [number]>("SELECT count(*) AS n FROM (SELECT 1 FROM webhook_outbox WHERE state = 'pending' LIMIT ?)"),
    deadLetters: db.query<{ n: number }, [number]>("SELECT count(*) AS n FROM (SELECT 1 FROM webhook_outbox WHERE state = 'dead' LIMIT ?)"),
    prune: db.query<unknown, [number, number]>(
      `DELETE FROM webhook_outbox WHERE id IN
       (SELECT id FROM webhook_outbox WHERE state = 'delivered' AND delivered_at < ? ORDER BY delivered_at LIMIT ?)`,
    ),
  };
}

export class WebhookStore {
  readonly #db: Database;
  readonly #statements: () => ReturnType<typeof prepare>;

  constructor(db: Database) {
    this.#db = db;
    this.#statements = preparedOnFirstUse(db, prepare);
  }

  get #q(): ReturnType<typeof prepare> {
    return this.#statements();
  }

  insertWebhook(row: { name: string | null; url: string; secret: string; events: string; created_at: number }): number {
    return (this.#q.insertWebhook.get({ ...row }) as { id: number }).id;
  }

  webhooks(): WebhookRow[] {
    return this.#q.webhooks.all();
  }

  webhook(id: number): WebhookRow | null {
    return this.#q.webhook.get(id);
  }

  /** Makes `secret` the webhook's secret; the current one becomes the previous, signing too until `previousUntil`. */
  rotateSecret(id: number, secret: string, previousUntil: number): boolean {
    return this.#q.rotateSecret.run(secret, previousUntil, id).changes > 0;
  }

  /** Deletes up to `limit` of a webhook's outbox rows; returns how many. In the caller's transaction. */
  deleteDeliveries(webhookId: number, limit: number): number {
    return this.#q.deleteDeliveries.run(webhookId, limit).changes;
  }

  /** Deletes a webhook and its outbox rows; false when there was none. */
  deleteWebhook(id: number): boolean {
    return this.#q.deleteWebhook.run(id).changes > 0;
  }

  /** Turns a webhook off (its deliveries wait, no new events are queued for it) or back on; false when there is none. */
  setDisabled(id: number, disabled: boolean): boolean {
    return this.#q.setDisabled.run(disabled ? 1 : 0, id).changes > 0;
  }

  /** Changes when another connection (a CLI command) has committed since the last call on this one. */
  dataVersion(): number {
    return (this.#q.dataVersion.get() as { data_version: number }).data_version;
  }

  /** Appends an event to its (webhook, link) queue; it is due at once when the queue was empty. In the caller's transaction. */
  enqueue(row: NewOutboxRow, now: number): void {
    const queued = this.#q.queueHasPending.get(row.webhook_id, row.link_id) !== null;
    this.#q.enqueue.run({ ...row, next_attempt_at: queued ? null : now, now });
  }

  /** Heads of queues due at `now` (of enabled webhooks), soonest first. */
  due(now: number, limit: number): DueDelivery[] {
    return this.#q.due.all(now, limit);
  }

  /** When the next head is due (epoch ms), or null when nothing is pending. */
  nextDueAt(): number | null {
    return this.#q.nextDueAt.get()?.at ?? null;
  }

  /**
   * Writes back a batch of attempts in one transaction; a head that is done (delivered or dead) hands its place to
   * the next row of its queue. Relaxed durability: losing the last results on power loss only resends them, under
   * the same message ids. False, with nothing written, while another process holds the write lock (the caller keeps
   * the results for its next try rather than hold the event loop waiting).
   */
  recordAttempts(results: readonly (AttemptResult & { webhookId: number; linkId: number; gone?: boolean })[], now: number): boolean {
    const attempt = relaxedWriteTransactionIfFree(this.#db, () => {
      for (const r of results) {
        // 410 Gone: the receiver wants no more (Standard Webhooks): the webhook is turned off until turned on again.
        if (r.gone) this.#q.setDisabled.run(1, r.webhookId);
        if (r.outcome === "delivered") this.#q.delivered.run(r.status, now, now, r.id);
        else if (r.outcome === "failed") this.#q.failed.run(r.attempts, r.nextAttemptAt, r.status, clip(r.error), now, r.id);
        else this.#q.dead.run(r.attempts, r.status, clip(r.error), now, r.id);
        if (r.outcome !== "failed") this.#q.activateNext.run(now, r.webhookId, r.linkId);
      }
    });
    return "value" in attempt;
  }

  /** A webhook's outbox rows, newest first, with ids below `beforeId`; only those in `state` when given. */
  deliveries(webhookId: number, state: DeliveryState | null, limit: number, beforeId = Number.MAX_SAFE_INTEGER): OutboxRow[] {
    return state === null
      ? this.#q.deliveries.all(webhookId, beforeId, limit)
      : this.#q.deliveriesInState.all(webhookId, state, beforeId, limit);
  }

  delivery(webhookId: number, id: number): OutboxRow | null {
    return this.#q.delivery.get(webhookId, id);
  }

  /**
   * Puts a dead row back in its queue with a fresh count of attempts; it is due at once unless its queue already
   * has a head, behind which it waits (it is then the next, being the oldest). False when it was not dead.
   * In the caller's transaction.
   */
  requeue(webhookId: number, id: number, now: number): boolean {
    const row = this.#q.delivery.get(webhookId, id);
    if (row === null || this.#q.requeue.run(now, id).changes === 0) return false;
    this.#q.activateNext.run(now, row.webhook_id, row.link_id);
    return true;
  }

  /**
   * Deliveries waiting to be sent or retried, counted up to `cap`: on the event loop, counting a million rows
   * stalls redirects ~100 ms, counting 10 000 about one.
   */
  backlog(cap = COUNT_CAP): number {
    return (this.#q.backlog.get(cap) as { n: number }).n;
  }

  /** One webhook's waiting and dead deliveries, each counted up to `cap`. */
  countsOf(webhookId: number, cap = COUNT_CAP): { pending: number; dead: number } {
    return {
      pending: (this.#q.pendingOf.get(webhookId, cap) as { n: number }).n,
      dead: (this.#q.deadOf.get(webhookId, cap) as { n: number }).n,
    };
  }

  /** Dead deliveries, counted up to `cap`. */
  deadLetters(cap = COUNT_CAP): number {
    return (this.#q.deadLetters.get(cap) as { n: number }).n;
  }

  /**
   * Deletes up to `limit` rows delivered before `before`; returns how many, or null, with nothing deleted, while
   * another process holds the write lock (Litestream takes it for each checkpoint): housekeeping that can wait.
   */
  pruneDelivered(before: number, limit: number): number | null {
    const attempt = relaxedWriteTransactionIfFree(this.#db, () => this.#q.prune.run(before, limit).changes);
    return "value" in attempt ? attempt.value : null;
  }
}

function clip(text: string): string {
  return text.length > ERROR_MAX_CHARS ? `${text.slice(0, ERROR_MAX_CHARS)}…` : text;
}
