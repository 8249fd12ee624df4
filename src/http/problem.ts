/** The one place errors become HTTP responses: RFC 9457 problem+json. Unknown errors are logged, never shown. */
import { AppError } from "../errors";
import { describeError, log } from "../telemetry/logger";

export const PROBLEM_CONTENT_TYPE = "application/problem+json";

export function problemResponse(error: AppError): Response {
  const body = { type: error.type, title: error.title, status: error.status, detail: error.detail, ...error.extras };
  return new Response(JSON.stringify(body), {
    status: error.status,
    headers: { "Content-Type": PROBLEM_CONTENT_TYPE, ...error.headers },
  });
}

/** Maps any thrown value to a response: AppErrors as they are, anything else as a logged, opaque 500. */
export function errorResponse(error: unknown, context: Record<string, unknown> = {}): Response {
  if (error instanceof AppError) return problemResponse(error);
  log.error("unhandled_error", { ...context, ...describeError(error) });
  return problemResponse(new AppError(500, "internal-server-error", "Internal server error", "An unexpected error occurred."));
}
