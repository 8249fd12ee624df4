/** A client for Litestream's control socket (HTTP over a Unix socket): sync-and-wait and replication status. */

export interface SyncResult {
  status: string;
  txid: number;
  replicatedTxid: number;
}

export class LitestreamUnavailable extends Error {
  /** @param answered false when nothing answered on the socket (Litestream not running, or a wrong path). */
  constructor(
    message: string,
    readonly answered = true,
  ) {
    super(message);
    this.name = "LitestreamUnavailable";
  }
}

export class LitestreamClient {
  constructor(
    readonly socketPath: string,
    readonly databasePath: string,
  ) {}

  /** Asks Litestream to ship everything committed so far and waits until the replica confirms it. */
  async syncAndWait(timeoutSeconds: number): Promise<SyncResult> {
    const body = JSON.stringify({ path: this.databasePath, wait: true, timeout: timeoutSeconds });
    const response = await this.#request("/sync", { method: "POST", body, signal: AbortSignal.timeout(timeoutSeconds * 1000 + 1000) });
    const json = (await response.json().catch(() => ({}))) as { status?: string; txid?: number; replicated_txid?: number; error?: string };
    if (!response.ok) throw new LitestreamUnavailable(`litestream sync failed: ${json.error ?? response.status}`);
    const result = { status: json.status ?? "", txid: json.txid ?? 0, replicatedTxid: json.replicated_txid ?? 0 };
    // Never take a sync for a confirmation unless the replica holds everything Litestream had read.
    if (result.replicatedTxid < result.txid) {
      throw new LitestreamUnavailable(
        `litestream sync returned before the replica caught up (txid ${result.txid}, replicated ${result.replicatedTxid})`,
      );
    }
    return result;
  }

  /** When Litestream last uploaded this database to its replica, or null if it never has. */
  async lastSyncAt(): Promise<Date | null> {
    const response = await this.#request("/list", { signal: AbortSignal.timeout(2000) });
    const json = (await response.json()) as { databases?: { path: string; last_sync_at?: string }[] };
    const db = json.databases?.find((d) => d.path === this.databasePath);
    if (db === undefined) throw new LitestreamUnavailable(`litestream does not replicate ${this.databasePath}`);
    return db.last_sync_at ? new Date(db.last_sync_at) : null;
  }

  async #request(path: string, init: RequestInit): Promise<Response> {
    try {
      return await fetch(`http://localhost${path}`, { ...init, unix: this.socketPath } as RequestInit);
    } catch (error) {
      if ((error as Error).name === "TimeoutError") throw new LitestreamUnavailable(`Litestream did not answer ${path} in time`);
      throw new LitestreamUnavailable(`cannot reach Litestream's control socket ${this.socketPath}: ${(error as Error).message}`, false);
    }
  }
}
