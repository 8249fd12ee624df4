/**
 * Where standbys put their visits for the primary (domain/visit-shipment.ts): objects under a prefix beside the
 * replica in its bucket, reached with the replica's own store and credentials (storage/litestream-config.ts,
 * shipmentLocationFor). Every request is bounded in time: a store that does not answer fails the call, and the caller
 * tries again later with nothing lost (the spool file, or the object, stays).
 */
import { bucketClient, bucketRequest, type LeaseLocation, REQUEST_TIMEOUT_MS, s3Code } from "./replica-lease";

/** The replica's store, and the key prefix (ending in `/`) its shipments go under. */
export type ShipmentLocation = Omit<LeaseLocation, "key"> & { prefix: string };

/** A shipment's name: its spool file's and its object's, sortable by when it was written. */
export const SHIPMENT_NAME = /^\d{14}-[0-9a-f]{16}\.json$/;

export function shipmentName(at: number): string {
  const random = Buffer.from(crypto.getRandomValues(new Uint8Array(8))).toString("hex");
  return `${String(at).padStart(14, "0")}-${random}.json`;
}

/** Names taken from one listing: a primary takes a shipment a second, so one listing covers a long failover. */
const LIST_MAX = 1000;

export class ShipmentStoreError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ShipmentStoreError";
  }
}

export class ShipmentStore {
  readonly #client: Bun.S3Client;

  constructor(readonly location: ShipmentLocation) {
    this.#client = bucketClient(location);
  }

  /** Where the shipments are, for messages. */
  describe(): string {
    return `s3://${this.location.bucket}/${this.location.prefix} on ${this.location.endpoint}`;
  }

  async #request(method: "GET" | "PUT" | "DELETE", name: string, body?: string | Blob): Promise<Response> {
    const headers: Record<string, string> = body === undefined ? {} : { "Content-Type": "application/json" };
    try {
      return await bucketRequest(this.#client, `${this.location.prefix}${name}`, method, headers, body);
    } catch (error) {
      throw new ShipmentStoreError(`${method} ${this.describe()}${name}: ${(error as Error).message}`);
    }
  }

  async #fail(method: string, name: string, response: Response): Promise<never> {
    throw new ShipmentStoreError(`${method} ${this.describe()}${name}: HTTP ${response.status} ${s3Code(await response.text())}`.trim());
  }

  /** Puts a shipment: its text, or its spool file (`Bun.file`), which is sent from the file as it is read. */
  async put(name: string, body: string | Blob): Promise<void> {
    const response = await this.#request("PUT", name, body);
    if (!response.ok) await this.#fail("PUT", name, response);
    await response.arrayBuffer();
  }

  /** The shipment's bytes (the inbox decodes them), or null when there is none by that name (taken and removed meanwhile). */
  async get(name: string): Promise<ArrayBuffer | null> {
    const response = await this.#request("GET", name);
    if (response.status === 404) {
      await response.arrayBuffer();
      return null;
    }
    if (!response.ok) await this.#fail("GET", name, response);
    return response.arrayBuffer();
  }

  async remove(name: string): Promise<void> {
    const response = await this.#request("DELETE", name);
    if (!response.ok && response.status !== 404) await this.#fail("DELETE", name, response);
    await response.arrayBuffer();
  }

  /** The names of the shipments waiting, oldest first (at most LIST_MAX; the rest at the next call). */
  async names(): Promise<string[]> {
    const listing = this.#client.list({ prefix: this.location.prefix, maxKeys: LIST_MAX });
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${REQUEST_TIMEOUT_MS / 1000} s`)), REQUEST_TIMEOUT_MS);
    });
    try {
      const { contents = [] } = await Promise.race([listing, timeout]);
      return contents
        .map((object) => object.key.slice(this.location.prefix.length))
        .filter((name) => SHIPMENT_NAME.test(name))
        .sort();
    } catch (error) {
      throw new ShipmentStoreError(`listing ${this.describe()}: ${(error as Error).message}`);
    } finally {
      clearTimeout(timer);
      listing.catch(() => {});
    }
  }
}
