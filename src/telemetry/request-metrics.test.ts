import { describe, expect, test } from "bun:test";
import { RequestMetrics } from "./request-metrics";

describe("RequestMetrics", () => {
  test("renders cumulative buckets, sum, count and counters in the Prometheus text format", () => {
    const metrics = new RequestMetrics();
    const ok = metrics.series("/{shortCode}", "GET", 302);
    ok.observe(0.0004);
    ok.observe(0.003);
    ok.observe(7);
    metrics.series("/{shortCode}", "GET", 500).observe(0.01);
    metrics.series("/readyz", "GET", 503).observe(0.0001);
    metrics.series("/other", "BREW", 418).observe(0.001);
    const text = metrics.render();
    const labels = 'route="/{shortCode}",method="GET",status_class="3xx"';
    expect(text).toContain(`http_request_duration_seconds_bucket{${labels},le="0.0005"} 1\n`);
    expect(text).toContain(`http_request_duration_seconds_bucket{${labels},le="0.005"} 2\n`);
    expect(text).toContain(`http_request_duration_seconds_bucket{${labels},le="5"} 2\n`);
    expect(text).toContain(`http_request_duration_seconds_bucket{${labels},le="+Inf"} 3\n`);
    expect(text).toContain(`http_request_duration_seconds_count{${labels}} 3\n`);
    expect(text).toContain(`http_requests_total{${labels}} 3\n`);
    expect(text).toContain('http_request_errors_total{route="/{shortCode}",method="GET",status_class="5xx"} 1\n');
    expect(text).not.toContain('http_request_errors_total{route="/readyz"');
    expect(text).toContain('http_requests_total{route="/other",method="other",status_class="4xx"} 1\n');
    expect(text.match(/^# TYPE /gm)).toHaveLength(3);
  });

  test("returns the same series for the same labels", () => {
    const metrics = new RequestMetrics();
    expect(metrics.series("/a", "GET", 200)).toBe(metrics.series("/a", "GET", 204));
    expect(metrics.series("/a", "GET", 200)).not.toBe(metrics.series("/a", "POST", 200));
  });
});
