/** A link's redirect rules through the API: read them, or replace them all at once, as Shlink does. Never sees HTTP. */
import { shortUrlNotFound } from "../errors";
import type { GroupCommit } from "../storage/group-commit";
import type { RedirectRuleStore } from "../storage/redirect-rule-store";
import type { ShortUrlStore } from "../storage/short-url-store";
import type { ApiKey } from "./api-keys";
import { type AuditLog, keyActor } from "./audit-log";
import type { LinkResolver } from "./link-resolver";
import { type RedirectRule, type RedirectRuleInput, rowsFromRules, rulesFromRows } from "./redirect-rules";
import type { ShortUrlService } from "./short-urls";
import { rethrowUnconfirmed } from "./unconfirmed-write";

/** Shlink's answer to both endpoints: the link's own long URL, and its rules in priority order. */
export interface RedirectRules {
  defaultLongUrl: string;
  redirectRules: RedirectRule[];
}

export class RedirectRuleService {
  constructor(
    private readonly deps: {
      writes: GroupCommit;
      shortUrls: ShortUrlStore;
      rules: RedirectRuleStore;
      resolver: LinkResolver;
      /** Domain keys and the write guard of the links themselves. */
      links: ShortUrlService;
      /** Records who replaced a link's rules, and the rules before and after, in the change's transaction. */
      audit?: AuditLog;
    },
  ) {}

  get(shortCode: string, domain: string | null | undefined): RedirectRules {
    const domainKey = this.deps.links.domainKey(domain);
    const row = this.deps.shortUrls.find(domainKey, shortCode);
    if (row === null) throw shortUrlNotFound(shortCode, domainKey === "" ? null : domainKey);
    return { defaultLongUrl: row.long_url, redirectRules: rulesFromRows(this.deps.rules.forLink(row.id)) };
  }

  /**
   * Replaces every rule of the link with `rules` (priority in the order given; [] removes them). The link's cache
   * entry is dropped in the same write, so the next redirect follows the new rules.
   */
  async set(
    shortCode: string,
    domain: string | null | undefined,
    rules: readonly RedirectRuleInput[],
    key: ApiKey,
  ): Promise<RedirectRules> {
    this.deps.links.assertCanWrite(key);
    const domainKey = this.deps.links.domainKey(domain);
    await this.deps.writes
      .run(() => {
        const row = this.deps.shortUrls.find(domainKey, shortCode);
        if (row === null) throw shortUrlNotFound(shortCode, domainKey === "" ? null : domainKey);
        const before = rulesFromRows(this.deps.rules.forLink(row.id));
        this.deps.rules.replace(row.id, rowsFromRules(rules));
        const after = rulesFromRows(this.deps.rules.forLink(row.id));
        this.deps.audit?.record(
          keyActor(key),
          "short-url.redirect-rules-set",
          { domain: domainKey, shortCode },
          { from: before, to: after },
        );
        this.deps.resolver.changed(domainKey, shortCode);
      })
      .catch(rethrowUnconfirmed());
    return this.get(shortCode, domainKey === "" ? null : domainKey);
  }
}
