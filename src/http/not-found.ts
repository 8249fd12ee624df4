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

function wantsJson(request: Request): boolean {
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
