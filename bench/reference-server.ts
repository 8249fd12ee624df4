/**
 * The ceiling the shortener is compared against: a bare Bun.serve that answers 301 with Location from a Map of
 * the same codes, through the same native `/:code` router the shortener uses. No cache, no counting, no checks.
 * Usage: bun bench/reference-server.ts PORT CODES_FILE
 */
import { readCodes, targetFor } from "./lib/codes";

const [portArg, codesFile] = process.argv.slice(2);
if (portArg === undefined || codesFile === undefined) {
  console.error("usage: bun bench/reference-server.ts PORT CODES_FILE");
  process.exit(1);
}

const targets = new Map<string, string>();
readCodes(codesFile).forEach((code, i) => {
  targets.set(code, targetFor(i));
});

const notFound = () => new Response("not found\n", { status: 404 });

const server = Bun.serve({
  hostname: "127.0.0.1",
  port: Number(portArg),
  reusePort: false,
  development: false,
  routes: {
    "/healthz": () => new Response("ok\n"),
    "/:code": (request) => {
      const location = targets.get(request.params.code);
      return location === undefined ? notFound() : new Response(null, { status: 301, headers: { Location: location } });
    },
  },
  fetch: notFound,
});

// Exit 0 on SIGTERM like the shortener, so the benchmark can treat any other exit as a failure.
process.on("SIGTERM", () => {
  void server.stop(true).then(() => process.exit(0));
});
