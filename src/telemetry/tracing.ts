/**
 * Traces, opt-in: with no OTLP endpoint configured, startTracing returns a disabled object and the request path
 * checks one boolean. When on, the OpenTelemetry SDK batches spans to an OTLP/HTTP exporter (JSON bodies),
 * incoming W3C `traceparent`/`tracestate` headers are honoured, and the active span travels with the request
 * through AsyncLocalStorage, so storage spans become children of the request's span.
 *
 * The sampler is asked once per request, before any span exists: a request the sampler drops costs a trace id
 * and one sampler call, nothing more (no span object, no context switch). Every other module uses only
 * @opentelemetry/api.
 */
import { hostname } from "node:os";
import {
  type Context,
  context,
  type DiagLogger,
  DiagLogLevel,
  diag,
  propagation,
  ROOT_CONTEXT,
  type Span,
  SpanKind,
  type TextMapGetter,
  type Tracer,
  trace,
} from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import { W3CTraceContextPropagator } from "@opentelemetry/core";
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-http";
import {
  defaultResource,
  detectResources,
  resourceAttributesEnvDetector,
  resourceFromAttributes,
  serviceNameEnvDetector,
} from "@opentelemetry/resources";
import {
  AlwaysOffSampler,
  AlwaysOnSampler,
  BatchSpanProcessor,
  type IdGenerator,
  ParentBasedSampler,
  RandomIdGenerator,
  type Sampler,
  SamplingDecision,
  TraceIdRatioBasedSampler,
  TracerProvider,
} from "@opentelemetry/sdk-trace";
import type { Config, TracingConfig } from "../config";
import { VERSION } from "../version";
import { describeError, log } from "./logger";

export interface Tracing {
  /** False when no endpoint is configured: callers check this and skip every tracing step. */
  readonly enabled: boolean;
  /** The tracer for child spans (storage, visit flushes); null when tracing is off. */
  readonly tracer: Tracer | null;
  /**
   * Starts the SERVER span of an incoming request, parented to its W3C trace context, or returns null (having
   * made nothing but a trace id) when the sampler drops the request.
   */
  startServerSpan(name: string, headers: Headers): Span | null;
  /** Runs `fn` with `span` active, so spans started inside it, synchronously or after an await, are its children. */
  withSpan<T>(span: Span, fn: () => T): T;
  /** Exports what is buffered and stops; gives up after TRACE_EXPORT_TIMEOUT_MS so a dead collector cannot hold a drain. */
  shutdown(): Promise<void>;
}

/** How long a drain waits for buffered spans to be exported before it gives up on them. */
export const TRACE_EXPORT_TIMEOUT_MS = 5000;

const DISABLED: Tracing = Object.freeze({
  enabled: false,
  tracer: null,
  startServerSpan: () => null,
  withSpan: <T>(_span: Span, fn: () => T) => fn(),
  shutdown: async () => {},
});

const HEADERS: TextMapGetter<Headers> = {
  get: (headers, key) => headers.get(key) ?? undefined,
  keys: (headers) => {
    const keys: string[] = [];
    headers.forEach((_value, key) => {
      keys.push(key);
    });
    return keys;
  },
};

/**
 * Hands the SDK the trace id the request was sampled with, so its own (deterministic) sampling of the root span
 * agrees with ours; random ids otherwise.
 */
class PresetTraceIds implements IdGenerator {
  next: string | undefined;
  readonly #random = new RandomIdGenerator();

  generateTraceId(): string {
    const preset = this.next;
    if (preset === undefined) return this.#random.generateTraceId();
    this.next = undefined;
    return preset;
  }

  generateSpanId(): string {
    return this.#random.generateSpanId();
  }
}

function buildSampler(settings: TracingConfig): Sampler {
  const ratio = new TraceIdRatioBasedSampler(settings.samplerRatio);
  switch (settings.sampler) {
    case "always_on":
      return new AlwaysOnSampler();
    case "always_off":
      return new AlwaysOffSampler();
    case "traceidratio":
      return ratio;
    case "parentbased_always_on":
      return new ParentBasedSampler({ root: new AlwaysOnSampler() });
    case "parentbased_always_off":
      return new ParentBasedSampler({ root: new AlwaysOffSampler() });
    case "parentbased_traceidratio":
      return new ParentBasedSampler({ root: ratio });
  }
}

/** The SDK's warnings (a failed export, a full queue) as log lines; a failed export arrives as an error's JSON. */
function logDiagnostic(message: string, ...args: unknown[]): void {
  let fields: Record<string, unknown> = { message: [message, ...args.map(String)].join(" ") };
  if (message.startsWith("{")) {
    try {
      const error = JSON.parse(message) as { message?: unknown; code?: unknown };
      if (typeof error.message === "string") fields = { message: error.message, code: error.code };
    } catch {}
  }
  log.warn("tracing_problem", fields);
}

const diagLogger: DiagLogger = {
  error: logDiagnostic,
  warn: logDiagnostic,
  info: () => {},
  debug: () => {},
  verbose: () => {},
};

/** One line for the startup log: where spans go and how they are sampled (no credentials), or "off". */
export function tracingSummary(config: Readonly<Config>): string {
  if (config.otlpEndpoint === null) return "off";
  const url = new URL(config.otlpEndpoint);
  const { sampler, samplerRatio } = config.tracing;
  return `${url.origin}${url.pathname} ${sampler}${sampler.endsWith("traceidratio") ? ` ${samplerRatio}` : ""}`;
}

/** Starts the SDK when config.otlpEndpoint is set (registering the global tracer, context and propagator). */
export function startTracing(config: Readonly<Config>): Tracing {
  if (config.otlpEndpoint === null) return DISABLED;
  const settings = config.tracing;
  const sampler = buildSampler(settings);
  const ids = new PresetTraceIds();
  const presample = new RandomIdGenerator();
  const propagator = new W3CTraceContextPropagator();
  const resource = defaultResource()
    .merge(resourceFromAttributes({ "service.name": "shortener", "service.version": VERSION, "host.name": hostname() }))
    .merge(detectResources({ detectors: [resourceAttributesEnvDetector, serviceNameEnvDetector] }));
  const provider = new TracerProvider({
    resource,
    sampler,
    idGenerator: ids,
    spanProcessors: [
      new BatchSpanProcessor({
        exporter: new OTLPTraceExporter({ url: config.otlpEndpoint }),
        scheduledDelayMillis: settings.batchDelayMs,
        exportTimeoutMillis: settings.exportTimeoutMs,
        maxQueueSize: settings.maxQueueSize,
        maxExportBatchSize: settings.maxExportBatchSize,
      }),
    ],
  });
  diag.setLogger(diagLogger, DiagLogLevel.WARN);
  const registered =
    context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable()) &&
    propagation.setGlobalPropagator(propagator) &&
    trace.setGlobalTracerProvider(provider);
  if (!registered) throw new Error("tracing is already started in this process");
  const tracer = trace.getTracer("shortener", VERSION);
  const unregister = () => {
    trace.disable();
    propagation.disable();
    context.disable();
    diag.disable();
  };

  let stopped: Promise<void> | undefined;
  return {
    enabled: true,
    tracer,
    startServerSpan(name, headers) {
      const parent: Context = headers.has("traceparent") ? propagator.extract(ROOT_CONTEXT, headers, HEADERS) : ROOT_CONTEXT;
      const remote = trace.getSpanContext(parent);
      const traceId = remote === undefined ? presample.generateTraceId() : remote.traceId;
      const decision = sampler.shouldSample(parent, traceId, name, SpanKind.SERVER, {}, []).decision;
      if (decision === SamplingDecision.NOT_RECORD) return null;
      if (remote === undefined) ids.next = traceId;
      return tracer.startSpan(name, { kind: SpanKind.SERVER }, parent);
    },
    withSpan(span, fn) {
      return context.with(trace.setSpan(context.active(), span), fn);
    },
    shutdown() {
      stopped ??= (async () => {
        let timer: Timer | undefined;
        const deadline = new Promise<"timeout">((resolve) => {
          timer = setTimeout(() => resolve("timeout"), TRACE_EXPORT_TIMEOUT_MS);
        });
        const flushed = provider.shutdown().then(
          () => "done" as const,
          (error: unknown) => {
            log.warn("trace_export_failed", describeError(error));
            return "failed" as const;
          },
        );
        const outcome = await Promise.race([flushed, deadline]);
        clearTimeout(timer);
        if (outcome === "timeout") log.warn("trace_export_timeout", { timeout_ms: TRACE_EXPORT_TIMEOUT_MS });
        unregister();
      })();
      return stopped;
    },
  };
}
