/**
 * Reads the parts of Litestream's YAML configuration the app needs: which databases it replicates and where
 * its control socket is. Environment references are expanded the way Litestream expands them (${VAR}, $VAR).
 */
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { parse } from "yaml";

export interface LitestreamConfig {
  /** The configuration file, absolute. */
  file: string;
  /** The control socket, when enabled. */
  socketPath: string | null;
  /** Absolute paths of the replicated databases. */
  databases: string[];
}

export class LitestreamConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "LitestreamConfigError";
  }
}

/** Expands ${VAR} and $VAR from `env`; unset variables become empty, as in Go's os.ExpandEnv. */
export function expandEnv(text: string, env: Record<string, string | undefined>): string {
  return text.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)/g, (_, braced, bare) => env[braced ?? bare] ?? "");
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
  const root = (doc ?? {}) as { socket?: { enabled?: boolean; path?: string }; dbs?: { path?: string }[] };
  const databases = (root.dbs ?? []).map((db) => db.path).filter((p): p is string => typeof p === "string" && p !== "");
  if (databases.length === 0) throw new LitestreamConfigError(`the Litestream config ${path} lists no database under dbs:`);
  const socketPath = root.socket?.enabled === true ? (root.socket.path ?? "/var/run/litestream.sock") : null;
  return { file: path, socketPath, databases: databases.map((d) => resolve(d)) };
}

/**
 * The control socket of the Litestream that replicates `databasePath` according to `file`; throws a
 * LitestreamConfigError with a hint when the file cannot be read, does not list the database, or has no socket.
 */
export function controlSocketFor(file: string, databasePath: string, env: Record<string, string | undefined>): string {
  const config = readLitestreamConfig(file, env);
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
