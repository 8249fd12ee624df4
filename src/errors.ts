/**
 * The error family: every failure a client can cause is an AppError with an HTTP status and a stable
 * problem type. They are mapped to RFC 9457 problem+json in exactly one place (src/http/problem.ts).
 * Messages are safe to show; causes stay in logs.
 */

/** What an SQLITE_IOERR that is not a full disk means, and where to look: for logs, exit lines and check hints. */
export const IO_ERROR_HINT =
  "the data directory's disk failed a read or write (an I/O error, or a file system remounted read-only): look in the kernel log (sudo journalctl -k)";

/** Problem types are Shlink's URIs, so Shlink's clients recognise them. */
export const PROBLEM_TYPE_BASE = "https://shlink.io/api/error/";

export class AppError extends Error {
  constructor(
    readonly status: number,
    /** Stable code; the problem `type` is PROBLEM_TYPE_BASE + code. */
    readonly code: string,
    readonly title: string,
    readonly detail: string,
    readonly extras: Record<string, unknown> = {},
    readonly headers: Record<string, string> = {},
  ) {
    super(detail);
    this.name = "AppError";
  }

  get type(): string {
    return PROBLEM_TYPE_BASE + this.code;
  }
}

/** One field that failed validation, with a reason safe to show. */
export interface InvalidElement {
  field: string;
  reason: string;
}

export function invalidData(elements: InvalidElement[]): AppError {
  const fields = [...new Set(elements.map((e) => e.field))];
  const reasons = Object.fromEntries(elements.map((e) => [e.field, e.reason]));
  const detail = `Provided data is not valid: ${elements.map((e) => `${e.field}: ${e.reason}`).join("; ")}`;
  return new AppError(400, "invalid-data", "Invalid data", detail, { invalidElements: fields, reasons });
}

export function invalidField(field: string, reason: string): AppError {
  return invalidData([{ field, reason }]);
}

export function malformedBody(reason: string): AppError {
  return new AppError(400, "malformed-request-body", "Malformed request body", reason);
}

export function payloadTooLarge(limit: number): AppError {
  return new AppError(413, "payload-too-large", "Payload too large", `Request body exceeds ${limit} bytes.`);
}

export function nonUniqueSlug(slug: string, domain: string | null): AppError {
  const suffix = domain === null ? "" : ` for domain "${domain}"`;
  const extras: Record<string, unknown> = { customSlug: slug };
  if (domain !== null) extras.domain = domain;
  return new AppError(400, "non-unique-slug", "Invalid custom slug", `Provided slug "${slug}" is already in use${suffix}.`, extras);
}

export function shortUrlNotFound(shortCode: string, domain: string | null): AppError {
  const suffix = domain === null ? "" : ` for domain "${domain}"`;
  const extras: Record<string, unknown> = { shortCode };
  if (domain !== null) extras.domain = domain;
  return new AppError(404, "short-url-not-found", "Short URL not found", `No URL found with short code "${shortCode}"${suffix}`, extras);
}

export function tagNotFound(tag: string): AppError {
  return new AppError(404, "tag-not-found", "Tag not found", `Tag with name "${tag}" could not be found`, { tag });
}

export function domainNotFound(authority: string): AppError {
  return new AppError(404, "domain-not-found", "Domain not found", `Domain with authority "${authority}" could not be found`, {
    authority,
  });
}

export function tagConflict(oldName: string, newName: string): AppError {
  return new AppError(409, "tag-conflict", "Tag conflict", `You cannot rename tag ${oldName} to ${newName}, because it already exists`, {
    oldName,
    newName,
  });
}

export function notFound(detail = "Requested route does not exist."): AppError {
  return new AppError(404, "not-found", "Not found", detail);
}

export function methodNotAllowed(method: string): AppError {
  return new AppError(405, "method-not-allowed", "Method not allowed", `Method ${method} is not allowed here.`);
}

export function missingAuthentication(): AppError {
  return new AppError(
    401,
    "missing-authentication",
    "Invalid authorization",
    'Expected one of the following authentication headers, ["X-Api-Key"], but none were provided',
    { expectedHeaders: ["X-Api-Key"] },
  );
}

/** The same for Shlink's single-step create, whose key comes in the `apiKey` query parameter. */
export function missingQueryAuthentication(): AppError {
  return new AppError(
    401,
    "missing-authentication",
    "Invalid authorization",
    'Expected authentication to be provided in "apiKey" query param',
    { param: "apiKey" },
  );
}

export function invalidApiKey(): AppError {
  return new AppError(401, "invalid-api-key", "Invalid API key", "Provided API key does not exist or is invalid.");
}

export function forbidden(detail: string): AppError {
  return new AppError(403, "forbidden-operation", "Forbidden operation", detail);
}

/** Shlink's problem for a key that may not rename or delete tags; its clients recognise the type. */
export function forbiddenTagOperation(detail: string): AppError {
  return new AppError(403, "forbidden-tag-operation", "Forbidden tag operation", detail);
}

/** An API client (one asking for JSON) followed a password-protected link without giving the password. */
export function linkPasswordRequired(shortCode: string): AppError {
  return new AppError(
    401,
    "link-password-required",
    "Password required",
    `The short URL "${shortCode}" is password-protected: POST its password to this address (a form field or a JSON "password").`,
    { shortCode },
  );
}

export function wrongLinkPassword(shortCode: string): AppError {
  return new AppError(401, "wrong-link-password", "Wrong password", `That is not the password of the short URL "${shortCode}".`, {
    shortCode,
  });
}

/** Too many wrong passwords for a link, from this visitor or from everyone: refused unchecked until Retry-After. */
export function tooManyPasswordAttempts(retryAfterSeconds: number): AppError {
  return new AppError(
    429,
    "too-many-password-attempts",
    "Too many password attempts",
    `Too many wrong passwords were given for this short URL; try again in ${retryAfterSeconds} s.`,
    { retryAfter: retryAfterSeconds },
    { "Retry-After": String(retryAfterSeconds) },
  );
}

/**
 * Too many password checks waiting at once (a guessing flood, say): a 429 rather than a 503, since it is the visitors'
 * pace that is refused and nothing on the node failed (a 5xx would page its operator).
 */
export function passwordChecksBusy(retryAfterSeconds: number): AppError {
  return new AppError(
    429,
    "too-many-password-checks",
    "Too many password checks",
    "Too many passwords are being checked right now; try again in a moment.",
    { retryAfter: retryAfterSeconds },
    { "Retry-After": String(retryAfterSeconds) },
  );
}

export function unavailable(detail: string, retryAfterSeconds: number): AppError {
  return new AppError(503, "service-unavailable", "Service unavailable", detail, {}, { "Retry-After": String(retryAfterSeconds) });
}

/** Link writes are refused while the replica trails the database by more than the allowed lag (RPO guard). */
export function replicationLagging(lagSeconds: number, maxLagSeconds: number, retryAfterSeconds: number): AppError {
  return new AppError(
    503,
    "replication-lagging",
    "Replication lagging",
    `The backup replica is ${lagSeconds} s behind (at most ${maxLagSeconds} s allowed), so link writes are refused until it catches up: ` +
      "a change accepted now could be lost with this node. Redirects still work. Nothing was changed; retry later.",
    { lagSeconds, maxLagSeconds },
    { "Retry-After": String(retryAfterSeconds) },
  );
}

/**
 * Replicated durability: the write is committed on this node, but Litestream did not confirm that the replica has
 * it. Never a success: the client must not take it as durable, and may retry (the detail says how).
 */
export function notReplicated(detail: string, extras: Record<string, unknown>, retryAfterSeconds: number): AppError {
  return new AppError(503, "not-replicated", "Saved on this node, not yet replicated", detail, extras, {
    "Retry-After": String(retryAfterSeconds),
  });
}

/** A bad setting: the CLI prints the message alone and exits 1 so systemd does not restart. */
export class SettingError extends Error {
  constructor(
    readonly setting: string,
    message: string,
  ) {
    super(`invalid setting ${setting}: ${message}`);
    this.name = "SettingError";
  }
}

/** A misuse of the command line: printed with the command's usage hint, exit 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}
