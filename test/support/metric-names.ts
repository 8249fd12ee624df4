/**
 * The metrics contract between src/telemetry/metrics.ts and what reads its output (deploy/prometheus/alerts.yml,
 * deploy/grafana/shortener.json): every metric /metrics exposes for them, with its type and labels. The alerts
 * test checks that the rules and the dashboard use nothing else; a test against a real scrape checks the
 * program exposes all of it.
 */

export type MetricType = "counter" | "gauge" | "histogram";

export interface MetricContract {
  /** The name on the metric's `# TYPE` line. */
  name: string;
  type: MetricType;
  /** Labels the program sets, besides the `job` and `instance` Prometheus adds (and a histogram's `le`). */
  labels: readonly string[];
}

const HTTP_LABELS = ["route", "method", "status_class"] as const;

export const METRICS: readonly MetricContract[] = [
  { name: "http_request_duration_seconds", type: "histogram", labels: HTTP_LABELS },
  { name: "http_requests_total", type: "counter", labels: HTTP_LABELS },
  { name: "http_request_errors_total", type: "counter", labels: HTTP_LABELS },
  { name: "http_requests_in_flight", type: "gauge", labels: [] },
  { name: "shortener_redirects_total", type: "counter", labels: ["outcome"] },
  { name: "shortener_link_password_attempts_total", type: "counter", labels: ["outcome"] },
  { name: "shortener_access_log_lines_dropped_total", type: "counter", labels: [] },
  { name: "shortener_error_log_lines_dropped_total", type: "counter", labels: [] },
  { name: "shortener_ready", type: "gauge", labels: [] },
  { name: "shortener_draining", type: "gauge", labels: [] },
  { name: "shortener_disk_free_bytes", type: "gauge", labels: [] },
  { name: "shortener_database_size_bytes", type: "gauge", labels: [] },
  { name: "shortener_wal_size_bytes", type: "gauge", labels: [] },
  { name: "shortener_open_connections", type: "gauge", labels: [] },
  { name: "shortener_event_loop_lag_seconds", type: "gauge", labels: [] },
  { name: "process_resident_memory_bytes", type: "gauge", labels: [] },
  { name: "process_start_time_seconds", type: "gauge", labels: [] },
  { name: "shortener_visit_buffer_depth", type: "gauge", labels: [] },
  { name: "shortener_visit_flush_duration_seconds", type: "histogram", labels: [] },
  { name: "shortener_visit_flush_failures_total", type: "counter", labels: [] },
  { name: "shortener_visit_details_dropped_total", type: "counter", labels: [] },
  { name: "shortener_standby_visits_unrecorded_total", type: "counter", labels: [] },
  // On a standby: its spool files of visits not yet in the bucket; absent on a primary.
  { name: "shortener_standby_visit_shipments_waiting", type: "gauge", labels: [] },
  { name: "shortener_standby_visits_taken_total", type: "counter", labels: [] },
  { name: "shortener_cache_entries", type: "gauge", labels: [] },
  { name: "shortener_cache_hits_total", type: "counter", labels: [] },
  { name: "shortener_cache_misses_total", type: "counter", labels: [] },
  { name: "shortener_build_info", type: "gauge", labels: ["version", "commit", "bun"] },
  // Seconds since Litestream's last upload; absent without --replication litestream.
  { name: "shortener_replication_lag_seconds", type: "gauge", labels: [] },
  // On a standby: the age of the primary's newest heartbeat in its copy; absent on a primary.
  { name: "shortener_standby_copy_age_seconds", type: "gauge", labels: [] },
  // The epoch in the data dir's replica.env (absent without one); on a primary whose replica has epochs, the seconds of
  // writes left under its last lease renewal and whether another node took the lease (absent elsewhere).
  { name: "shortener_replica_epoch", type: "gauge", labels: [] },
  { name: "shortener_replica_lease_writable_seconds", type: "gauge", labels: [] },
  { name: "shortener_replica_lease_fenced", type: "gauge", labels: [] },
  { name: "shortener_replica_standby_promoted", type: "gauge", labels: [] },
  // From the data dir's drill-last.json; absent until a drill has recorded the value.
  { name: "shortener_drill_last_run_timestamp_seconds", type: "gauge", labels: [] },
  { name: "shortener_drill_last_success_timestamp_seconds", type: "gauge", labels: [] },
  { name: "shortener_drill_last_ok", type: "gauge", labels: [] },
  { name: "shortener_drill_last_rpo_seconds", type: "gauge", labels: [] },
  { name: "shortener_drill_last_restore_duration_seconds", type: "gauge", labels: [] },
  // The webhook outbox: deliveries waiting (pending) and given up (dead), attempts by outcome and their duration.
  { name: "shortener_webhook_outbox_backlog", type: "gauge", labels: [] },
  { name: "shortener_webhook_dead_letters", type: "gauge", labels: [] },
  { name: "shortener_webhook_deliveries_total", type: "counter", labels: ["outcome"] },
  { name: "shortener_webhook_delivery_duration_seconds", type: "histogram", labels: [] },
  // The real-time feed (/.well-known/mercure): open subscriptions, and those dropped for not keeping up.
  { name: "shortener_realtime_subscribers", type: "gauge", labels: [] },
  { name: "shortener_realtime_dropped_total", type: "counter", labels: [] },
];

/** The contract's metric names, as on the `# TYPE` lines of a scrape. */
export const METRIC_NAMES: readonly string[] = METRICS.map((m) => m.name);

/** Label values the contract names, and the only ones the rules and the dashboard may match on exactly. */
export const LABEL_VALUES: Readonly<Record<string, readonly string[]>> = {
  route: ["/{shortCode}", "/rest/v3/short-urls", "/rest/v3/short-urls/{shortCode}", "/healthz", "/readyz", "other"],
  status_class: ["2xx", "3xx", "4xx", "5xx"],
  outcome: ["hit", "miss", "not_found", "expired", "locked"],
};

/** Buckets (`le`) http_request_duration_seconds must have: the latency SLO counts requests over 5 ms. */
export const DURATION_BUCKETS: readonly string[] = ["0.001", "0.005", "0.1"];

/** Names of the series a metric produces: a histogram's `_bucket`, `_sum` and `_count`, else the name itself. */
export function seriesNames(metric: MetricContract): string[] {
  if (metric.type !== "histogram") return [metric.name];
  return ["_bucket", "_sum", "_count"].map((suffix) => `${metric.name}${suffix}`);
}
