/** Shlink's JSON shapes: short URLs, pagination and dates with an explicit offset. */
import type { Page, ShortUrl } from "../domain/short-urls";
import { formatIsoDate } from "../lib/iso-date";

const isoOrNull = (ms: number | null) => (ms === null ? null : formatIsoDate(ms));

export function shortUrlJson(s: ShortUrl, baseUrl: string) {
  const shortUrl = s.domain === null ? `${baseUrl}/${s.shortCode}` : `${new URL(baseUrl).protocol}//${s.domain}/${s.shortCode}`;
  return {
    shortCode: s.shortCode,
    shortUrl,
    longUrl: s.longUrl,
    deviceLongUrls: { android: null, ios: null, desktop: null },
    dateCreated: formatIsoDate(s.createdAt),
    tags: s.tags,
    meta: { validSince: isoOrNull(s.validSince), validUntil: isoOrNull(s.validUntil), maxVisits: s.maxVisits },
    domain: s.domain,
    title: s.title,
    crawlable: s.crawlable,
    forwardQuery: s.forwardQuery,
    visitsSummary: { total: s.visitsTotal, nonBots: s.visitsTotal - s.visitsBots, bots: s.visitsBots },
    hasRedirectRules: s.hasRedirectRules,
    redirectStatus: s.redirectStatus,
    // Not Shlink's: visitors must give the link's password (set with `password` on create or edit; never shown).
    passwordProtected: s.passwordProtected,
  };
}

export function paginationJson(page: { page: number; itemsPerPage: number; total: number; items: ArrayLike<unknown> }) {
  const pagesCount = page.itemsPerPage <= 0 ? 1 : Math.max(1, Math.ceil(page.total / page.itemsPerPage));
  return {
    currentPage: page.page,
    pagesCount,
    itemsPerPage: page.itemsPerPage,
    itemsInCurrentPage: page.items.length,
    totalItems: page.total,
  };
}

export function pageJson<T, U>(page: Page<T>, map: (item: T) => U) {
  return { data: page.items.map(map), pagination: paginationJson(page) };
}
