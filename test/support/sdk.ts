/**
 * The Shlink JS SDK pointed at a test server: our conformance client. The SDK throws the parsed problem body
 * on errors, so `rejects.toMatchObject({ type, status })` asserts a problem as a Shlink client sees it.
 */
import { ShlinkApiClient } from "@shlinkio/shlink-js-sdk";
import type { ShlinkApiClient as ShlinkApi } from "@shlinkio/shlink-js-sdk/api-contract";
import { FetchHttpClient } from "@shlinkio/shlink-js-sdk/fetch";
import type { TestServer } from "./binary";

// The SDK's class declaration imports '../api-contract', which TypeScript resolves to the untyped
// dist/api-contract.js, so its methods come out as `any`; the contract type it implements is fully typed.
export type { ShlinkApi };

export function sdkClient(server: TestServer, apiKey = server.apiKey): ShlinkApi {
  return new ShlinkApiClient(new FetchHttpClient(), { baseUrl: server.baseUrl, apiKey });
}

/** A Shlink problem `type` URI. */
export const problemType = (code: string) => `https://shlink.io/api/error/${code}`;

/** Dates as Shlink writes them: ISO 8601, seconds precision, explicit +00:00 offset. */
export const SHLINK_DATE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\+00:00$/;

/** The fields of a short URL that Shlink's v3 API defines (our extensions are left out). */
export const SHLINK_SHORT_URL_FIELDS = [
  "shortCode",
  "shortUrl",
  "longUrl",
  "deviceLongUrls",
  "dateCreated",
  "tags",
  "meta",
  "domain",
  "title",
  "crawlable",
  "forwardQuery",
  "visitsSummary",
  "hasRedirectRules",
] as const;

/** Only Shlink's fields of a short URL, so `toEqual` checks them exactly and ignores documented extensions. */
export function shlinkFields(shortUrl: object): Record<string, unknown> {
  const source = shortUrl as Record<string, unknown>;
  return Object.fromEntries(SHLINK_SHORT_URL_FIELDS.filter((f) => f in source).map((f) => [f, source[f]]));
}

/** A real browser's user agent and a crawler's, so visits count as human or bot. */
export const BROWSER_UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36";
export const BOT_UA = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)";

/** Follows a short link `times` times with the given user agent and checks each is a redirect. */
export async function visitTimes(server: TestServer, shortCode: string, times: number, userAgent = BROWSER_UA): Promise<void> {
  for (let i = 0; i < times; i++) {
    const response = await fetch(`${server.baseUrl}/${shortCode}`, { redirect: "manual", headers: { "User-Agent": userAgent } });
    if (response.status < 300 || response.status > 399) throw new Error(`visit to ${shortCode} answered ${response.status}`);
  }
}

/** Shlink's whole pagination block; the SDK's ShlinkPaginator type declares only part of it. */
export interface Pagination {
  currentPage: number;
  pagesCount: number;
  itemsPerPage: number;
  itemsInCurrentPage: number;
  totalItems: number;
}

export const paginationOf = (list: { pagination: object }): Pagination => list.pagination as Pagination;
