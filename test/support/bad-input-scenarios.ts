/**
 * The bad-input scenario table for test/bad-input.test.ts: every request here must be refused with a 4xx
 * problem+json naming what was wrong. `seeded` and `taken` are links the test creates first.
 */

export interface Scenario {
  name: string;
  method: "GET" | "POST" | "PATCH" | "PUT" | "DELETE";
  path: string;
  headers?: Record<string, string>;
  body?: string | Uint8Array<ArrayBuffer>;
  status: number;
  /** Problem type code, after https://shlink.io/api/error/. */
  type: string;
  /** For invalid-data: the fields named, in any order. */
  invalidElements?: string[];
  /** Other problem members that must be present with these values. */
  extras?: Record<string, unknown>;
}

export const MAX_BODY_BYTES = 65_536;
const SHORT_URLS = "/rest/v3/short-urls";
const json = (value: unknown) => JSON.stringify(value);
const invalid = (name: string, method: Scenario["method"], path: string, body: unknown, fields: string[]): Scenario => ({
  name,
  method,
  path,
  body: json(body),
  status: 400,
  type: "invalid-data",
  invalidElements: fields,
});
/** A create whose only fault is `fields`; everything else is valid. */
const badCreate = (name: string, fields: Record<string, unknown>, invalidElements = Object.keys(fields).filter((f) => f !== "longUrl")) =>
  invalid(`create: ${name}`, "POST", SHORT_URLS, { longUrl: "https://example.com/ok", ...fields }, invalidElements);
const badLongUrl = (name: string, longUrl: unknown) => invalid(`create: longUrl ${name}`, "POST", SHORT_URLS, { longUrl }, ["longUrl"]);
const badList = (name: string, query: string, field: string) =>
  invalid(`list: ${name}`, "GET", `${SHORT_URLS}?${query}`, undefined, [field]);
const badEdit = (name: string, body: unknown, fields: string[]) => invalid(`edit: ${name}`, "PATCH", `${SHORT_URLS}/seeded`, body, fields);
const malformed = (name: string, method: Scenario["method"], path: string, body: string | Uint8Array<ArrayBuffer>): Scenario => ({
  name,
  method,
  path,
  body,
  status: 400,
  type: "malformed-request-body",
});
const notFound = (name: string, method: Scenario["method"], code: string, body?: unknown): Scenario => ({
  name,
  method,
  path: `${SHORT_URLS}/${code}`,
  body: body === undefined ? undefined : json(body),
  status: 404,
  type: "short-url-not-found",
  // The problem names the code as it was sent, even when its percent-encoding is broken.
  extras: { shortCode: code },
});

export const LONG_URL_2048 = `https://example.com/${"a".repeat(2048 - "https://example.com/".length)}`;

export const SCENARIOS: Scenario[] = [
  // Targets a browser would run or that are not web pages.
  badLongUrl("javascript: in mixed case", "JaVaScRiPt:alert(document.cookie)"),
  badLongUrl("data: in mixed case", "DaTa:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg=="),
  badLongUrl("vbscript: in mixed case", "VbScRiPt:msgbox(1)"),
  badLongUrl("javascript: after a leading control character", "\u0001javascript:alert(1)"),
  badLongUrl("with a leading \\u0001", "\u0001https://example.com/"),
  badLongUrl("with a leading \\u0000", "\u0000https://example.com/"),
  badLongUrl("with a leading space", " https://example.com/"),
  badLongUrl("with a leading tab", "\thttps://example.com/"),
  badLongUrl("with an embedded tab", "https://exa\tmple.com/"),
  badLongUrl("with an embedded CR", "https://example.com/a\rb"),
  badLongUrl("with an embedded LF", "https://example.com/a\nSet-Cookie: x=1"),
  badLongUrl("java\\tscript: split by a tab", "java\tscript:alert(1)"),
  badLongUrl("of 2049 bytes", `${LONG_URL_2048}a`),
  badLongUrl("over 2048 bytes made of multi-byte characters", `https://example.com/${"é".repeat(1015)}`),
  badLongUrl("ftp:", "ftp://example.com/file"),
  badLongUrl("file:", "file:///etc/passwd"),
  badLongUrl("mailto:", "mailto:someone@example.com"),
  badLongUrl("ws:", "ws://example.com/socket"),
  badLongUrl("relative", "/just/a/path"),
  badLongUrl("without a host", "https://"),
  badLongUrl("empty", ""),
  badLongUrl("that is a number", 1),
  badLongUrl("that is null", null),
  invalid("create: longUrl missing", "POST", SHORT_URLS, { title: "no target" }, ["longUrl"]),
  invalid("create: an empty object", "POST", SHORT_URLS, {}, ["longUrl"]),
  // Every other create field with the wrong type or out of range.
  badCreate("tags a string", { tags: "x" }),
  badCreate("tags holding a number", { tags: [1] }),
  badCreate("tags holding an empty name", { tags: ["ok", " "] }),
  badCreate("maxVisits a string", { maxVisits: "3" }),
  badCreate("maxVisits 0", { maxVisits: 0 }),
  badCreate("maxVisits negative", { maxVisits: -1 }),
  badCreate("maxVisits fractional", { maxVisits: 1.5 }),
  badCreate("validSince not a date", { validSince: "yesterday" }),
  badCreate("validSince a number", { validSince: 1700000000 }),
  badCreate("validUntil a day that does not exist", { validUntil: "2030-02-30T00:00:00+00:00" }),
  badCreate("validUntil before validSince", { validSince: "2030-01-02T00:00:00Z", validUntil: "2030-01-01T00:00:00Z" }, ["validUntil"]),
  badCreate("crawlable a string", { crawlable: "yes" }),
  badCreate("forwardQuery a number", { forwardQuery: 0 }),
  badCreate("findIfExists a string", { findIfExists: "true" }),
  badCreate("shortCodeLength 2", { shortCodeLength: 2 }),
  badCreate("shortCodeLength 65", { shortCodeLength: 65 }),
  badCreate("shortCodeLength a string", { shortCodeLength: "8" }),
  badCreate("customSlug with a slash", { customSlug: "a/b" }),
  badCreate("customSlug with a space", { customSlug: "a b" }),
  badCreate("customSlug of 65 characters", { customSlug: "s".repeat(65) }),
  badCreate("customSlug empty", { customSlug: "" }),
  badCreate("customSlug a number", { customSlug: 12345 }),
  badCreate("customSlug reserved REST", { customSlug: "REST" }),
  badCreate("customSlug reserved Metrics", { customSlug: "Metrics" }),
  badCreate("customSlug reserved healthz", { customSlug: "healthz" }),
  badCreate("customSlug reserved ReadyZ", { customSlug: "ReadyZ" }),
  badCreate("domain not a host", { domain: "not a host!" }),
  badCreate("domain a number", { domain: 5 }),
  badCreate("title a number", { title: 5 }),
  badCreate("title over 512 characters", { title: "t".repeat(513) }),
  badCreate("redirectStatus 303", { redirectStatus: 303 }),
  badCreate("several bad fields and a tag that must not be stored", { tags: ["leaked-tag"], maxVisits: 0, crawlable: "no" }, [
    "maxVisits",
    "crawlable",
  ]),
  {
    name: "create: a customSlug already in use is non-unique-slug, as Shlink",
    method: "POST",
    path: SHORT_URLS,
    body: json({ longUrl: "https://example.com/again", customSlug: "taken" }),
    status: 400,
    type: "non-unique-slug",
    extras: { customSlug: "taken", title: "Invalid custom slug" },
  },
  // Bodies that are not a JSON object, or not JSON at all.
  malformed("create: malformed JSON", "POST", SHORT_URLS, '{"longUrl":'),
  malformed("create: JSON followed by garbage", "POST", SHORT_URLS, '{"longUrl":"https://example.com/"} trailing'),
  malformed(
    "create: invalid UTF-8",
    "POST",
    SHORT_URLS,
    new Uint8Array([...new TextEncoder().encode('{"longUrl":"https://e.com/'), 0xff, 0xfe, 0x22, 0x7d]),
  ),
  malformed("create: form-encoded instead of JSON", "POST", SHORT_URLS, "longUrl=https%3A%2F%2Fexample.com"),
  invalid("create: empty body", "POST", SHORT_URLS, undefined, ["body"]),
  invalid("create: a JSON array", "POST", SHORT_URLS, [{ longUrl: "https://example.com/" }], ["body"]),
  invalid("create: a JSON string", "POST", SHORT_URLS, "https://example.com/", ["body"]),
  invalid("create: JSON null", "POST", SHORT_URLS, null, ["body"]),
  {
    name: `create: a body over ${MAX_BODY_BYTES} bytes with Content-Length`,
    method: "POST",
    path: SHORT_URLS,
    body: json({ longUrl: "https://example.com/", title: "x".repeat(MAX_BODY_BYTES) }),
    status: 413,
    type: "payload-too-large",
  },
  {
    name: "create: a 3 MiB body, past any buffer the HTTP server keeps, with Content-Length",
    method: "POST",
    path: SHORT_URLS,
    body: json({ longUrl: "https://example.com/", title: "x".repeat(3 * 1024 * 1024) }),
    status: 413,
    type: "payload-too-large",
  },
  // List queries.
  badList("page=0", "page=0", "page"),
  badList("page=-1", "page=-1", "page"),
  badList("page=abc", "page=abc", "page"),
  badList("page beyond any integer", "page=99999999999999999999", "page"),
  badList("itemsPerPage=abc", "itemsPerPage=abc", "itemsPerPage"),
  badList("itemsPerPage=0", "itemsPerPage=0", "itemsPerPage"),
  badList("orderBy=nope-UP", "orderBy=nope-UP", "orderBy"),
  badList("orderBy=shortCode-UP", "orderBy=shortCode-UP", "orderBy"),
  badList("orderBy with a trailing part", "orderBy=shortCode-ASC-x", "orderBy"),
  badList("tagsMode=some", "tagsMode=some", "tagsMode"),
  badList("tagsMode=some with tags", "tags[]=a&tagsMode=some", "tagsMode"),
  badList("excludeTagsMode=none", "excludeTags[]=a&excludeTagsMode=none", "excludeTagsMode"),
  badList("startDate=garbage", "startDate=garbage", "startDate"),
  badList("endDate on a day that does not exist", "endDate=2030-02-30", "endDate"),
  badList("excludeMaxVisitsReached=maybe", "excludeMaxVisitsReached=maybe", "excludeMaxVisitsReached"),
  badList("domain not a host", "domain=not%20a%20host!", "domain"),
  invalid("tags: page=0", "GET", "/rest/v3/tags?page=0", undefined, ["page"]),
  invalid("tags: page beyond any integer", "GET", "/rest/v3/tags?page=99999999999999999999&itemsPerPage=5", undefined, ["page"]),
  invalid("tag stats: itemsPerPage=abc", "GET", "/rest/v3/tags/stats?itemsPerPage=abc", undefined, ["itemsPerPage"]),
  // An unknown field orders by name, as in Shlink; an unknown direction is refused (Shlink's SQL fails on it).
  invalid("tags: orderBy=tag-UP", "GET", "/rest/v3/tags?orderBy=tag-UP", undefined, ["orderBy"]),
  invalid("tag stats: orderBy=visits-down", "GET", "/rest/v3/tags/stats?orderBy=visits-down", undefined, ["orderBy"]),
  invalid("tag stats: orderBy and page both bad", "GET", "/rest/v3/tags/stats?orderBy=visits-ASC-x&page=0", undefined, ["orderBy", "page"]),
  // Edits.
  badEdit("longUrl javascript:", { longUrl: "JaVaScRiPt:alert(1)" }, ["longUrl"]),
  badEdit("longUrl null", { longUrl: null }, ["longUrl"]),
  badEdit("maxVisits a string, with a valid title beside it", { title: "must not stick", maxVisits: "3" }, ["maxVisits"]),
  badEdit("tags a string", { tags: "x" }, ["tags"]),
  badEdit("validUntil not a date", { validUntil: "nope" }, ["validUntil"]),
  badEdit("crawlable null", { crawlable: null }, ["crawlable"]),
  badEdit("title an array", { title: [] }, ["title"]),
  badEdit("a JSON array", [], ["body"]),
  malformed("edit: malformed JSON", "PATCH", `${SHORT_URLS}/seeded`, "{"),
  // Unknown short codes.
  notFound("get: an unknown code", "GET", "unknown-code"),
  notFound("edit: an unknown code", "PATCH", "unknown-code", { title: "x" }),
  notFound("delete: an unknown code", "DELETE", "unknown-code"),
  notFound("get: a code with broken percent-encoding", "GET", "%E0%A4%A"),
  notFound("delete: a code with broken percent-encoding", "DELETE", "%FF"),
  // Tags.
  invalid("rename: names not strings", "PUT", "/rest/v3/tags", { oldName: 1, newName: null }, ["oldName", "newName"]),
  invalid("rename: a JSON array", "PUT", "/rest/v3/tags", [], ["oldName", "newName"]),
  malformed("rename: malformed JSON", "PUT", "/rest/v3/tags", "{oldName:"),
  {
    name: "rename: an unknown tag",
    method: "PUT",
    path: "/rest/v3/tags",
    body: json({ oldName: "no-such-tag", newName: "x" }),
    status: 404,
    type: "tag-not-found",
    extras: { tag: "no-such-tag" },
  },
  // Authentication comes before anything else.
  { name: "auth: no key", method: "GET", path: SHORT_URLS, headers: { "X-Api-Key": "" }, status: 401, type: "missing-authentication" },
  {
    name: "auth: an unknown key",
    method: "GET",
    path: SHORT_URLS,
    headers: { "X-Api-Key": "shk_nope" },
    status: 401,
    type: "invalid-api-key",
  },
  {
    name: "auth: no key and a malformed body",
    method: "POST",
    path: SHORT_URLS,
    headers: { "X-Api-Key": "" },
    body: "{",
    status: 401,
    type: "missing-authentication",
  },
  { name: "route: an unknown REST path", method: "GET", path: "/rest/v3/nothing-here", status: 404, type: "not-found" },
];
