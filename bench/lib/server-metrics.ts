/**
 * The shortener's own view of a run, from its ops listener's /metrics: histogram buckets (the redirect route's
 * latency: handler time, from the request reaching JavaScript to its response) and the event loop's lag.
 */
const REDIRECT_SERIES = 'route="/{shortCode}",method="GET",status_class="3xx"';

/** Cumulative counts of one histogram series' buckets, by upper bound in seconds (+Inf as Infinity). */
export type Buckets = Map<number, number>;

export async function scrapeMetrics(opsUrl: string): Promise<string> {
  const response = await fetch(`${opsUrl}/metrics`);
  if (response.status !== 200) throw new Error(`${opsUrl}/metrics answered ${response.status}`);
  return response.text();
}

/** The buckets of histogram `family`'s series with exactly these `labels` (as rendered, without `le`). */
export function histogramBuckets(text: string, family: string, labels = ""): Buckets {
  const buckets: Buckets = new Map();
  const prefix = `${family}_bucket{${labels === "" ? "" : `${labels},`}le="`;
  for (const line of text.split("\n")) {
    if (!line.startsWith(prefix)) continue;
    const [le = "", count = ""] = line.slice(prefix.length).split('"} ');
    buckets.set(le === "+Inf" ? Number.POSITIVE_INFINITY : Number(le), Number(count));
  }
  if (buckets.size === 0) throw new Error(`no ${family}{${labels}} series in the scrape`);
  return buckets;
}

export async function redirectBuckets(opsUrl: string): Promise<Buckets> {
  return histogramBuckets(await scrapeMetrics(opsUrl), "http_request_duration_seconds", REDIRECT_SERIES);
}

/** What the shortener's own metrics say of a run that began when `before` was read. */
export interface ServerView {
  /** Redirects answered in the run. */
  requests: number;
  /** The redirect route's histogram: the run's p99 is at most this bucket bound (Infinity past the last one). */
  p99BoundMs: number;
  /** The event loop's largest lag per second over the last 10 s (shortener_event_loop_lag_seconds). */
  loopLagMs: number;
}

/** One scrape after a run: the redirects since `before`, their p99 bucket bound, and the event loop's lag. */
export async function serverView(opsUrl: string, before: Buckets): Promise<ServerView> {
  const text = await scrapeMetrics(opsUrl);
  const after = histogramBuckets(text, "http_request_duration_seconds", REDIRECT_SERIES);
  const delta = (le: number) => (after.get(le) ?? 0) - (before.get(le) ?? 0);
  const requests = delta(Number.POSITIVE_INFINITY);
  const bound = [...after.keys()].sort((a, b) => a - b).find((le) => delta(le) >= 0.99 * requests) ?? Number.POSITIVE_INFINITY;
  return { requests, p99BoundMs: bound * 1000, loopLagMs: sampleValue(text, "shortener_event_loop_lag_seconds") * 1000 };
}

/** The value of the unlabelled sample `name` in a scrape. */
export function sampleValue(text: string, name: string): number {
  const line = text.split("\n").find((l) => l.startsWith(`${name} `));
  if (line === undefined) throw new Error(`no ${name} in the scrape`);
  return Number(line.split(" ")[1]);
}
