/**
 * The tracing settings: the standard OTEL_* variables, read once by loadConfig (src/config.ts) and validated with
 * errors that name the variable.
 */
import { SettingError } from "../errors";

/** The OTEL_TRACES_SAMPLER values this binary implements (the spec's built-in samplers). */
export const TRACE_SAMPLERS = [
  "always_on",
  "always_off",
  "traceidratio",
  "parentbased_always_on",
  "parentbased_always_off",
  "parentbased_traceidratio",
] as const;
export type TraceSampler = (typeof TRACE_SAMPLERS)[number];

export interface TracingConfig {
  sampler: TraceSampler;
  /** OTEL_TRACES_SAMPLER_ARG: the share of root traces kept by the traceidratio samplers, 0 to 1. */
  samplerRatio: number;
  /** OTEL_BSP_*: the batch span processor's export delay, export timeout, queue and batch sizes. */
  batchDelayMs: number;
  exportTimeoutMs: number;
  maxQueueSize: number;
  maxExportBatchSize: number;
}

/**
 * Tracing from the standard OTEL_* variables: on when OTEL_EXPORTER_OTLP_TRACES_ENDPOINT (used as given) or
 * OTEL_EXPORTER_OTLP_ENDPOINT (plus /v1/traces) is set, unless OTEL_SDK_DISABLED=true. The rest is validated
 * only when tracing is on, so variables meant for other processes never stop this one.
 */
export function loadTracing(env: Record<string, string | undefined>): { otlpEndpoint: string | null; tracing: TracingConfig } {
  const defaults: TracingConfig = {
    sampler: "parentbased_always_on",
    samplerRatio: 1,
    batchDelayMs: 5000,
    exportTimeoutMs: 30_000,
    maxQueueSize: 2048,
    maxExportBatchSize: 512,
  };
  const value = (name: string) => {
    const raw = env[name]?.trim();
    return raw === undefined || raw === "" ? undefined : raw;
  };
  const tracesUrl = value("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT");
  const baseUrl = value("OTEL_EXPORTER_OTLP_ENDPOINT");
  if (value("OTEL_SDK_DISABLED")?.toLowerCase() === "true" || (tracesUrl === undefined && baseUrl === undefined)) {
    return { otlpEndpoint: null, tracing: defaults };
  }
  const endpointName = tracesUrl !== undefined ? "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT" : "OTEL_EXPORTER_OTLP_ENDPOINT";
  const raw = (tracesUrl ?? baseUrl) as string;
  let url: URL;
  try {
    url = new URL(tracesUrl ?? `${raw.replace(/\/+$/, "")}/v1/traces`);
  } catch {
    throw new SettingError(endpointName, `"${raw}" is not an absolute URL (e.g. http://127.0.0.1:4318)`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") throw new SettingError(endpointName, `"${raw}" must be http or https`);
  for (const name of ["OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"]) {
    const protocol = value(name);
    if (protocol !== undefined && protocol !== "http/json") {
      throw new SettingError(name, `"${protocol}" is not supported: spans are sent as OTLP/HTTP with JSON bodies; set http/json`);
    }
  }
  const sampler = (value("OTEL_TRACES_SAMPLER") ?? defaults.sampler).toLowerCase();
  if (!(TRACE_SAMPLERS as readonly string[]).includes(sampler)) {
    throw new SettingError("OTEL_TRACES_SAMPLER", `"${sampler}" is not one of ${TRACE_SAMPLERS.join(", ")}`);
  }
  const ratio = value("OTEL_TRACES_SAMPLER_ARG");
  const samplerRatio = ratio === undefined || !sampler.endsWith("traceidratio") ? 1 : Number(ratio);
  if (!(samplerRatio >= 0 && samplerRatio <= 1)) {
    throw new SettingError("OTEL_TRACES_SAMPLER_ARG", `"${ratio}" is not a ratio from 0 to 1 (e.g. 0.01)`);
  }
  const count = (name: string, fallback: number, min: number) => {
    const raw = value(name);
    if (raw === undefined) return fallback;
    if (!/^\d+$/.test(raw) || Number(raw) < min || Number(raw) > 10_000_000) {
      throw new SettingError(name, `"${raw}" is not a whole number from ${min} to 10000000`);
    }
    return Number(raw);
  };
  const tracing: TracingConfig = {
    sampler: sampler as TraceSampler,
    samplerRatio,
    batchDelayMs: count("OTEL_BSP_SCHEDULE_DELAY", defaults.batchDelayMs, 1),
    exportTimeoutMs: count("OTEL_BSP_EXPORT_TIMEOUT", defaults.exportTimeoutMs, 1),
    maxQueueSize: count("OTEL_BSP_MAX_QUEUE_SIZE", defaults.maxQueueSize, 1),
    maxExportBatchSize: count("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", defaults.maxExportBatchSize, 1),
  };
  if (tracing.maxExportBatchSize > tracing.maxQueueSize) {
    throw new SettingError("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", `${tracing.maxExportBatchSize} is larger than OTEL_BSP_MAX_QUEUE_SIZE`);
  }
  return { otlpEndpoint: url.href, tracing };
}
