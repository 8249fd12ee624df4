import type { ApiKey } from "../../domain/api-keys";
import type { HttpDeps } from "../deps";

/** The API key a request carries in `X-Api-Key`; throws 401 problems when missing or invalid. */
export function requireApiKey(ctx: HttpDeps, request: Request): ApiKey {
  return ctx.apiKeys.verify(request.headers.get("x-api-key"));
}

export function searchParams(request: Request): URLSearchParams {
  const q = request.url.indexOf("?");
  return new URLSearchParams(q === -1 ? "" : request.url.slice(q + 1));
}
