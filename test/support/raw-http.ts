/**
 * A raw HTTP/1.1 exchange over a TCP socket, for requests fetch cannot be made to send exactly, such as a
 * chunked body with no Content-Length. The server must answer with a Content-Length (problem responses do).
 */

export interface RawResponse {
  status: number;
  headers: Headers;
  body: string;
}

/** Sends `head` (request line and headers, without the blank line) and then each body chunk, chunked-encoded. */
export async function sendChunked(port: number, head: string, chunks: Uint8Array[], timeoutMs = 10_000): Promise<RawResponse> {
  const received: Uint8Array[] = [];
  const { promise: closed, resolve, reject } = Promise.withResolvers<void>();
  const socket = await Bun.connect({
    hostname: "127.0.0.1",
    port,
    socket: {
      data(_socket, data) {
        received.push(new Uint8Array(data));
      },
      close() {
        resolve();
      },
      error(_socket, error) {
        reject(error);
      },
    },
  });
  const encoder = new TextEncoder();
  const parts: Uint8Array[] = [encoder.encode(`${head}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n`)];
  for (const chunk of chunks) parts.push(encoder.encode(`${chunk.byteLength.toString(16)}\r\n`), chunk, encoder.encode("\r\n"));
  parts.push(encoder.encode("0\r\n\r\n"));
  socket.write(Buffer.concat(parts));
  socket.flush();
  const timer = setTimeout(() => socket.end(), timeoutMs);
  await closed;
  clearTimeout(timer);
  return parseResponse(new TextDecoder().decode(Buffer.concat(received)));
}

function parseResponse(text: string): RawResponse {
  const split = text.indexOf("\r\n\r\n");
  if (split === -1) throw new Error(`no complete HTTP response received: ${JSON.stringify(text.slice(0, 200))}`);
  const [statusLine = "", ...headerLines] = text.slice(0, split).split("\r\n");
  const status = Number(statusLine.split(" ")[1]);
  const headers = new Headers();
  for (const line of headerLines) {
    const colon = line.indexOf(":");
    if (colon > 0) headers.append(line.slice(0, colon).trim(), line.slice(colon + 1).trim());
  }
  const length = Number(headers.get("content-length") ?? Number.NaN);
  const rest = text.slice(split + 4);
  return { status, headers, body: Number.isNaN(length) ? rest : rest.slice(0, length) };
}
