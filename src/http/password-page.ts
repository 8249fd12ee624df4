/**
 * What a visitor of a password-protected link sees: a small form that posts the password back to the link's own
 * address (query included, so forwardQuery still forwards it), and its answers for a wrong password, too many of
 * them, or a busy server. API clients (asking for JSON) get problem+json instead.
 */

import { cropText, VISIT_FIELD_LIMITS } from "../domain/visit";
import { type AppError, linkPasswordRequired } from "../errors";
import { readJsonBody, readTextBody } from "./json-body";
import { wantsJson } from "./not-found";
import { problemResponse } from "./problem";
import { rememberRequestId } from "./request-context";

/** A password form's body is a few hundred bytes; anything much larger is not one. */
export const PASSWORD_FORM_LIMIT = 4096;

const ESCAPES: Record<string, string> = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };
const escapeHtml = (text: string) => text.replace(/[&<>"']/g, (c) => ESCAPES[c] as string);

/**
 * Never cached, never framed (a framed form invites clickjacking), never indexed, and no Referer to the page posted
 * to (the link's own address). No `form-action`: browsers apply it to the redirect that follows the post.
 */
const PAGE_HEADERS = {
  "Content-Type": "text/html; charset=utf-8",
  "Cache-Control": "no-store",
  "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'",
  "X-Frame-Options": "DENY",
  "Referrer-Policy": "no-referrer",
  "X-Robots-Tag": "noindex",
};

/**
 * The form page. `referer` is the Referer the visitor came with, carried through the post so the visit records where
 * they came from (the post itself comes from this page); `message` says why the form is shown again, if it is.
 */
function page(message: string | null, referer: string | null, form: boolean): string {
  const note = message === null ? "" : `<p class="note" role="alert">${escapeHtml(message)}</p>`;
  const carried = referer === null ? "" : `<input type="hidden" name="referer" value="${escapeHtml(referer)}">`;
  const fields = form
    ? `<form method="post">${carried}<label for="password">Password</label>
<input id="password" name="password" type="password" required autofocus autocomplete="off">
<button type="submit">Continue</button></form>`
    : "";
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex"><title>Password required</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:32rem;margin:15vh auto;padding:0 1rem;color:#222}h1{font-size:1.5rem}
label{display:block;margin-bottom:.25rem}input{font:inherit;padding:.4rem;width:100%;box-sizing:border-box;margin-bottom:.75rem}
button{font:inherit;padding:.4rem 1rem}.note{color:#a00}</style>
</head><body><h1>This link is password-protected</h1><p>Enter the password you were given to follow it.</p>
${note}${fields}</body></html>
`;
}

/**
 * An answer on link `code`'s form path: problem+json for API clients, else the page in the problem's status (without
 * the form when it is a 429: the visitor must wait), or 200 when `problem` is null (the first ask).
 */
export function passwordPage(
  request: Request,
  requestId: string,
  code: string,
  problem: AppError | null,
  referer: string | null,
): Response {
  if (wantsJson(request)) {
    rememberRequestId(request, requestId);
    const response = problemResponse(problem ?? linkPasswordRequired(code), request);
    response.headers.set("X-Request-Id", requestId);
    return response;
  }
  const waiting = problem !== null && problem.status === 429;
  const body = page(
    problem === null ? null : problem.detail,
    referer === null ? null : cropText(referer, VISIT_FIELD_LIMITS.referer),
    !waiting,
  );
  return new Response(request.method === "HEAD" ? null : body, {
    status: problem?.status ?? 200,
    headers: { ...PAGE_HEADERS, ...problem?.headers, "X-Request-Id": requestId },
  });
}

/**
 * The posted password and carried Referer: a form (`application/x-www-form-urlencoded`, what the page sends) or JSON
 * (`{"password": …}`, for scripts). A missing password is "" (the caller answers that it is wrong).
 */
export async function readPasswordForm(request: Request): Promise<{ password: string; referer: string | null }> {
  const type = request.headers.get("content-type") ?? "";
  if (type.includes("json")) {
    const body = (await readJsonBody(request, PASSWORD_FORM_LIMIT)) as { password?: unknown } | null;
    const password = body !== null && typeof body === "object" ? body.password : undefined;
    return { password: typeof password === "string" ? password : "", referer: request.headers.get("referer") };
  }
  const form = new URLSearchParams(await readTextBody(request, PASSWORD_FORM_LIMIT));
  const referer = form.get("referer");
  return { password: form.get("password") ?? "", referer: referer === null || referer === "" ? null : referer };
}
