/**
 * The replica lease: one small JSON object beside the replica's epochs in the S3 bucket, saying which node is the
 * primary (`holder`) and which epoch of the replica it writes (`epoch`: Litestream replicates to `…/epoch-N`). Every
 * change to it is a conditional write (DESIGN.md, Failover): `If-None-Match: *` creates it, `If-Match: <ETag>`
 * replaces exactly the version read, so two nodes can never both believe they took it. S3 answers 412 (or 409 for
 * a conditional write racing another) to the loser.
 *
 * Requests go through Bun's S3 client, which signs them (a presigned URL per request); the conditional header
 * rides along unsigned, as S3 allows for standard HTTP headers.
 */

/** Where the lease lives and how to reach it: the replica's own store and credentials. */
export interface LeaseLocation {
  endpoint: string;
  bucket: string;
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
  /** The object key: the replica path without its epoch, then /lease.json. */
  key: string;
}

export interface Lease {
  /** Litestream replicates the holder's database to the replica path's `epoch-<epoch>`. */
  epoch: number;
  /** The node that holds it: host, data dir and a random tag written to its replica.env at promotion. */
  holder: string;
  /** When the holder last renewed it (ISO 8601 in ms, the holder's clock: compared only by colours of the holder itself). */
  renewedAt: string;
  /** The holder stops accepting writes when it has not renewed for half this; a taker waits all of it. */
  termSeconds: number;
}

export interface LeaseVersion {
  lease: Lease;
  /** The object's ETag: the version a replacement must name. */
  etag: string;
}

/** Another node changed the lease between our read and our write. */
export class LeaseConflict extends Error {
  constructor(message: string) {
    super(message);
    this.name = "LeaseConflict";
  }
}

/** The store did not answer, or answered something that is not a lease. */
export class LeaseUnavailable extends Error {
  constructor(message: string) {
    super(message);
    this.name = "LeaseUnavailable";
  }
}

/** How long a request to the lease store may take before it counts as unanswered. */
export const REQUEST_TIMEOUT_MS = 10_000;
/** --lease-term's upper bound: a taker waits a whole term, so a lease claiming more is not one of ours. */
const MAX_TERM_SECONDS = 3600;
const PRESIGN_SECONDS = 60;

export function describeLocation(location: LeaseLocation): string {
  return `s3://${location.bucket}/${location.key} on ${location.endpoint}`;
}

function parseLease(text: string, where: string): Lease {
  let doc: Partial<Lease>;
  try {
    doc = JSON.parse(text) as Partial<Lease>;
  } catch {
    throw new LeaseUnavailable(`${where} is not JSON: it is not a shortener lease, or it was damaged`);
  }
  const { epoch, holder, renewedAt, termSeconds } = doc;
  if (
    !Number.isSafeInteger(epoch) ||
    (epoch as number) < 1 ||
    typeof holder !== "string" ||
    holder === "" ||
    typeof renewedAt !== "string" ||
    typeof termSeconds !== "number" ||
    !(termSeconds > 0 && termSeconds <= MAX_TERM_SECONDS)
  ) {
    throw new LeaseUnavailable(
      `${where} lacks epoch, holder, renewedAt or termSeconds (up to ${MAX_TERM_SECONDS}): it is not a shortener lease`,
    );
  }
  return { epoch: epoch as number, holder, renewedAt, termSeconds };
}

export class LeaseStore {
  readonly #client: Bun.S3Client;

  constructor(readonly location: LeaseLocation) {
    this.#client = bucketClient(location);
  }

  async #request(method: "GET" | "PUT", headers: Record<string, string>, body?: string): Promise<Response> {
    try {
      return await bucketRequest(this.#client, this.location.key, method, headers, body);
    } catch (error) {
      throw new LeaseUnavailable(`${describeLocation(this.location)}: ${(error as Error).message}`);
    }
  }

  /** The lease as stored, or null when no node has taken one yet. */
  async read(): Promise<LeaseVersion | null> {
    const response = await this.#request("GET", {});
    const text = await response.text();
    if (response.status === 404) return null;
    if (!response.ok) throw new LeaseUnavailable(`reading ${describeLocation(this.location)}: HTTP ${response.status} ${s3Code(text)}`);
    const etag = response.headers.get("etag");
    if (etag === null) throw new LeaseUnavailable(`${describeLocation(this.location)} came without an ETag: conditional writes need one`);
    return { lease: parseLease(text, describeLocation(this.location)), etag };
  }

  /** Writes the first lease; LeaseConflict when one exists already. */
  create(lease: Lease): Promise<string> {
    return this.#write(lease, { "If-None-Match": "*" });
  }

  /** Replaces the version `etag` names; LeaseConflict when the lease changed since it was read. */
  replace(lease: Lease, etag: string): Promise<string> {
    return this.#write(lease, { "If-Match": etag });
  }

  async #write(lease: Lease, condition: Record<string, string>): Promise<string> {
    const response = await this.#request("PUT", { ...condition, "Content-Type": "application/json" }, `${JSON.stringify(lease)}\n`);
    const text = await response.text();
    if (response.status === 412 || response.status === 409) {
      throw new LeaseConflict(`${describeLocation(this.location)} changed since it was read (HTTP ${response.status})`);
    }
    if (!response.ok) throw new LeaseUnavailable(`writing ${describeLocation(this.location)}: HTTP ${response.status} ${s3Code(text)}`);
    const etag = response.headers.get("etag");
    if (etag === null) throw new LeaseUnavailable(`${describeLocation(this.location)}: the store sent no ETag for the write`);
    return etag;
  }
}

/** A client of the replica's bucket, with its credentials (the lease's, and the standby visits' store's). */
export function bucketClient(store: Omit<LeaseLocation, "key">): Bun.S3Client {
  const { endpoint, bucket, region, accessKeyId, secretAccessKey } = store;
  return new Bun.S3Client({ endpoint, bucket, region, accessKeyId, secretAccessKey });
}

/**
 * One request for `key`, signed in its URL (the headers ride along unsigned, as S3 allows for standard HTTP headers),
 * failing once REQUEST_TIMEOUT_MS pass without an answer.
 */
export function bucketRequest(
  client: Bun.S3Client,
  key: string,
  method: "GET" | "PUT" | "DELETE",
  headers: Record<string, string>,
  body?: string | Blob,
): Promise<Response> {
  const url = client.presign(key, { method, expiresIn: PRESIGN_SECONDS });
  return fetch(url, { method, headers, body, signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS), redirect: "manual" });
}

/** S3's error code from an XML error body (`<Code>AccessDenied</Code>`), for messages. */
export function s3Code(body: string): string {
  return /<Code>([^<]+)<\/Code>/.exec(body)?.[1] ?? "";
}
