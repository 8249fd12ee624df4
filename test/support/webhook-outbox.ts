/**
 * Unit tests' webhook outbox and dispatcher (src/domain/webhooks-dispatcher.ts): a webhook in a scratch database, a
 * way to queue its events, and a receiver the test answers by hand in place of fetch.
 */

import { type DispatcherOptions, WebhookDispatcher } from "../../src/domain/webhooks-dispatcher";
import { generateSecret } from "../../src/domain/webhooks-signature";
import { writeTransaction } from "../../src/storage/database";
import { WebhookStore } from "../../src/storage/webhook-store";
import type { scratchDatabases } from "./scratch-database";

/** A receiver the test answers by hand: each request waits until the test settles it. */
export class HeldReceiver {
  readonly requests: {
    id: string;
    body: string;
    signature: string;
    /** The URL fetched (the receiver's address in place of its host) and the Host header sent with it. */
    url: string;
    host: string | undefined;
    settle: (status: number) => void;
    aborted: boolean;
  }[] = [];

  readonly fetch = ((url: string, init: RequestInit) =>
    new Promise<Response>((resolve, reject) => {
      const headers = init.headers as Record<string, string>;
      const request = {
        id: headers["webhook-id"] as string,
        body: init.body as string,
        signature: headers["webhook-signature"] as string,
        url,
        host: headers.Host,
        aborted: false,
        settle: (status: number) => resolve(new Response(null, { status })),
      };
      // As fetch does: it rejects with the signal's reason (an AbortError, or a TimeoutError from the timeout).
      init.signal?.addEventListener("abort", () => {
        request.aborted = true;
        reject(init.signal?.reason);
      });
      this.requests.push(request);
    })) as unknown as typeof fetch;
}

/** A webhook to `url` in a new scratch database, and `enqueue`, which queues one of its events for a link. */
export function outbox(databases: ReturnType<typeof scratchDatabases>, url = "http://receiver.test/hook") {
  const { db, path } = databases.open();
  const store = new WebhookStore(db);
  const webhookId = store.insertWebhook({
    name: null,
    url,
    secret: generateSecret(),
    events: "link.created,link.updated",
    created_at: Date.now(),
  });
  /** Enqueues an event for a link as the outbox does, inside a transaction; returns its message id. */
  const enqueue = (linkId: number, label: string): string => {
    const messageId = `msg_${label}`;
    writeTransaction(db, () =>
      store.enqueue(
        { webhook_id: webhookId, message_id: messageId, event_type: "link.updated", link_id: linkId, payload: `{"n":"${label}"}` },
        Date.now(),
      ),
    );
    return messageId;
  };
  return { db, store, webhookId, enqueue, path };
}

/** A dispatcher sending to `receiver` with short backoffs and polls. */
export function dispatcher(store: WebhookStore, receiver: HeldReceiver, maxAttempts = 3, more: Partial<DispatcherOptions> = {}) {
  return new WebhookDispatcher(store, {
    maxAttempts,
    backoff: { baseMs: 10, maxMs: 20 },
    timeoutMs: 5000,
    userAgent: "test",
    pollMs: 20,
    fetch: receiver.fetch,
    // receiver.test resolves nowhere here: a public address, as a real receiver's would.
    resolve: async () => ["192.0.2.10"],
    ...more,
  });
}

/** Polls `condition` every 5 ms for up to 3 s. */
export async function until(what: string, condition: () => boolean): Promise<void> {
  for (let i = 0; i < 600; i++) {
    if (condition()) return;
    await Bun.sleep(5);
  }
  throw new Error(`timed out waiting for ${what}`);
}
