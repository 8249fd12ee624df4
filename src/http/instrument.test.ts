import { expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createApp } from "../app";
import { loadConfig } from "../config";
import { restRouteTemplate } from "./instrument";
import { createRestApp } from "./rest/rest-app";

const template = (path: string) => restRouteTemplate(new Request(`http://s.test${path}`));

test("every route the REST app serves is labelled with its own template (metrics, access log, span name)", async () => {
  const dir = mkdtempSync(join(tmpdir(), "rest-routes-"));
  try {
    await using app = createApp(loadConfig(new Map([["data-dir", dir]]), {}));
    const routes = createRestApp(app).routes;
    expect(routes.length).toBeGreaterThanOrEqual(30);
    for (const { method, path } of routes) {
      const concrete = path.replace(/:(\w+)/g, "sample-$1");
      // Shlink's health route answers on both paths; they share its label.
      const expected = path === "/rest/v3/health" ? "/rest/health" : path.replace(/:(\w+)/g, "{$1}");
      expect(template(`${concrete}?page=2&itemsPerPage=5`), `${method} ${path}`).toBe(expected);
      expect(template(`${concrete}/`), `${method} ${path}/`).toBe(expected);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("a path no route serves is /rest/other, so labels stay bounded", () => {
  expect(template("/rest/v3/nothing-here")).toBe("/rest/other");
  expect(template("/rest/v3/short-urls/abc/visits/more")).toBe("/rest/other");
  expect(template("/rest/v4/short-urls")).toBe("/rest/other");
  expect(template("/rest/v20/short-urls")).toBe("/rest/other");
  // Shlink's older paths are served, and counted, as /rest/v3.
  expect(template("/rest/v2/short-urls/shorten?apiKey=k&longUrl=x")).toBe("/rest/v3/short-urls/shorten");
  expect(template("/rest/v1/tags/stats")).toBe("/rest/v3/tags/stats");
  // A short code, tag or domain named like a fixed segment still gets its route's template.
  expect(template("/rest/v3/tags/stats/visits")).toBe("/rest/v3/tags/{tag}/visits");
  expect(template("/rest/v3/domains/redirects/visits")).toBe("/rest/v3/domains/{domain}/visits");
});
