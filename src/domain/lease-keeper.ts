/**
 * A primary's hold on the replica lease (storage/replica-lease.ts): it accepts writes only while it knows it holds
 * the lease (DESIGN.md, Failover). Every quarter term it reads the lease; when it names this node's epoch and
 * holder and no colour of this node renewed it in the last eighth of a term, it renews it with `If-Match`. Writes are
 * accepted until half a term after the send of the last renewal seen. A node taking the lease over (`shortener
 * promote`) first watches it unchanged for a whole term, so by then this node has stopped accepting writes for half
 * a term: time enough for Litestream to upload the last of them into the old epoch, which the taker restores.
 *
 * A lease that names another epoch or holder means this node was replaced: it stops accepting writes for good and
 * fails /readyz, so Caddy sends traffic to the new primary. A store that does not answer only lets the term run out.
 */
import { unavailable } from "../errors";
import { holdsLease, type ReplicaEnv } from "../storage/replica-epoch";
import { type Lease, LeaseConflict, type LeaseStore } from "../storage/replica-lease";
import { describeError, log } from "../telemetry/logger";
import type { LeaseStatus } from "../telemetry/replica-metrics";

const RETRY_AFTER_SECONDS = 5;
const RUNBOOK = "runbooks/promote-standby.md";

export class LeaseKeeper {
  #validUntil = 0;
  #fenced = false;
  /** The lease as found when this node was fenced; null when the store held none. */
  #lostTo: Lease | null = null;
  #timer: Timer | undefined;
  #renewing: Promise<void> | null = null;
  #failing = false;
  readonly #onLost: (() => void)[] = [];

  constructor(
    private readonly store: LeaseStore,
    /** This node's epoch and holder name from its replica.env; null when it never took the lease. */
    private readonly mine: ReplicaEnv | null,
    private readonly termMs: number,
    /** A clock that never steps (performance.now()): validity must not grow when the wall clock is set back. */
    private readonly now: () => number = () => performance.now(),
    /** The wall clock, for the lease's renewedAt, which the colours of one node (one clock) compare. */
    private readonly wall: () => number = Date.now,
  ) {}

  /** Renews now (resolves when that first attempt is over, never rejects), then every quarter term until stop(). */
  start(): Promise<void> {
    this.#timer = setInterval(() => void this.renew(), this.termMs / 4);
    return this.renew();
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** One look at the lease, renewing it when due; never throws. Concurrent calls share one attempt. */
  renew(): Promise<void> {
    this.#renewing ??= this.#renew().finally(() => {
      this.#renewing = null;
    });
    return this.#renewing;
  }

  async #renew(): Promise<void> {
    const mine = this.mine;
    if (this.#fenced || mine === null || mine.holder === null) return;
    try {
      const sent = this.now();
      const sentWall = this.wall();
      const current = await this.store.read();
      if (current === null || !holdsLease(mine, current.lease)) {
        this.#lose(current?.lease ?? null);
        return;
      }
      // Another colour of this node (same clock) renewed it lately: that renewal counts for this one too. A renewal
      // "in the future" (the wall clock was set back since) is not taken on trust: this colour writes one of its own.
      const age = sentWall - Date.parse(current.lease.renewedAt);
      if (age >= 0 && age < this.termMs / 8) {
        this.#validUntil = Math.max(this.#validUntil, sent - age + this.termMs / 2);
      } else {
        const lease: Lease = {
          epoch: mine.epoch,
          holder: mine.holder,
          renewedAt: new Date(sentWall).toISOString(),
          termSeconds: this.termMs / 1000,
        };
        await this.store.replace(lease, current.etag);
        this.#validUntil = Math.max(this.#validUntil, sent + this.termMs / 2);
      }
      if (this.#failing) log.info("lease_renewal_recovered", { epoch: mine.epoch });
      this.#failing = false;
    } catch (error) {
      // A conflict is a colour of this node renewing at the same moment, or a taker: the next look tells which.
      if (error instanceof LeaseConflict) return;
      const writesFor = Math.max(0, Math.round(this.#validUntil - this.now()) / 1000);
      if (!this.#failing) log.warn("lease_renewal_failed", { ...describeError(error), writes_refused_in_seconds: writesFor });
      this.#failing = true;
    }
  }

  /** Tells `listener` once this node finds the lease moved on (what only a primary does must stop). */
  onLost(listener: () => void): void {
    this.#onLost.push(listener);
  }

  #lose(now: Lease | null): void {
    this.#fenced = true;
    this.#lostTo = now;
    this.stop();
    for (const listener of this.#onLost) listener();
    log.error("lease_lost", {
      epoch: this.mine?.epoch,
      lease_epoch: now?.epoch ?? null,
      lease_holder: now?.holder ?? null,
      hint: `another node was promoted: this one refuses writes and fails /readyz; make it a standby (${RUNBOOK})`,
    });
  }

  /** Why this node must not be the primary, for /readyz; null while it holds (or may still hold) the lease. */
  problem(): string | null {
    if (this.mine === null || this.mine.holder === null) {
      return `this node has not taken the replica lease (no holder in its replica.env): run shortener promote (${RUNBOOK})`;
    }
    if (!this.#fenced) return null;
    const who = this.#lostTo === null ? "the store holds no lease" : `epoch ${this.#lostTo.epoch} is held by ${this.#lostTo.holder}`;
    return `the replica lease moved on (${who}; this node wrote epoch ${this.mine.epoch}): it is no longer the primary (${RUNBOOK})`;
  }

  /**
   * For the metrics: how many more seconds writes are accepted under the last renewal (0 while they are refused), and
   * whether the lease moved on to another node (for good).
   */
  status(): LeaseStatus {
    const writableSeconds = this.problem() === null ? Math.max(0, this.#validUntil - this.now()) / 1000 : 0;
    return { writableSeconds, fenced: this.#fenced };
  }

  /** Throws the 503 a write gets while this node does not know it holds the lease. */
  assertWritable(): void {
    const problem = this.problem();
    if (problem !== null) throw unavailable(`This node is not the primary: ${problem}. Nothing was changed.`, RETRY_AFTER_SECONDS);
    if (this.now() >= this.#validUntil) {
      throw unavailable(
        "This node cannot confirm it still holds the replica lease (the store does not answer), so it refuses writes: another node may have been promoted. Nothing was changed; retry later.",
        RETRY_AFTER_SECONDS,
      );
    }
  }
}
