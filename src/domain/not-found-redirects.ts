/**
 * Where a visitor who finds nothing is sent, as Shlink's "not found redirects": per kind of miss (the base URL, an
 * unknown or unusable code, any other path) a domain's own redirect set through the API, else the server's setting,
 * else none (the 404 page). `{DOMAIN}` and `{ORIGINAL_PATH}` in a redirect are filled in from the request.
 * Never sees HTTP.
 */
import { type InvalidElement, invalidData } from "../errors";
import type { DomainRedirectRow, DomainRedirectStore } from "../storage/domain-redirect-store";
import type { GroupCommit } from "../storage/group-commit";
import type { ApiKey } from "./api-keys";
import { type AuditLog, keyActor } from "./audit-log";
import { checkLongUrl } from "./long-url";
import { normalizeDomain } from "./short-url-input";
import { rethrowUnconfirmed } from "./unconfirmed-write";

/** Shlink's three redirects (the JSON shape of `redirects` in /domains). */
export interface NotFoundRedirects {
  baseUrlRedirect: string | null;
  regular404Redirect: string | null;
  invalidShortUrlRedirect: string | null;
}

/** The kinds of miss, named as their orphan visits are. */
export type NotFoundType = "base_url" | "regular_404" | "invalid_short_url";

const FIELD: Record<NotFoundType, keyof NotFoundRedirects> = {
  base_url: "baseUrlRedirect",
  regular_404: "regular404Redirect",
  invalid_short_url: "invalidShortUrlRedirect",
};
const FIELDS = Object.values(FIELD);

/** WHATWG URLs allow braces in a host: a placeholder there would be sent literally, so it is refused. */
const PLACEHOLDER_IN_HOST = "placeholders ({DOMAIN}, {ORIGINAL_PATH}) go in the path or the query, not the host";

export const NO_REDIRECTS: NotFoundRedirects = { baseUrlRedirect: null, regular404Redirect: null, invalidShortUrlRedirect: null };

/** `PATCH /domains/redirects`: the domain, and each redirect given (null or "" clears it; one left out stays). */
export interface DomainRedirectsInput {
  domain: string;
  changes: Partial<NotFoundRedirects>;
}

export function parseDomainRedirectsInput(raw: unknown): DomainRedirectsInput {
  if (raw === null || typeof raw !== "object" || Array.isArray(raw))
    throw invalidData([{ field: "body", reason: "must be a JSON object" }]);
  const body = raw as Record<string, unknown>;
  const problems: InvalidElement[] = [];
  const domain = typeof body.domain === "string" ? normalizeDomain(body.domain) : null;
  if (domain === null)
    problems.push({ field: "domain", reason: "is required: the host name whose redirects these are, e.g. s.example.com" });
  const changes: Partial<NotFoundRedirects> = {};
  for (const field of FIELDS) {
    if (!(field in body)) continue;
    const value = body[field];
    if (value === null || value === "") {
      changes[field] = null;
      continue;
    }
    // Kept as given (placeholders readable in /domains); the Location sent is serialized when it is filled in.
    const checked = checkLongUrl(value);
    if ("problem" in checked) problems.push({ field, reason: checked.problem });
    else if (new URL(checked.url).host.includes("{")) problems.push({ field, reason: PLACEHOLDER_IN_HOST });
    else changes[field] = value as string;
  }
  if (problems.length > 0) throw invalidData(problems);
  return { domain: domain as string, changes };
}

const fromRow = (row: DomainRedirectRow | null): NotFoundRedirects =>
  row === null
    ? NO_REDIRECTS
    : {
        baseUrlRedirect: row.base_url_redirect,
        regular404Redirect: row.regular_404_redirect,
        invalidShortUrlRedirect: row.invalid_short_url_redirect,
      };

/**
 * A redirect with `{DOMAIN}` and `{ORIGINAL_PATH}` filled in: as they are in its path (no doubled slash), encoded as a
 * query value in its query; the result is WHATWG-serialized (URL parsing percent-encodes a placeholder in the path).
 */
export function fillPlaceholders(redirect: string, domain: string, path: string): string {
  const url = new URL(redirect);
  if (!redirect.includes("DOMAIN") && !redirect.includes("ORIGINAL_PATH")) return url.href;
  const fill = (text: string, value: (raw: string) => string) =>
    text.replace(/\{DOMAIN\}|%7BDOMAIN%7D/gi, value(domain)).replace(/\{ORIGINAL_PATH\}|%7BORIGINAL_PATH%7D/gi, value(path));
  const filledPath = fill(url.pathname, (v) => v).replace(/\/{2,}/g, "/");
  return `${url.origin}${filledPath}${fill(url.search, encodeURIComponent)}${url.hash}`;
}

export class NotFoundRedirectService {
  constructor(
    private readonly deps: {
      store: DomainRedirectStore;
      writes: GroupCommit;
      /** The settings' redirects, for every domain that sets none of its own. */
      defaults: NotFoundRedirects;
      /** The stored key of a domain: '' for the default domain. */
      domainKey: (domain: string) => string;
      /** Throws when this key may not change settings, or this node refuses writes (as for links). */
      assertCanWrite: (key: ApiKey) => void;
      /** Records who changed a domain's redirects, from what to what, in the change's transaction. */
      audit?: AuditLog;
    },
  ) {}

  /** Where a visitor of `host` who found nothing of `type` goes (placeholders filled), or null: the 404 page. */
  target(type: NotFoundType, host: string, path: string): string | null {
    const redirect = this.applied(fromRow(this.deps.store.find(this.deps.domainKey(host))))[FIELD[type]];
    return redirect === null ? null : fillPlaceholders(redirect, host, path);
  }

  /** A domain's redirects as they apply: its own where it sets one, else the setting's. */
  applied(own: NotFoundRedirects): NotFoundRedirects {
    const { defaults } = this.deps;
    return {
      baseUrlRedirect: own.baseUrlRedirect ?? defaults.baseUrlRedirect,
      regular404Redirect: own.regular404Redirect ?? defaults.regular404Redirect,
      invalidShortUrlRedirect: own.invalidShortUrlRedirect ?? defaults.invalidShortUrlRedirect,
    };
  }

  /** Every domain's own redirects, by stored key. */
  all(): Map<string, NotFoundRedirects> {
    return new Map(this.deps.store.all().map((row) => [row.domain, fromRow(row)]));
  }

  get defaults(): NotFoundRedirects {
    return this.deps.defaults;
  }

  /** Sets the redirects given for a domain (keeping the others); answers the domain's own redirects after. */
  async edit(input: DomainRedirectsInput, key: ApiKey): Promise<NotFoundRedirects> {
    this.deps.assertCanWrite(key);
    const domain = this.deps.domainKey(input.domain);
    const saved = await this.deps.writes
      .run(() => {
        const before = fromRow(this.deps.store.find(domain));
        const next = { ...before, ...input.changes };
        // As for links, a change that changes nothing is not one.
        if (JSON.stringify(before) !== JSON.stringify(next)) {
          this.deps.audit?.record(keyActor(key), "domain.redirects-edited", `domain ${input.domain}`, { from: before, to: next });
        }
        this.deps.store.save({
          domain,
          base_url_redirect: next.baseUrlRedirect,
          regular_404_redirect: next.regular404Redirect,
          invalid_short_url_redirect: next.invalidShortUrlRedirect,
        });
        return next;
      })
      .catch(rethrowUnconfirmed());
    return saved;
  }
}
