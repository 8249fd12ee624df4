/**
 * The server's own view of a run, from its ops listener's /metrics: the redirect route's latency histogram (handler
 * time: from the request reaching JavaScript to its response) and the event loop's lag.
 */
const REDIRECT_SERIES = 'route="/{shortCode}",method="GET",status_class="3xx"';

/** Cumulative counts of the redirect route's latency buckets, by upper bound in seconds (+Inf as Infinity). */
export type Buckets = Map<number, number>;

async function scrape(opsUrl: string): Promise<string> {
  const response = await fetch(`${opsUrl}/metrics`);
  if (response.status !== 200) throw new Error(`${opsUrl}/metrics answered ${response.status}`);
  return response.text();
}

export async function redirectBuckets(opsUrl: string): Promise<Buckets> {
  const buckets: Buckets = new Map();
  const prefix = `http_request_duration_seconds_bucket{${REDIRECT_SERIES},le="`;
  for (const line of (await scrape(opsUrl)).split("\n")) {
    if (!line.startsWith(prefix)) continue;
    const [le = "", count = ""] = line.slice(prefix.length).split('"} ');
    buckets.set(le === "+Inf" ? Number.POSITIVE_INFINITY : Number(le), Number(count));
  }
  if (buckets.size === 0) throw new Error(`no ${REDIRECT_SERIES} series in ${opsUrl}/metrics`);
  return buckets;
}

/**
 * The bucket bound (ms) under which `quantile` of the requests between two scrapes fell: the histogram says the p99
 * is at most this, and above the bound before it. Infinity when it fell past the last bound.
 */
export function quantileBoundMs(before: Buckets, after: Buckets, quantile: number): { boundMs: number; requests: number } {
  const bounds = [...after.keys()].sort((a, b) => a - b);
  const delta = (le: number) => (after.get(le) ?? 0) - (before.get(le) ?? 0);
  const requests = delta(Number.POSITIVE_INFINITY);
  const bound = bounds.find((le) => delta(le) >= quantile * requests) ?? Number.POSITIVE_INFINITY;
  return { boundMs: bound * 1000, requests };
}

/** The event loop's largest lag per second over the last 10 s (shortener_event_loop_lag_seconds), in ms. */
export async function eventLoopLagMs(opsUrl: string): Promise<number> {
  const line = (await scrape(opsUrl)).split("\n").find((l) => l.startsWith("shortener_event_loop_lag_seconds "));
  if (line === undefined) throw new Error(`no shortener_event_loop_lag_seconds in ${opsUrl}/metrics`);
  return Number(line.split(" ")[1]) * 1000;
}
