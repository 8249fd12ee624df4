/** Shlink's health endpoint, at /rest/health and /rest/v3/health, as application/health+json. */
import { Elysia } from "elysia";
import { COMMIT, SHLINK_API_VERSION, VERSION } from "../../version";
import type { HttpDeps } from "../deps";
import { jsonResponse } from "../json-response";

export function healthRoutes(ctx: HttpDeps) {
  const health = () => {
    const pass = ctx.databaseUsable();
    const body = {
      status: pass ? "pass" : "fail",
      version: SHLINK_API_VERSION,
      links: { about: "https://shlink.io", project: "https://github.com/shlinkio/shlink" },
      implementation: { name: "shortener", version: VERSION, commit: COMMIT },
    };
    return jsonResponse(body, { status: pass ? 200 : 503, contentType: "application/health+json" });
  };
  return new Elysia({ name: "health" }).get("/rest/health", health).get("/rest/v3/health", health);
}
