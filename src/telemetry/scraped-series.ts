/** Prometheus series whose values live elsewhere, read when /metrics is scraped. */
import { Counter, Gauge, type Registry } from "prom-client";

/** A counter whose value lives elsewhere as a running total, copied in at scrape time. */
export function scrapedCounter(registers: Registry[], name: string, help: string, read: () => number): Counter {
  return new Counter({
    name,
    help,
    registers,
    collect() {
      this.reset();
      this.inc(read());
    },
  });
}

/** A gauge read at scrape time that is absent, not 0, while `read` gives null: the node has no such value. */
export function optionalGauge(registers: Registry[], name: string, help: string, read: () => number | null): Gauge {
  return new Gauge({
    name,
    help,
    registers,
    collect() {
      const value = read();
      if (value === null) this.remove();
      else this.set(value);
    },
  });
}
