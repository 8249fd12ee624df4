import { describe, expect, test } from "bun:test";
import type { LinkListing, ShortUrl } from "../domain/short-urls";
import { allLinksResponse } from "./all-links-response";

/** A listing of `batches` (codes only), recording what was asked of it; `failAt` makes that batch's read throw. */
function fakeListing(batches: string[][], failAt = -1) {
  const seen = { reads: 0, closed: 0 };
  const listing: LinkListing = {
    next: async () => {
      const i = seen.reads++;
      if (i === failAt) throw new Error("reader gone");
      return (batches[i] ?? []).map((shortCode) => ({ shortCode }) as ShortUrl);
    },
    close: () => {
      seen.closed++;
    },
  };
  return { listing, seen };
}

const asJson = (s: ShortUrl) => ({ code: s.shortCode });

describe("allLinksResponse", () => {
  test("writes Shlink's page of every link, a batch at a time, with the pagination counting what was written", async () => {
    const { listing, seen } = fakeListing([["a", "b"], ["c"]]);
    const response = allLinksResponse(listing, asJson);
    expect(response.headers.get("content-type")).toBe("application/json");
    // Nothing is read before the body is.
    expect(seen.reads).toBe(0);
    expect(await response.json()).toEqual({
      shortUrls: {
        data: [{ code: "a" }, { code: "b" }, { code: "c" }],
        pagination: { currentPage: 1, pagesCount: 1, itemsPerPage: 3, itemsInCurrentPage: 3, totalItems: 3 },
      },
    });
    expect(seen.reads).toBe(3);
  });

  test("an empty listing is an empty page with itemsPerPage 1, as Shlink", async () => {
    const { listing } = fakeListing([]);
    expect(await allLinksResponse(listing, asJson).json()).toEqual({
      shortUrls: { data: [], pagination: { currentPage: 1, pagesCount: 1, itemsPerPage: 1, itemsInCurrentPage: 0, totalItems: 0 } },
    });
  });

  test("a client that stops reading closes the listing", async () => {
    const { listing, seen } = fakeListing([["a"], ["b"], ["c"]]);
    const reader = (allLinksResponse(listing, asJson).body as ReadableStream<Uint8Array>).getReader();
    expect(new TextDecoder().decode((await reader.read()).value)).toBe('{"shortUrls":{"data":[{"code":"a"}');
    await reader.cancel();
    expect(seen.closed).toBe(1);
  });

  test("a failed read breaks the body off: the client cannot mistake a shorter list for the whole", async () => {
    const { listing, seen } = fakeListing([["a"], ["b"]], 1);
    await expect(allLinksResponse(listing, asJson).text()).rejects.toThrow("reader gone");
    expect(seen.closed).toBe(1);
  });
});
