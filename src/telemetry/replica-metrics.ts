/**
 * The replica's epochs and the primary's hold on the lease (DESIGN.md, Failover), read at scrape time. Absent, not 0,
 * where a node has no such value: without epochs in its replica path a node has no epoch; only a primary whose
 * replica has epochs keeps a lease. Every node on one epoch is the healthy pair; a node on an older epoch than another
 * is a primary replaced by a promotion or a standby following a history no primary writes any more. A standby that
 * took the lease must be restarted as the primary: until then no node takes writes.
 */
import type { Registry } from "prom-client";
import { optionalGauge } from "./scraped-series";

/** A primary's hold on the lease as the metrics show it (domain/lease-keeper.ts gives it). */
export interface LeaseStatus {
  /** Seconds writes are still accepted for under the last renewal; 0 while they are refused. */
  writableSeconds: number;
  /** Another node took the lease: this one refuses writes for good. */
  fenced: boolean;
}

export interface ReplicaMetricSources {
  /** The epoch this node writes or follows (its replica.env), or null without one. */
  epoch(): number | null;
  /** The primary's hold on the lease, or null where the node keeps none. */
  lease(): LeaseStatus | null;
  /**
   * On a standby: whether its replica.env or promote's note names it a holder of the lease (promoted and not yet
   * restarted as the primary, or a replaced primary started as a standby before `lease follow`); null on a primary.
   */
  promoted(): boolean | null;
}

export function attachReplicaMetrics(registry: Registry, sources: ReplicaMetricSources): void {
  const registers = [registry];
  optionalGauge(
    registers,
    "shortener_replica_epoch",
    "The replica epoch this node writes (a primary) or follows (a standby), from its replica.env (absent without one).",
    sources.epoch,
  );
  optionalGauge(
    registers,
    "shortener_replica_lease_writable_seconds",
    "On a primary whose replica has epochs: seconds it still accepts writes for under its last lease renewal (0 while it refuses them).",
    () => sources.lease()?.writableSeconds ?? null,
  );
  optionalGauge(
    registers,
    "shortener_replica_lease_fenced",
    "On a primary whose replica has epochs: 1 once it found the lease held by another node (promoted), for good.",
    () => {
      const lease = sources.lease();
      return lease === null ? null : Number(lease.fenced);
    },
  );
  optionalGauge(
    registers,
    "shortener_replica_standby_promoted",
    "On a standby: 1 when its replica.env (or promote's note) names it the lease's holder: promoted and not yet restarted as the primary (no node takes writes), or a replaced primary started as a standby without lease follow.",
    () => {
      const promoted = sources.promoted();
      return promoted === null ? null : Number(promoted);
    },
  );
}
