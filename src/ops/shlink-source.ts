/**
 * Reads a server that speaks Shlink's REST API v3 (Shlink itself, or another shortener like this one) for `shortener
 * import shlink`: its links page by page, oldest first (links created meanwhile join the end, so no page shifts); a
 * link's redirect rules; a link's visits up to a fixed moment (so visits arriving meanwhile shift no page either).
 * Network failures, 5xx and 429 are retried a few times; anything else the source answers unexpectedly is a
 * SourceFailed naming the request and what came back. The API key goes only into the X-Api-Key header.
 */
import { formatIsoDate } from "../lib/iso-date";

/** Links per page of the source's list. */
const LINKS_PER_PAGE = 100;
/** Visits per page: the most Shlink's web client asks for, and the most this server gives. */
const VISITS_PER_PAGE = 5000;
/** The most pages of one listing read: 100 000 000 links or 5 000 000 000 visits of one link. */
const MAX_PAGES = 1_000_000;
const REQUEST_TIMEOUT_MS = 60_000;
/** Pauses before each retry of a request that failed in a way worth retrying. */
const RETRY_PAUSES_MS = [500, 2000, 5000];

export class SourceFailed extends Error {}

/** How a request reaches the source: `fetch` over the network, or a REST app's handler in this process (`import db`). */
export type SourceFetch = (url: string, init: RequestInit) => Promise<Response>;

type Json = Record<string, unknown>;
const isObject = (value: unknown): value is Json => value !== null && typeof value === "object" && !Array.isArray(value);

export class ShlinkSource {
  readonly #base: string;

  constructor(
    baseUrl: string,
    private readonly apiKey: string,
    private readonly pause: (ms: number) => Promise<void> = (ms) => Bun.sleep(ms),
    private readonly send: SourceFetch = (url, init) => fetch(url, init),
  ) {
    this.#base = baseUrl.replace(/\/+$/, "");
  }

  /** The source's links, oldest first, as its API gives them. */
  async *links(): AsyncGenerator<Json> {
    for (let page = 1; page <= MAX_PAGES; page++) {
      const body = await this.#get(
        `/rest/v3/short-urls?${new URLSearchParams({ page: String(page), itemsPerPage: String(LINKS_PER_PAGE), orderBy: "dateCreated-ASC" })}`,
      );
      const { data, pagesCount } = listOf(body, "shortUrls", `links page ${page}`);
      for (const link of data) {
        if (!isObject(link)) throw new SourceFailed(`links page ${page} holds an entry that is not an object`);
        yield link;
      }
      if (page >= pagesCount || data.length === 0) return;
    }
  }

  /** One link as the source's API gives it, or null when the source has no such link. */
  async link(shortCode: string, domain: string | null): Promise<Json | null> {
    const body = await this.#get(`/rest/v3/short-urls/${encodeURIComponent(shortCode)}${domainQuery(domain)}`, true);
    if (body !== null && !isObject(body)) throw new SourceFailed(`the link ${shortCode} came as something other than an object`);
    return body;
  }

  /** A link's redirect rules as the source lists them (priority order), or [] when it has none or predates them. */
  async redirectRules(shortCode: string, domain: string | null): Promise<unknown[]> {
    const body = await this.#get(`/rest/v3/short-urls/${encodeURIComponent(shortCode)}/redirect-rules${domainQuery(domain)}`, true);
    if (body === null) return [];
    if (!isObject(body) || !Array.isArray(body.redirectRules)) {
      throw new SourceFailed(`the redirect rules of ${shortCode} came without a redirectRules list`);
    }
    return body.redirectRules;
  }

  /** A link's visits up to `until` (epoch ms), newest first, a page at a time. */
  async *visits(shortCode: string, domain: string | null, until: number): AsyncGenerator<Json[]> {
    for (let page = 1; page <= MAX_PAGES; page++) {
      const params = new URLSearchParams({ page: String(page), itemsPerPage: String(VISITS_PER_PAGE), endDate: formatIsoDate(until) });
      if (domain !== null) params.set("domain", domain);
      const body = await this.#get(`/rest/v3/short-urls/${encodeURIComponent(shortCode)}/visits?${params}`);
      const { data, pagesCount } = listOf(body, "visits", `visits page ${page} of ${shortCode}`);
      if (!data.every(isObject)) throw new SourceFailed(`visits page ${page} of ${shortCode} holds an entry that is not an object`);
      yield data as Json[];
      if (page >= pagesCount || data.length === 0) return;
    }
  }

  /** GET and parse JSON; with `missingIsNull`, a 404 is null (a route or link the source does not have). */
  async #get(path: string, missingIsNull = false): Promise<unknown> {
    const url = `${this.#base}${path}`;
    for (let attempt = 0; ; attempt++) {
      let why: string;
      try {
        const response = await this.send(url, {
          headers: { "X-Api-Key": this.apiKey, Accept: "application/json" },
          redirect: "manual",
          signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
        });
        const text = await response.text();
        if (response.ok) return parseJson(text, url);
        if (response.status === 404 && missingIsNull) return null;
        if (response.status >= 300 && response.status < 400) {
          const to = response.headers.get("location") ?? "elsewhere";
          throw new SourceFailed(`${url} redirects to ${to}: give the source's own base URL (the key is not sent on)`);
        }
        const detail = problemDetail(text);
        if (response.status === 401 || response.status === 403) {
          throw new SourceFailed(`${url} answered ${response.status}${detail}: give an API key of the source in SHLINK_API_KEY`);
        }
        if (response.status < 500 && response.status !== 429) throw new SourceFailed(`${url} answered ${response.status}${detail}`);
        why = `${response.status}${detail}`;
      } catch (error) {
        if (error instanceof SourceFailed) throw error;
        why = error instanceof Error ? error.message : String(error);
      }
      const pause = RETRY_PAUSES_MS[attempt];
      if (pause === undefined) throw new SourceFailed(`${url} failed ${attempt + 1} times, the last: ${why}`);
      await this.pause(pause);
    }
  }
}

function domainQuery(domain: string | null): string {
  return domain === null ? "" : `?${new URLSearchParams({ domain })}`;
}

function parseJson(text: string, url: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw new SourceFailed(`${url} answered something that is not JSON (is this a Shlink server's base URL?)`);
  }
}

/** ` (the problem's detail)` from a problem+json body, or ''. */
function problemDetail(text: string): string {
  try {
    const body = JSON.parse(text);
    return isObject(body) && typeof body.detail === "string" ? ` (${body.detail})` : "";
  } catch {
    return "";
  }
}

/** `{key: {data: [...], pagination: {pagesCount}}}`, as Shlink pages lists. */
function listOf(body: unknown, key: string, what: string): { data: unknown[]; pagesCount: number } {
  const list = isObject(body) ? body[key] : undefined;
  const pagination = isObject(list) ? list.pagination : undefined;
  if (!isObject(list) || !Array.isArray(list.data) || !isObject(pagination) || typeof pagination.pagesCount !== "number") {
    throw new SourceFailed(`${what} is not a Shlink list ({"${key}": {"data": [...], "pagination": {...}}})`);
  }
  return { data: list.data, pagesCount: pagination.pagesCount };
}
