/**
 * An OTLP/HTTP traces endpoint for the tracing benchmark: accepts POST /v1/traces (JSON or protobuf), answers 200
 * and counts what it received, so the shortener's exporter runs as it would against a collector.
 * Usage: bun bench/otlp-sink.ts PORT
 */
const [portArg] = process.argv.slice(2);
if (portArg === undefined) {
  console.error("usage: bun bench/otlp-sink.ts PORT");
  process.exit(1);
}

let exportCount = 0;
let bytes = 0;
const server = Bun.serve({
  hostname: "127.0.0.1",
  port: Number(portArg),
  routes: {
    "/healthz": () => new Response("ok\n"),
    "/stats": () => Response.json({ exports: exportCount, bytes }),
    "/v1/traces": {
      POST: async (request) => {
        bytes += (await request.arrayBuffer()).byteLength;
        exportCount++;
        return new Response("{}", { headers: { "Content-Type": "application/json" } });
      },
    },
  },
  fetch: () => new Response("not found\n", { status: 404 }),
});

process.on("SIGTERM", () => {
  void server.stop(true).then(() => process.exit(0));
});
