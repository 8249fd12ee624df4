/**
 * Spans for SQLite calls, named `sqlite <table>.<operation>` with the database semantic-convention attributes.
 * Callers hold a Tracer only when tracing is on and check for null first, so with tracing off none of this runs.
 */
import { type Attributes, type Span, SpanKind, SpanStatusCode, type Tracer, trace } from "@opentelemetry/api";

export type DbOperation = "select" | "insert" | "update" | "delete";

function attributes(table: string, operation: string): Attributes {
  return { "db.system.name": "sqlite", "db.collection.name": table, "db.operation.name": operation.toUpperCase() };
}

/** Marks a span failed with the error's name and message (never its stack). */
export function recordSpanError(span: Span, error: unknown): void {
  span.setAttribute("error.type", error instanceof Error ? error.name : "Error");
  span.setStatus({ code: SpanStatusCode.ERROR, message: error instanceof Error ? error.message : String(error) });
}

/**
 * Runs `fn` (one database call) in a child span of the active span, when that span is sampled. Without a
 * sampled request around it, it just runs `fn`: a storage call never starts a trace of its own.
 */
export function inDbSpan<T>(tracer: Tracer, table: string, operation: DbOperation, fn: () => T): T {
  if (trace.getActiveSpan()?.isRecording() !== true) return fn();
  const span = tracer.startSpan(`sqlite ${table}.${operation}`, { kind: SpanKind.CLIENT, attributes: attributes(table, operation) });
  try {
    return fn();
  } catch (error) {
    recordSpanError(span, error);
    throw error;
  } finally {
    span.end();
  }
}

/**
 * Starts a root span for background database work (a visit flush), sampled like a request without a parent;
 * the caller ends it.
 */
export function startBackgroundDbSpan(tracer: Tracer, name: string, table: string, operation: DbOperation, extra: Attributes): Span {
  return tracer.startSpan(`sqlite ${name}`, {
    kind: SpanKind.CLIENT,
    root: true,
    attributes: { ...attributes(table, operation), ...extra },
  });
}

/**
 * Runs `fn` (background database work) in a root span (startBackgroundDbSpan); a promise's span ends when it settles.
 * Without a tracer it just runs `fn`.
 */
export function inBackgroundDbSpan<T>(
  tracer: Tracer | null,
  name: string,
  table: string,
  operation: DbOperation,
  extra: () => Attributes,
  fn: () => T,
): T {
  if (tracer === null) return fn();
  const span = startBackgroundDbSpan(tracer, name, table, operation, extra());
  const failed = (error: unknown): never => {
    recordSpanError(span, error);
    span.end();
    throw error;
  };
  let result: T;
  try {
    result = fn();
  } catch (error) {
    return failed(error);
  }
  if (!(result instanceof Promise)) {
    span.end();
    return result;
  }
  return result.then((value) => {
    span.end();
    return value;
  }, failed) as T;
}
