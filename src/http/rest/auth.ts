import type { ApiKey } from "../../domain/api-keys";
import { missingQueryAuthentication } from "../../errors";
import type { HttpDeps } from "../deps";

/** The API key a request carries in `X-Api-Key`; throws 401 problems when missing or invalid. */
export function requireApiKey(ctx: HttpDeps, request: Request): ApiKey {
  return ctx.apiKeys.verify(request.headers.get("x-api-key"));
}

/**
 * The API key of a single-step create (GET /short-urls/shorten), which Shlink takes from the `apiKey` query parameter
 * so a bookmarklet or a screenshot tool can call it with a plain URL; `X-Api-Key` works there too.
 */
export function requireQueryApiKey(ctx: HttpDeps, request: Request): ApiKey {
  const key = searchParams(request).get("apiKey") || request.headers.get("x-api-key");
  if (key === null || key === "") throw missingQueryAuthentication();
  return ctx.apiKeys.verify(key);
}

export function searchParams(request: Request): URLSearchParams {
  const q = request.url.indexOf("?");
  return new URLSearchParams(q === -1 ? "" : request.url.slice(q + 1));
}
