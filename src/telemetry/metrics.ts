/**
 * The one Prometheus registry (prom-client) and one function per event. Labels are low-cardinality by
 * construction: route templates, methods, status classes and fixed outcome names, never a code, URL, key or IP.
 * Values that already live elsewhere (cache stats, buffer depth, file sizes) are read at scrape time.
 */
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";
import { accessLinesDropped, errorLinesDropped } from "./logger";
import { RequestMetrics, type RequestSeries } from "./request-metrics";
import { optionalGauge, scrapedCounter } from "./scraped-series";

/** `locked`: a password-protected link asked for its password (nothing redirected or counted). */
export type RedirectOutcome = "hit" | "miss" | "not_found" | "expired" | "locked";
/** A webhook delivery attempt: delivered (2xx), failed (will be retried) or dead (the last attempt failed). */
export type WebhookOutcome = "delivered" | "failed" | "dead";

/** What the metrics read when scraped; provided by the composition root. */
export interface MetricSources {
  cache(): { size: number; hits: number; misses: number };
  visitBufferDepth(): number;
  visitDetailsDropped(): number;
  /** Visits a standby served whose details it did not keep (past the buffer limit in one flush interval). */
  visitsUnrecorded(): number;
  /** On a standby, its spool files the bucket does not have yet (domain/visit-spool.ts); null on a primary (absent). */
  shipmentsWaiting(): number | null;
  /** Visits a standby served that this node wrote from its shipments (domain/visit-inbox.ts). */
  standbyVisitsTaken(): number;
  ready(): boolean;
  draining(): boolean;
  openConnections(): number;
  diskFreeBytes(): number;
  databaseSizeBytes(): number;
  walSizeBytes(): number;
  /** Seconds the replica trails the database, or null when this node does not replicate (the series is absent). */
  replicationLagSeconds(): number | null;
  /** On a standby, the age of the primary's newest heartbeat in its copy; null elsewhere, or before one (absent). */
  standbyCopyAgeSeconds(): number | null;
  /** The last restore drill, or null when none has run on this node. */
  drill(): DrillStatus | null;
}

/** The last restore drill's result, as recorded by `shortener drill`; times are epoch seconds. */
export interface DrillStatus {
  lastRunAt: number;
  lastSuccessAt: number | null;
  ok: boolean;
  rpoSeconds: number | null;
  restoreSeconds: number | null;
}

export interface BuildInfo {
  version: string;
  commit: string;
  bun: string;
}

/** prom-client default metrics left out of the registry (see the constructor). */
const HEAP_SPACE_METRICS = [
  "nodejs_heap_space_size_total_bytes",
  "nodejs_heap_space_size_used_bytes",
  "nodejs_heap_space_size_available_bytes",
] as const;

export class Metrics {
  readonly registry = new Registry();
  readonly #requests = new RequestMetrics();
  readonly #flushDuration;
  readonly #flushFailures;
  readonly #checkpointDuration;
  readonly #checkpointFailures;
  readonly #webhookDeliveries;
  readonly #webhookDuration;
  readonly #passwordAttempts;
  /** Redirect outcomes as plain numbers (hot path), copied into the counter at scrape time. */
  readonly #redirectCounts: Record<RedirectOutcome, number> = { hit: 0, miss: 0, not_found: 0, expired: 0, locked: 0 };
  #inFlight = 0;
  #loopTimer: Timer | undefined;
  readonly #visitsPurged;
  readonly #purgeDuration;
  readonly #purgeBatchDuration;

  constructor(build: BuildInfo) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry });
    // Under Bun, the per-heap-space statistics behind these walk the whole JS heap: measured 30-47 ms a scrape with
    // 100 000 links cached, during which the event loop (redirects included) stands still. The heap's size is still
    // there (nodejs_heap_size_*_bytes, process_resident_memory_bytes).
    for (const name of HEAP_SPACE_METRICS) this.registry.removeSingleMetric(name);
    const self = this;
    new Gauge({
      name: "http_requests_in_flight",
      help: "Requests being handled now.",
      registers,
      collect() {
        this.set(self.#inFlight);
      },
    });
    new Counter({
      name: "shortener_redirects_total",
      help: "Redirect lookups by outcome.",
      labelNames: ["outcome"],
      registers,
      collect() {
        this.reset();
        for (const [outcome, count] of Object.entries(self.#redirectCounts)) this.inc({ outcome }, count);
      },
    });
    this.#passwordAttempts = new Counter({
      name: "shortener_link_password_attempts_total",
      help: "Passwords given to unlock a password-protected link, by outcome (unlocked, wrong, limited: refused unchecked after too many wrong ones, busy).",
      labelNames: ["outcome"],
      registers,
    });
    scrapedCounter(
      registers,
      "shortener_access_log_lines_dropped_total",
      "Access log lines dropped because stdout was not read fast enough (its reader, journald, stalled).",
      accessLinesDropped,
    );
    scrapedCounter(
      registers,
      "shortener_error_log_lines_dropped_total",
      "Failed requests' warning and error lines dropped because stderr was not read fast enough (its reader, journald, stalled).",
      errorLinesDropped,
    );
    this.#flushDuration = new Histogram({
      name: "shortener_visit_flush_duration_seconds",
      help: "Time to write one batch of buffered visits.",
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
      registers,
    });
    this.#flushFailures = new Counter({
      name: "shortener_visit_flush_failures_total",
      help: "Visit flushes that failed (the batch stays buffered).",
      registers,
    });
    this.#checkpointDuration = new Histogram({
      name: "shortener_sqlite_checkpoint_duration_seconds",
      help: "PASSIVE WAL checkpoints run off the event loop (by the visit writer or the background checkpointer), by duration.",
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5],
      registers,
    });
    this.#checkpointFailures = new Counter({
      name: "shortener_sqlite_checkpoint_failures_total",
      help: "Background WAL checkpoints that failed.",
      registers,
    });
    this.#webhookDeliveries = new Counter({
      name: "shortener_webhook_deliveries_total",
      help: "Webhook delivery attempts by outcome.",
      labelNames: ["outcome"],
      registers,
    });
    for (const outcome of ["delivered", "failed", "dead"]) this.#webhookDeliveries.inc({ outcome }, 0);
    this.#webhookDuration = new Histogram({
      name: "shortener_webhook_delivery_duration_seconds",
      help: "Time of one webhook delivery attempt, until the receiver answered or it failed.",
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 15],
      registers,
    });
    new Gauge({ name: "shortener_build_info", help: "Build facts; always 1.", labelNames: ["version", "commit", "bun"], registers }).set(
      { ...build },
      1,
    );
    this.#visitsPurged = new Counter({
      name: "shortener_visits_purged_total",
      help: "Raw visit rows deleted, by reason: retention (past --visits-retention) or deleted_link.",
      labelNames: ["reason"],
      registers,
    });
    for (const reason of ["retention", "deleted_link"]) this.#visitsPurged.inc({ reason }, 0);
    this.#purgeDuration = new Histogram({
      name: "shortener_visit_purge_duration_seconds",
      help: "Time of one retention pass (its batches and the pauses between them).",
      buckets: [0.01, 0.1, 0.5, 1, 5, 15, 60, 300],
      registers,
    });
    this.#purgeBatchDuration = new Histogram({
      name: "shortener_visit_purge_batch_duration_seconds",
      help: "Time of one purge transaction: the longest a redirect can wait behind the retention job.",
      buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1],
      registers,
    });
  }

  /** Reads the scrape-time values from `sources` and starts the event-loop lag probe. */
  attach(sources: MetricSources): void {
    const registers = [this.registry];
    const gauge = (name: string, help: string, read: () => number) =>
      new Gauge({
        name,
        help,
        registers,
        collect() {
          this.set(read());
        },
      });
    const counter = (name: string, help: string, read: () => number) => scrapedCounter(registers, name, help, read);
    gauge("shortener_ready", "1 when /readyz passes.", () => (sources.ready() ? 1 : 0));
    gauge("shortener_draining", "1 while the node drains.", () => (sources.draining() ? 1 : 0));
    gauge("shortener_cache_entries", "Links held in the redirect LRU.", () => sources.cache().size);
    counter("shortener_cache_hits_total", "Redirect lookups answered from the LRU.", () => sources.cache().hits);
    counter("shortener_cache_misses_total", "Redirect lookups that went to SQLite.", () => sources.cache().misses);
    gauge(
      "shortener_visit_buffer_depth",
      "Visits counted but not yet written (0 on a standby, which writes none).",
      sources.visitBufferDepth,
    );
    counter(
      "shortener_standby_visits_unrecorded_total",
      "Visits a standby served and ships no details of (more than --visit-buffer-limit in one flush interval; counted for maxVisits only); 0 on a primary.",
      sources.visitsUnrecorded,
    );
    optionalGauge(
      registers,
      "shortener_standby_visit_shipments_waiting",
      "On a standby: files of its visits in the data dir's visit-spool that the replica's bucket does not have yet (absent on a primary).",
      sources.shipmentsWaiting,
    );
    counter(
      "shortener_standby_visits_taken_total",
      "Visits a standby served that this node took from its shipments into its database.",
      sources.standbyVisitsTaken,
    );
    counter(
      "shortener_visit_details_dropped_total",
      "Visits only counted on their link (no raw row, roll-up or event; orphan visits: dropped) because the buffer was full.",
      sources.visitDetailsDropped,
    );
    gauge(
      "shortener_open_connections",
      "Connections the process holds open (its sockets less the two listeners).",
      sources.openConnections,
    );
    gauge("shortener_disk_free_bytes", "Free bytes on the data directory's filesystem.", sources.diskFreeBytes);
    gauge("shortener_database_size_bytes", "Size of the SQLite database file.", sources.databaseSizeBytes);
    gauge("shortener_wal_size_bytes", "Size of the SQLite WAL file.", sources.walSizeBytes);
    // Absent, not 0, where the node has no such value: a standby has no upload lag, a primary no copy.
    optionalGauge(
      registers,
      "shortener_replication_lag_seconds",
      "Seconds since Litestream last uploaded this database to its replica (absent without --replication litestream).",
      sources.replicationLagSeconds,
    );
    optionalGauge(
      registers,
      "shortener_standby_copy_age_seconds",
      "On a standby: seconds since the primary's newest heartbeat in its copy of the replica (absent on a primary).",
      sources.standbyCopyAgeSeconds,
    );
    // A drill value that was never measured is absent, not 0, so the alerts can tell "never" from "long ago".
    const drillGauge = (name: string, help: string, read: (drill: DrillStatus) => number | null) =>
      optionalGauge(registers, name, help, () => {
        const drill = sources.drill();
        return drill === null ? null : read(drill);
      });
    drillGauge("shortener_drill_last_run_timestamp_seconds", "When the last restore drill finished.", (d) => d.lastRunAt);
    drillGauge("shortener_drill_last_success_timestamp_seconds", "When a restore drill last passed.", (d) => d.lastSuccessAt);
    drillGauge("shortener_drill_last_ok", "1 when the last restore drill passed, 0 when it failed.", (d) => (d.ok ? 1 : 0));
    drillGauge("shortener_drill_last_rpo_seconds", "How far the replica trailed the live database in the last drill.", (d) => d.rpoSeconds);
    drillGauge("shortener_drill_last_restore_duration_seconds", "How long the last drill's restore took.", (d) => d.restoreSeconds);
    // Largest lag per second over a sliding 10 s window: reading it (a scrape, or an operator's curl) resets nothing.
    const windowMax = new Float64Array(10);
    new Gauge({
      name: "shortener_event_loop_lag_seconds",
      help: "Largest event-loop delay seen over the last 10 seconds.",
      registers,
      collect() {
        this.set(Math.max(...windowMax) / 1000);
      },
    });
    const intervalMs = 50;
    let expected = performance.now() + intervalMs;
    let second = Math.floor(Date.now() / 1000);
    this.#loopTimer = setInterval(() => {
      const now = performance.now();
      const nowSecond = Math.floor(Date.now() / 1000);
      if (nowSecond !== second) {
        for (let s = second + 1; s <= nowSecond && s <= second + windowMax.length; s++) windowMax[s % windowMax.length] = 0;
        second = nowSecond;
      }
      const slot = second % windowMax.length;
      windowMax[slot] = Math.max(windowMax[slot] as number, now - expected);
      expected = now + intervalMs;
    }, intervalMs);
    this.#loopTimer.unref();
  }

  /**
   * The webhook outbox's gauges, counted at scrape time; on a primary only: a standby's outbox is the primary's, in its
   * copy, and delivered by the primary, so reported twice it would page twice for one dead letter.
   */
  attachWebhooks(sources: { backlog(): number; deadLetters(): number }): void {
    const registers = [this.registry];
    new Gauge({
      name: "shortener_webhook_outbox_backlog",
      help: "Webhook deliveries waiting to be sent or retried (counted up to 10000).",
      registers,
      collect() {
        this.set(sources.backlog());
      },
    });
    new Gauge({
      name: "shortener_webhook_dead_letters",
      help: "Webhook deliveries given up after the last attempt, to retry by hand (counted up to 10000).",
      registers,
      collect() {
        this.set(sources.deadLetters());
      },
    });
  }

  /** The real-time feed's subscribers now, and those dropped for not keeping up since start. */
  attachRealtime(stats: () => { subscribers: number; dropped: number }): void {
    const registers = [this.registry];
    new Gauge({
      name: "shortener_realtime_subscribers",
      help: "Open subscriptions to the real-time feed (/.well-known/mercure).",
      registers,
      collect() {
        this.set(stats().subscribers);
      },
    });
    new Counter({
      name: "shortener_realtime_dropped_total",
      help: "Real-time feed subscribers dropped because they did not keep up.",
      registers,
      collect() {
        this.reset();
        this.inc(stats().dropped);
      },
    });
  }

  recordWebhookDelivery(outcome: WebhookOutcome, seconds: number): void {
    this.#webhookDeliveries.inc({ outcome });
    this.#webhookDuration.observe(seconds);
  }

  requestStarted(): void {
    this.#inFlight++;
  }

  /** The series a route's answers are counted in; a caller on the hot path keeps it rather than looking it up. */
  requestSeries(route: string, method: string, status: number): RequestSeries {
    return this.#requests.series(route, method, status);
  }

  /** One answered request; `route` is a template. Also ends the in-flight count started by requestStarted. */
  recordRequest(series: RequestSeries, seconds: number): void {
    this.#inFlight--;
    series.observe(seconds);
  }

  recordRedirect(outcome: RedirectOutcome): void {
    this.#redirectCounts[outcome]++;
  }

  recordPasswordAttempt(outcome: "unlocked" | "wrong" | "limited" | "busy"): void {
    this.#passwordAttempts.inc({ outcome });
  }

  recordVisitFlush(seconds: number): void {
    this.#flushDuration.observe(seconds);
  }

  recordCheckpoint(seconds: number): void {
    this.#checkpointDuration.observe(seconds);
  }

  recordCheckpointFailure(): void {
    this.#checkpointFailures.inc();
  }

  recordVisitFlushFailure(): void {
    this.#flushFailures.inc();
  }

  recordVisitsPurged(reason: "retention" | "deleted_link", rows: number, seconds: number): void {
    this.#visitsPurged.inc({ reason }, rows);
    this.#purgeBatchDuration.observe(seconds);
  }

  recordVisitPurgePass(seconds: number): void {
    this.#purgeDuration.observe(seconds);
  }

  async scrape(): Promise<string> {
    return (await this.registry.metrics()) + this.#requests.render();
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  stop(): void {
    clearInterval(this.#loopTimer);
  }
}
