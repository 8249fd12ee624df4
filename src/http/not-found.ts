/** 404 for unknown, expired or exhausted codes: a small HTML page for browsers, problem+json for API clients. */
import { notFound, shortUrlNotFound } from "../errors";
import { problemResponse } from "./problem";

const PAGE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex"><title>Not found</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:32rem;margin:15vh auto;padding:0 1rem;color:#222}h1{font-size:1.5rem}</style>
</head><body><h1>This link does not exist</h1><p>The short link you followed is unknown, has expired, or has reached its visit limit.</p></body></html>
`;

const PAGE_BYTES = String(Buffer.byteLength(PAGE));

/** An API client's request (it asks for JSON, not HTML). */
export function wantsJson(request: Request): boolean {
  const accept = request.headers.get("accept") ?? "";
  return accept.includes("json") && !accept.includes("text/html");
}

export function notFoundResponse(request: Request, shortCode?: string): Response {
  if (wantsJson(request)) return problemResponse(shortCode === undefined ? notFound() : shortUrlNotFound(shortCode, null), request);
  return new Response(request.method === "HEAD" ? null : PAGE, {
    status: 404,
    headers: {
      "Content-Type": "text/html; charset=utf-8",
      "Cache-Control": "no-store",
      "Content-Length": request.method === "HEAD" ? "0" : PAGE_BYTES,
    },
  });
}

/**
 * Where a visitor who found nothing is sent instead of this page, when a redirect is set for it (domain/not-found-redirects.ts).
 * Never cached: a link may be made at that address any time.
 */
export function notFoundRedirect(location: string, status: number): Response {
  return new Response(null, { status, headers: { Location: location, "Cache-Control": "no-store" } });
}

/** The request's host (for a domain's redirects) and path (for `{ORIGINAL_PATH}`). */
export function hostAndPath(request: Request): { host: string; path: string } {
  const url = request.url;
  const pathStart = url.indexOf("/", url.indexOf("//") + 2);
  const query = url.indexOf("?", pathStart);
  const path = pathStart === -1 ? "/" : url.slice(pathStart, query === -1 ? undefined : query);
  return { host: (request.headers.get("host") ?? "").toLowerCase(), path };
}
