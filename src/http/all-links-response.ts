import type { LinkListing, ShortUrl } from "../domain/short-urls";
import { paginationJson } from "./short-url-json";

/**
 * Shlink's list of every link (`itemsPerPage=-1`), written out a batch at a time as the client reads it: the same
 * JSON as a page, with the pagination after the data, counting the links written. If reading fails part-way, the
 * stream is broken off, so the client sees a truncated body rather than a shorter list that parses.
 */
export function allLinksResponse(listing: LinkListing, json: (s: ShortUrl) => unknown): Response {
  const encoder = new TextEncoder();
  let count = 0;
  let started = false;
  const body = new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        try {
          const head = started ? "" : '{"shortUrls":{"data":[';
          started = true;
          const batch = await listing.next();
          if (batch.length === 0) {
            const pagination = paginationJson({ page: 1, itemsPerPage: Math.max(1, count), total: count, items: { length: count } });
            controller.enqueue(encoder.encode(`${head}],"pagination":${JSON.stringify(pagination)}}}`));
            controller.close();
            return;
          }
          let text = head;
          for (const link of batch) text += `${count++ === 0 ? "" : ","}${JSON.stringify(json(link))}`;
          controller.enqueue(encoder.encode(text));
        } catch (error) {
          listing.close();
          controller.error(error);
        }
      },
      cancel() {
        listing.close();
      },
    },
    { highWaterMark: 0 },
  );
  return new Response(body, { headers: { "Content-Type": "application/json" } });
}
