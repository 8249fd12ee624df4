/** JSON responses with an explicit Content-Length, so access logs know the bytes sent. */
export function jsonResponse(
  body: unknown,
  init: { status?: number; headers?: Record<string, string>; contentType?: string } = {},
): Response {
  const text = JSON.stringify(body);
  return new Response(text, {
    status: init.status ?? 200,
    headers: {
      "Content-Type": init.contentType ?? "application/json",
      "Content-Length": String(Buffer.byteLength(text)),
      ...init.headers,
    },
  });
}
