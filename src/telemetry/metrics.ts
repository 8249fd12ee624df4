/**
 * The one Prometheus registry (prom-client) and one function per event. Labels are low-cardinality by
 * construction: route templates, methods, status classes and fixed outcome names, never a code, URL, key or IP.
 * Values that already live elsewhere (cache stats, buffer depth, file sizes) are read at scrape time.
 */
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";

export type RedirectOutcome = "hit" | "miss" | "not_found" | "expired";

/** What the metrics read when scraped; provided by the composition root. */
export interface MetricSources {
  cache(): { size: number; hits: number; misses: number };
  visitBufferDepth(): number;
  ready(): boolean;
  draining(): boolean;
  openConnections(): number;
  diskFreeBytes(): number;
  databaseSizeBytes(): number;
  walSizeBytes(): number;
  /** Seconds the replica trails the database, or null when this node does not replicate (the series is absent). */
  replicationLagSeconds(): number | null;
}

export interface BuildInfo {
  version: string;
  commit: string;
  bun: string;
}

const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];
const METHODS = new Set(["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]);
const STATUS_CLASSES = ["1xx", "2xx", "3xx", "4xx", "5xx"];

interface RequestSeries {
  duration: ReturnType<Histogram["labels"]>;
  requests: ReturnType<Counter["labels"]>;
  errors: ReturnType<Counter["labels"]> | null;
}

export class Metrics {
  readonly registry = new Registry();
  readonly #duration;
  readonly #requests;
  readonly #errors;
  readonly #redirects;
  readonly #flushDuration;
  readonly #flushFailures;
  readonly #series = new Map<string, RequestSeries>();
  readonly #redirectSeries = new Map<RedirectOutcome, ReturnType<Counter["labels"]>>();
  #inFlight = 0;
  #loopLagMax = 0;
  #loopTimer: Timer | undefined;

  constructor(build: BuildInfo) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry });
    this.#duration = new Histogram({
      name: "http_request_duration_seconds",
      help: "Time from request to response, by route template, method and status class.",
      labelNames: ["route", "method", "status_class"],
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.#requests = new Counter({
      name: "http_requests_total",
      help: "Requests answered.",
      labelNames: ["route", "method", "status_class"],
      registers,
    });
    this.#errors = new Counter({
      name: "http_request_errors_total",
      help: "Requests answered with a 5xx.",
      labelNames: ["route", "method", "status_class"],
      registers,
    });
    const self = this;
    new Gauge({
      name: "http_requests_in_flight",
      help: "Requests being handled now.",
      registers,
      collect() {
        this.set(self.#inFlight);
      },
    });
    this.#redirects = new Counter({
      name: "shortener_redirects_total",
      help: "Redirect lookups by outcome.",
      labelNames: ["outcome"],
      registers,
    });
    for (const outcome of ["hit", "miss", "not_found", "expired"] as const)
      this.#redirectSeries.set(outcome, this.#redirects.labels({ outcome }));
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
    new Gauge({ name: "shortener_build_info", help: "Build facts; always 1.", labelNames: ["version", "commit", "bun"], registers }).set(
      { ...build },
      1,
    );
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
    const counter = (name: string, help: string, read: () => number) =>
      new Counter({
        name,
        help,
        registers,
        collect() {
          this.reset();
          this.inc(read());
        },
      });
    gauge("shortener_ready", "1 when /readyz passes.", () => (sources.ready() ? 1 : 0));
    gauge("shortener_draining", "1 while the node drains.", () => (sources.draining() ? 1 : 0));
    gauge("shortener_cache_entries", "Links held in the redirect LRU.", () => sources.cache().size);
    counter("shortener_cache_hits_total", "Redirect lookups answered from the LRU.", () => sources.cache().hits);
    counter("shortener_cache_misses_total", "Redirect lookups that went to SQLite.", () => sources.cache().misses);
    gauge("shortener_visit_buffer_depth", "Visits counted but not yet written.", sources.visitBufferDepth);
    gauge("shortener_open_connections", "Established TCP connections on the public listener.", sources.openConnections);
    gauge("shortener_disk_free_bytes", "Free bytes on the data directory's filesystem.", sources.diskFreeBytes);
    gauge("shortener_database_size_bytes", "Size of the SQLite database file.", sources.databaseSizeBytes);
    gauge("shortener_wal_size_bytes", "Size of the SQLite WAL file.", sources.walSizeBytes);
    new Gauge({
      name: "shortener_replication_lag_seconds",
      help: "Seconds since Litestream last uploaded this database to its replica (absent without --replication litestream).",
      registers,
      collect() {
        const lag = sources.replicationLagSeconds();
        if (lag === null) this.remove();
        else this.set(lag);
      },
    });
    const self = this;
    new Gauge({
      name: "shortener_event_loop_lag_seconds",
      help: "Largest event-loop delay seen since the last scrape.",
      registers,
      collect() {
        this.set(self.#loopLagMax / 1000);
        self.#loopLagMax = 0;
      },
    });
    const intervalMs = 50;
    let expected = performance.now() + intervalMs;
    this.#loopTimer = setInterval(() => {
      const now = performance.now();
      this.#loopLagMax = Math.max(this.#loopLagMax, now - expected);
      expected = now + intervalMs;
    }, intervalMs);
    this.#loopTimer.unref();
  }

  requestStarted(): void {
    this.#inFlight++;
  }

  /** One answered request; `route` is a template. Also ends the in-flight count started by requestStarted. */
  recordRequest(route: string, method: string, status: number, seconds: number): void {
    this.#inFlight--;
    const m = METHODS.has(method) ? method : "other";
    const statusClass = STATUS_CLASSES[Math.floor(status / 100) - 1] ?? "5xx";
    const key = `${route} ${m} ${statusClass}`;
    let series = this.#series.get(key);
    if (series === undefined) {
      const labels = { route, method: m, status_class: statusClass };
      series = {
        duration: this.#duration.labels(labels),
        requests: this.#requests.labels(labels),
        errors: statusClass === "5xx" ? this.#errors.labels(labels) : null,
      };
      this.#series.set(key, series);
    }
    series.duration.observe(seconds);
    series.requests.inc();
    series.errors?.inc();
  }

  recordRedirect(outcome: RedirectOutcome): void {
    this.#redirectSeries.get(outcome)?.inc();
  }

  recordVisitFlush(seconds: number): void {
    this.#flushDuration.observe(seconds);
  }

  recordVisitFlushFailure(): void {
    this.#flushFailures.inc();
  }

  scrape(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  stop(): void {
    clearInterval(this.#loopTimer);
  }
}
