/**
 * The ceiling the shortener is compared against: a bare Bun.serve that answers 301 with Location from a Map of
 * the same codes, through the same native `/:code` router the shortener uses. No cache, no counting, no checks.
 * With SPIN_MICROSECONDS, each redirect first busy-waits that long: a stand-in for a handler's own work, which tells
 * how much work per request a throughput ratio leaves room for on this machine (bench/redirects --only budget).
 * Usage: bun bench/reference-server.ts PORT CODES_FILE [SPIN_MICROSECONDS]
 */
import { readCodes, targetFor } from "./lib/codes";

const [portArg, codesFile, spinArg = "0"] = process.argv.slice(2);
const spinMs = Number(spinArg) / 1000;
if (portArg === undefined || codesFile === undefined || !(spinMs >= 0)) {
  console.error("usage: bun bench/reference-server.ts PORT CODES_FILE [SPIN_MICROSECONDS]");
  process.exit(1);
}

const targets = new Map<string, string>();
readCodes(codesFile).forEach((code, i) => {
  targets.set(code, targetFor(i));
});

const notFound = () => new Response("not found\n", { status: 404 });

const redirect = (request: Request & { params: { code: string } }) => {
  const location = targets.get(request.params.code);
  return location === undefined ? notFound() : new Response(null, { status: 301, headers: { Location: location } });
};

/** The same redirect after `spinMs` of busy work (performance.now is the clock the work is measured by). */
const spinThenRedirect = (request: Request & { params: { code: string } }) => {
  const until = performance.now() + spinMs;
  while (performance.now() < until) {}
  return redirect(request);
};

const server = Bun.serve({
  hostname: "127.0.0.1",
  port: Number(portArg),
  reusePort: false,
  development: false,
  routes: {
    "/healthz": () => new Response("ok\n"),
    "/:code": spinMs === 0 ? redirect : spinThenRedirect,
  },
  fetch: notFound,
});

// Exit 0 on SIGTERM like the shortener, so the benchmark can treat any other exit as a failure.
process.on("SIGTERM", () => {
  void server.stop(true).then(() => process.exit(0));
});
