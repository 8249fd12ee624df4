/**
 * The one place errors become HTTP responses: RFC 9457 problem+json, echoing the request id. Unknown errors
 * are logged with the request id, never shown.
 */
import { SQLiteError } from "bun:sqlite";
import { AppError, IO_ERROR_HINT, unavailable } from "../errors";
import { describeError, log } from "../telemetry/logger";
import { jsonResponse } from "./json-response";
import { requestIdOf } from "./request-context";

export const PROBLEM_CONTENT_TYPE = "application/problem+json";

export function problemResponse(error: AppError, request?: Request): Response {
  const requestId = request === undefined ? undefined : requestIdOf(request);
  const body = { type: error.type, title: error.title, status: error.status, detail: error.detail, ...error.extras, requestId };
  return jsonResponse(body, { status: error.status, contentType: PROBLEM_CONTENT_TYPE, headers: error.headers });
}

/** How long a client is told to wait when another process held the database's write lock too long. */
const DATABASE_BUSY_RETRY_SECONDS = 5;
/** How long a client is told to wait when the database's disk is full: freeing space takes an operator. */
const DATABASE_FULL_RETRY_SECONDS = 60;
/** How long a client is told to wait when the disk failed a read or write: a passing fault clears, a failing disk does not. */
const DATABASE_IO_ERROR_RETRY_SECONDS = 30;

/**
 * Maps any thrown value to a response: AppErrors as they are; the database's write lock still held by another
 * process when the write gave up waiting (a schema migration by the other colour, say) as a 503 to retry, logged as
 * a warning; a write that found the disk full, or a read or write the disk failed (an I/O error: a failing disk, a
 * file system remounted read-only), as a 503 too, logged as an error for the operator (SQLite rolled the write back
 * and its connection goes on once the disk does); a damaged database file as an opaque 500 logged as
 * `database_corrupt` with what to do; anything else as a logged, opaque 500.
 */
export function errorResponse(error: unknown, request?: Request, context: Record<string, unknown> = {}): Response {
  if (error instanceof AppError) return problemResponse(error, request);
  const requestId = request === undefined ? undefined : requestIdOf(request);
  if (error instanceof SQLiteError && error.code === "SQLITE_BUSY") {
    log.request("warn", "database_busy", { ...context, request_id: requestId, ...describeError(error) });
    return problemResponse(
      unavailable(
        "Another process holds the database's write lock (a schema migration, or a restore), so nothing was changed. Retry shortly.",
        DATABASE_BUSY_RETRY_SECONDS,
      ),
      request,
    );
  }
  if (error instanceof SQLiteError && error.code === "SQLITE_FULL") {
    log.request("error", "database_full", { ...context, request_id: requestId, error: error.message });
    return problemResponse(
      unavailable("The database's disk is full, so nothing was changed. Retry once space has been freed.", DATABASE_FULL_RETRY_SECONDS),
      request,
    );
  }
  if (error instanceof SQLiteError && error.code?.startsWith("SQLITE_IOERR")) {
    log.request("error", "database_io_error", {
      ...context,
      request_id: requestId,
      code: error.code,
      error: error.message,
      hint: `${IO_ERROR_HINT}; runbooks/high-5xx-rate.md`,
    });
    return problemResponse(
      unavailable(
        "The database's disk reported an I/O error, so any change asked for was rolled back. Retry shortly; if it keeps failing, the disk needs an operator.",
        DATABASE_IO_ERROR_RETRY_SECONDS,
      ),
      request,
    );
  }
  if (error instanceof SQLiteError && /^SQLITE_(CORRUPT|NOTADB)/.test(error.code ?? "")) {
    // Still a 500: retrying will not help, and the body says nothing of the server's insides. The log says what.
    log.request("error", "database_corrupt", {
      ...context,
      request_id: requestId,
      code: error.code,
      error: error.message,
      hint: "the database file is damaged: run `shortener check` (database.quick_check), keep a copy of the data directory, and restore from the replica (runbooks/restore-point-in-time.md)",
    });
    return problemResponse(internalError(), request);
  }
  log.request("error", "unhandled_error", { ...context, request_id: requestId, ...describeError(error) });
  return problemResponse(internalError(), request);
}

/** What a client sees of a failure inside the server: nothing of its insides. */
function internalError(): AppError {
  return new AppError(500, "internal-server-error", "Internal server error", "An unexpected error occurred.");
}
