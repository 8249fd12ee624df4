/**
 * The domains Shlink's API knows: the default domain, and each other domain from the two places it lives here, the
 * links that use it and the redirects set for it (a domain_redirects row, which stays when they are all cleared, as
 * Shlink's domains row does). /domains and a domain's visits read them from here, so they agree. Never sees HTTP.
 */
import { domainNotFound } from "../errors";
import { NO_REDIRECTS, type NotFoundRedirectService, type NotFoundRedirects } from "./not-found-redirects";
import type { ShortUrlService } from "./short-urls";

/** One row of `GET /domains` (Shlink's shape). */
export interface DomainItem {
  domain: string;
  isDefault: boolean;
  redirects: NotFoundRedirects;
}

const setsARedirect = (r: NotFoundRedirects) =>
  r.baseUrlRedirect !== null || r.regular404Redirect !== null || r.invalidShortUrlRedirect !== null;

export class DomainService {
  constructor(
    private readonly deps: {
      shortUrls: Pick<ShortUrlService, "domains" | "domainKey">;
      redirects: Pick<NotFoundRedirectService, "all" | "applied">;
      /** The default domain's host, as listed. */
      defaultDomain: string;
    },
  ) {}

  /**
   * As Shlink lists them: the default domain first, with its redirects as they apply; then, by authority ascending,
   * every other domain that holds links or sets at least one redirect (one whose redirects were all cleared is left
   * out, as Shlink's findDomains leaves it out).
   */
  list(): DomainItem[] {
    const own = this.deps.redirects.all();
    const withRedirects = [...own].filter(([domain, redirects]) => domain !== "" && setsARedirect(redirects)).map(([domain]) => domain);
    // Shlink's findDomains orders by authority; stored domains are lower-case hosts, so code-unit order is SQLite's.
    const others = [...new Set([...this.deps.shortUrls.domains(), ...withRedirects])].sort();
    return [
      { domain: this.deps.defaultDomain, isDefault: true, redirects: this.deps.redirects.applied(own.get("") ?? NO_REDIRECTS) },
      ...others.map((domain) => ({ domain, isDefault: false, redirects: own.get(domain) ?? NO_REDIRECTS })),
    ];
  }

  /**
   * The stored key ('' for the default domain: DEFAULT or its host) of a domain whose visits are asked for. Throws
   * domain-not-found only for a domain that exists nowhere, as Shlink: one that holds no links and never had
   * redirects set. Every domain `list` shows exists.
   */
  visitsKey(authority: string): string {
    const key = this.deps.shortUrls.domainKey(authority);
    if (key === "" || this.deps.shortUrls.domains().includes(key) || this.deps.redirects.all().has(key)) return key;
    throw domainNotFound(authority);
  }
}
