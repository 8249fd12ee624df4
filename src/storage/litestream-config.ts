/**
 * Reads the parts of Litestream's YAML configuration the app needs: which databases it replicates and where
 * its control socket is. Environment references are expanded the way Litestream expands them (${VAR}, $VAR).
 */
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { parse } from "yaml";
import { EPOCH_VARIABLE } from "./replica-epoch";
import type { LeaseLocation } from "./replica-lease";
import type { ShipmentLocation } from "./shipment-store";

export interface LitestreamConfig {
  /** The configuration file, absolute. */
  file: string;
  /** The control socket, when enabled. */
  socketPath: string | null;
  /** Absolute paths of the replicated databases. */
  databases: string[];
  /**
   * For each of `databases`, the base URL of its replica's S3 server; null for a replica on no server (a file), or
   * one whose server is named by variables unset in the environment given (`endpointNeeds` names them).
   */
  endpoints: Map<string, string | null>;
  /** For each of `databases`, the variables its replica's endpoint, url or region use that the environment lacks. */
  endpointNeeds: Map<string, string[]>;
  /**
   * For each of `databases`, where its replica lease lives: null when its replica path does not end in
   * `epoch-${REPLICA_EPOCH}` (a replica without epochs: no lease, no promotion) or is not on S3.
   */
  leases: Map<string, LeaseLocation | null>;
  /** For each of `databases`, where standbys put their visits for the primary: null when its replica is not on S3. */
  shipments: Map<string, ShipmentLocation | null>;
}

interface Root {
  socket?: { enabled?: boolean; path?: string };
  dbs?: { path?: string; replica?: ReplicaSection; replicas?: ReplicaSection[] }[];
}

interface ReplicaSection {
  type?: string;
  url?: string;
  endpoint?: string;
  region?: string;
  bucket?: string;
  path?: string;
  "access-key-id"?: string;
  "secret-access-key"?: string;
}

/** The end of a replica path that has epochs: `…/epoch-${REPLICA_EPOCH}`. */
const EPOCH_SUFFIX = new RegExp(`/?epoch-\\$(?:\\{${EPOCH_VARIABLE}\\}|${EPOCH_VARIABLE})$`);

/** A replica on S3: its store and credentials, its path (expanded), and whether the path ends in the epoch variable. */
interface ReplicaStore {
  store: Omit<LeaseLocation, "key">;
  /** The replica path, expanded, without slashes around it, and without its epoch when it has epochs. */
  base: string;
  epochs: boolean;
}

/**
 * Litestream's own defaults apply: the region us-east-1, the credentials from LITESTREAM_ACCESS_KEY_ID /
 * AWS_ACCESS_KEY_ID when the config names none. Null for a replica not on S3.
 */
function replicaStore(replica: ReplicaSection | undefined, raw: ReplicaSection | undefined, env: Env): ReplicaStore | null {
  let url: URL | null = null;
  try {
    url = replica?.url ? new URL(replica.url) : null;
  } catch {
    return null;
  }
  const rawPath = raw?.path ?? (raw?.url ? raw.url.replace(/^s3:\/\/[^/]*/, "").replace(/\?.*$/, "") : "");
  const endpoint = replicaEndpoint(replica);
  const bucket = replica?.bucket || url?.host || "";
  if (endpoint === null || bucket === "") return null;
  const epochs = EPOCH_SUFFIX.test(rawPath);
  return {
    store: {
      endpoint,
      bucket,
      region: url?.searchParams.get("region") || replica?.region || "us-east-1",
      accessKeyId: replica?.["access-key-id"] || env.LITESTREAM_ACCESS_KEY_ID || env.AWS_ACCESS_KEY_ID || "",
      secretAccessKey: replica?.["secret-access-key"] || env.LITESTREAM_SECRET_ACCESS_KEY || env.AWS_SECRET_ACCESS_KEY || "",
    },
    base: expandEnv(rawPath.replace(EPOCH_SUFFIX, ""), env).replace(/^\/+|\/+$/g, ""),
    epochs,
  };
}

/** The lease beside a replica whose (unexpanded) path ends in the epoch variable: key `<path before the epoch>/lease.json`. */
function leaseLocation(replica: ReplicaStore | null): LeaseLocation | null {
  if (replica === null || !replica.epochs) return null;
  return { ...replica.store, key: replica.base === "" ? "lease.json" : `${replica.base}/lease.json` };
}

/**
 * Where standbys put their visits for the primary (storage/shipment-store.ts): beside the lease, under
 * `<path before the epoch>/standby-visits/`; for a replica without epochs, beside its path (`<path>-standby-visits/`),
 * never inside it, where Litestream keeps its own files.
 */
function shipmentLocation(replica: ReplicaStore | null): ShipmentLocation | null {
  if (replica === null) return null;
  const { base, epochs } = replica;
  const prefix = base === "" ? "standby-visits/" : epochs ? `${base}/standby-visits/` : `${base}-standby-visits/`;
  return { ...replica.store, prefix };
}

/**
 * The S3 server a replica talks to, as Litestream picks it: `endpoint`, else an `?endpoint=` in `url`, else AWS's
 * regional endpoint for an s3 replica; null for a replica that is not on S3.
 */
function replicaEndpoint(replica: ReplicaSection | undefined): string | null {
  if (replica === undefined) return null;
  if (typeof replica.endpoint === "string" && replica.endpoint !== "") return replica.endpoint;
  let url: URL | null = null;
  try {
    url = typeof replica.url === "string" && replica.url !== "" ? new URL(replica.url) : null;
  } catch {
    return null;
  }
  if (url !== null && url.protocol !== "s3:") return null;
  if (url === null && (replica.type ?? "") !== "s3") return null;
  const fromUrl = url?.searchParams.get("endpoint");
  if (fromUrl) return fromUrl.includes("://") ? fromUrl : `https://${fromUrl}`;
  const region = url?.searchParams.get("region") || replica.region || "us-east-1";
  return `https://s3.${region}.amazonaws.com`;
}

const VARIABLE = /\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)/g;

/** The variables the fields that locate a replica's server refer to (in the unexpanded config) that `env` lacks. */
type Env = Record<string, string | undefined>;

function unsetVariables(replica: ReplicaSection | undefined, env: Env): string[] {
  const fields = [replica?.endpoint, replica?.url, replica?.region].filter((f): f is string => typeof f === "string");
  const names = fields.flatMap((field) => [...field.matchAll(VARIABLE)].map((m) => (m[1] ?? m[2]) as string));
  return [...new Set(names)].filter((name) => (env[name] ?? "") === "");
}

export class LitestreamConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "LitestreamConfigError";
  }
}

/** Expands ${VAR} and $VAR from `env`; unset variables become empty, as in Go's os.ExpandEnv. */
export function expandEnv(text: string, env: Record<string, string | undefined>): string {
  return text.replace(VARIABLE, (_, braced, bare) => env[braced ?? bare] ?? "");
}

export function readLitestreamConfig(file: string, env: Record<string, string | undefined>): LitestreamConfig {
  const path = resolve(file);
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    throw new LitestreamConfigError(
      `cannot read the Litestream config ${path}: ${(error as Error).message}. Try: --litestream-config PATH (see litestream.yml in the repository)`,
    );
  }
  let doc: unknown;
  try {
    doc = parse(expandEnv(text, env));
  } catch (error) {
    throw new LitestreamConfigError(`the Litestream config ${path} is not valid YAML: ${(error as Error).message}`);
  }
  const root = (doc ?? {}) as Root;
  // The same file unexpanded (a reference is plain YAML text), to tell which values came from unset variables.
  let raw: Root = {};
  try {
    raw = (parse(text) ?? {}) as Root;
  } catch {
    // Only the expanded file must be valid YAML, as for Litestream.
  }
  const endpoints = new Map<string, string | null>();
  const endpointNeeds = new Map<string, string[]>();
  const leases = new Map<string, LeaseLocation | null>();
  const shipments = new Map<string, ShipmentLocation | null>();
  (root.dbs ?? []).forEach((db, i) => {
    if (typeof db.path !== "string" || db.path === "") return;
    const rawDb = raw.dbs?.[i];
    const needs = unsetVariables(rawDb?.replica ?? rawDb?.replicas?.[0], env);
    endpoints.set(resolve(db.path), needs.length > 0 ? null : replicaEndpoint(db.replica ?? db.replicas?.[0]));
    endpointNeeds.set(resolve(db.path), needs);
    const store = replicaStore(db.replica ?? db.replicas?.[0], rawDb?.replica ?? rawDb?.replicas?.[0], env);
    leases.set(resolve(db.path), leaseLocation(store));
    shipments.set(resolve(db.path), shipmentLocation(store));
  });
  if (endpoints.size === 0) throw new LitestreamConfigError(`the Litestream config ${path} lists no database under dbs:`);
  const socketPath = root.socket?.enabled === true ? (root.socket.path ?? "/var/run/litestream.sock") : null;
  return { file: path, socketPath, databases: [...endpoints.keys()], endpoints, endpointNeeds, leases, shipments };
}

/**
 * The control socket of the Litestream that replicates `databasePath` according to `file`; throws a
 * LitestreamConfigError with a hint when the file cannot be read, does not list the database, or has no socket.
 */
export function controlSocketFor(file: string, databasePath: string, env: Record<string, string | undefined>): string {
  return controlSocketIn(readLitestreamConfig(file, env), databasePath);
}

/** The same, for a config already read. */
export function controlSocketIn(config: LitestreamConfig, databasePath: string): string {
  const database = resolve(databasePath);
  if (!config.databases.includes(database)) {
    throw new LitestreamConfigError(
      `the Litestream config ${config.file} does not list ${database} (it lists ${config.databases.join(", ")}). Try: set dbs[].path to ${database}, or --data-dir to the directory Litestream replicates`,
    );
  }
  if (config.socketPath === null) {
    throw new LitestreamConfigError(
      `the Litestream config ${config.file} has no control socket. Try: socket: {enabled: true, path: /run/litestream/litestream.sock} (see litestream.yml in the repository)`,
    );
  }
  return config.socketPath;
}

/**
 * Where the lease of `databasePath`'s replica lives according to `file`; null for a replica without epochs. Throws a
 * LitestreamConfigError when the file cannot be read or does not list the database.
 */
export function leaseLocationFor(file: string, databasePath: string, env: Record<string, string | undefined>): LeaseLocation | null {
  return listed(readLitestreamConfig(file, env), databasePath).leases.get(resolve(databasePath)) ?? null;
}

/** Where standbys put their visits for `databasePath`'s primary according to `file`; null for a replica not on S3. */
export function shipmentLocationFor(file: string, databasePath: string, env: Record<string, string | undefined>): ShipmentLocation | null {
  return listed(readLitestreamConfig(file, env), databasePath).shipments.get(resolve(databasePath)) ?? null;
}

/** `config`, when it lists the database; a LitestreamConfigError with a hint otherwise. */
function listed(config: LitestreamConfig, databasePath: string): LitestreamConfig {
  const database = resolve(databasePath);
  if (!config.databases.includes(database)) {
    throw new LitestreamConfigError(
      `the Litestream config ${config.file} does not list ${database} (it lists ${config.databases.join(", ")}). Try: --data-dir the directory Litestream replicates`,
    );
  }
  return config;
}
