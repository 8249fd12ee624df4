/**
 * Request counters and latency histograms kept as plain numbers and rendered in the Prometheus text format at
 * scrape time. prom-client's labelled inc/observe cost about 0.5 µs each, three per redirect; this costs a few
 * additions, which is what keeps instrumentation inside the redirect path's budget.
 */

export const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];
const KNOWN_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];
const STATUS_CLASSES = ["1xx", "2xx", "3xx", "4xx", "5xx"];

/** One (route, method, status class) combination. */
export class RequestSeries {
  count = 0;
  sum = 0;
  /** Per-bucket (not cumulative) counts; the last slot is +Inf. */
  readonly buckets = new Float64Array(LATENCY_BUCKETS.length + 1);

  constructor(
    readonly labels: string,
    /** Counted in http_request_errors_total. */
    readonly isError: boolean,
  ) {}

  observe(seconds: number): void {
    this.count++;
    this.sum += seconds;
    let i = 0;
    while (i < LATENCY_BUCKETS.length && seconds > (LATENCY_BUCKETS[i] as number)) i++;
    (this.buckets as Float64Array)[i] = (this.buckets[i] as number) + 1;
  }
}

export class RequestMetrics {
  readonly #series = new Map<string, RequestSeries>();

  /** The series for a route template, method and status; `method` outside the known set becomes "other". */
  series(route: string, method: string, status: number): RequestSeries {
    const m = KNOWN_METHODS.includes(method) ? method : "other";
    const statusClass = STATUS_CLASSES[Math.floor(status / 100) - 1] ?? "5xx";
    const key = `${route}\u0000${m}\u0000${statusClass}`;
    let series = this.#series.get(key);
    if (series === undefined) {
      // A 503 from /readyz is the readiness signal doing its job (draining, not ready), not a failed request.
      series = new RequestSeries(
        `route="${route}",method="${m}",status_class="${statusClass}"`,
        statusClass === "5xx" && route !== "/readyz",
      );
      this.#series.set(key, series);
    }
    return series;
  }

  /** The three families in the Prometheus text exposition format. */
  render(): string {
    const all = [...this.#series.values()];
    const lines = [
      "# HELP http_request_duration_seconds Time from request to response, by route template, method and status class.",
      "# TYPE http_request_duration_seconds histogram",
    ];
    for (const s of all) {
      let cumulative = 0;
      LATENCY_BUCKETS.forEach((le, i) => {
        cumulative += s.buckets[i] as number;
        lines.push(`http_request_duration_seconds_bucket{${s.labels},le="${le}"} ${cumulative}`);
      });
      lines.push(`http_request_duration_seconds_bucket{${s.labels},le="+Inf"} ${s.count}`);
      lines.push(`http_request_duration_seconds_sum{${s.labels}} ${s.sum}`);
      lines.push(`http_request_duration_seconds_count{${s.labels}} ${s.count}`);
    }
    lines.push("# HELP http_requests_total Requests answered.", "# TYPE http_requests_total counter");
    for (const s of all) lines.push(`http_requests_total{${s.labels}} ${s.count}`);
    lines.push("# HELP http_request_errors_total Requests answered with a 5xx.", "# TYPE http_request_errors_total counter");
    for (const s of all) if (s.isError) lines.push(`http_request_errors_total{${s.labels}} ${s.count}`);
    return `${lines.join("\n")}\n`;
  }
}
