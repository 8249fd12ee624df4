/**
 * Shlink's own web UI (@shlinkio/shlink-web-component, as shlink-web-client mounts it) pointed at a shortener
 * server, the way an operator adds the server to the web client: its URL and an API key. The page comes from
 * another origin than the API, so the browser enforces CORS on every call, the real-time feed included.
 */
import { ShlinkApiClient } from "@shlinkio/shlink-js-sdk";
import { FetchHttpClient } from "@shlinkio/shlink-js-sdk/fetch";
import { ShlinkWebComponent } from "@shlinkio/shlink-web-component";
import { createElement } from "react";
import { createRoot } from "react-dom/client";

interface PageConfig {
  /** The shortener's public base URL. */
  server: string;
  apiKey: string;
}

async function main(): Promise<void> {
  const config = (await (await fetch("/config.json")).json()) as PageConfig;
  // The web client reads the server's version from its health endpoint to decide which features to offer.
  const health = (await (await fetch(`${config.server}/rest/health`)).json()) as { version: string };
  const apiClient = new ShlinkApiClient(new FetchHttpClient(), { baseUrl: config.server, apiKey: config.apiKey });
  const root = document.getElementById("root");
  if (root === null) throw new Error("no #root element");
  createRoot(root).render(
    createElement(ShlinkWebComponent, {
      serverVersion: health.version as `${bigint}.${bigint}.${bigint}`,
      apiClient,
      settings: { realTimeUpdates: { enabled: true } },
    }),
  );
}

main().catch((error: unknown) => {
  document.body.dataset.error = String(error);
});
