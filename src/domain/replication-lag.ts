/**
 * The RPO guard: how far the replica trails this database, and whether link writes may go on. Lag is the time
 * since Litestream last uploaded to the replica (the primary's heartbeat changes the database every second, so
 * in steady state an upload follows every second). A poll that fails, or finds no upload yet, leaves the last good
 * reading in place, so the lag keeps growing; before any reading it counts from this process's start.
 */
import { replicationLagging } from "../errors";
import { describeError, log } from "../telemetry/logger";

/** When Litestream last uploaded this database to its replica (null: not yet); throws when it cannot tell. */
export type LastUploadSource = () => Promise<Date | null>;

export interface ReplicationStatus {
  lagSeconds: number;
  maxLagSeconds: number;
  /** False while the lag exceeds the maximum: link writes are refused. */
  ok: boolean;
}

/** How long a refused client is told to wait before retrying. */
const RETRY_AFTER_SECONDS = 5;

export class ReplicationLag {
  #lastUploadAt: number;
  #timer: Timer | undefined;
  #polling = false;
  #lagging = false;
  #failing = false;

  constructor(
    private readonly lastUpload: LastUploadSource,
    private readonly maxLagMs: number,
    private readonly now: () => number = Date.now,
  ) {
    this.#lastUploadAt = now();
  }

  /** Polls Litestream every `intervalMs` until stop(). */
  start(intervalMs = 1000): void {
    void this.poll();
    this.#timer = setInterval(() => void this.poll(), intervalMs);
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** One reading; never throws. Logs when Litestream becomes unreachable or the lag crosses the maximum. */
  async poll(): Promise<void> {
    if (this.#polling) return;
    this.#polling = true;
    try {
      const at = await this.lastUpload();
      if (this.#failing) log.info("replication_probe_recovered", {});
      this.#failing = false;
      if (at !== null) this.#lastUploadAt = Math.max(this.#lastUploadAt, at.getTime());
    } catch (error) {
      if (!this.#failing) log.warn("replication_probe_failed", describeError(error));
      this.#failing = true;
    } finally {
      this.#polling = false;
    }
    const status = this.status();
    if (!status.ok !== this.#lagging) {
      this.#lagging = !status.ok;
      if (this.#lagging) log.warn("replication_lagging", { lag_seconds: status.lagSeconds, max_lag_seconds: status.maxLagSeconds });
      else log.info("replication_caught_up", { lag_seconds: status.lagSeconds });
    }
  }

  lagSeconds(): number {
    return Math.max(0, this.now() - this.#lastUploadAt) / 1000;
  }

  status(): ReplicationStatus {
    const lagMs = Math.max(0, this.now() - this.#lastUploadAt);
    // Rounded up, so that a refusal never reports a lag equal to the maximum.
    return { lagSeconds: Math.ceil(lagMs / 100) / 10, maxLagSeconds: this.maxLagMs / 1000, ok: lagMs <= this.maxLagMs };
  }

  /** Throws a 503 (replication-lagging, Retry-After) while the lag exceeds the maximum. */
  assertWritable(): void {
    const status = this.status();
    if (!status.ok) throw replicationLagging(status.lagSeconds, status.maxLagSeconds, RETRY_AFTER_SECONDS);
  }
}
