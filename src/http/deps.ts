/** What the HTTP layer needs from the composition root; app.ts provides it. */
import type { Config } from "../config";
import type { ApiKeyService } from "../domain/api-keys";
import type { AuditLog } from "../domain/audit-log";
import type { DomainService } from "../domain/domains";
import type { LinkPasswords } from "../domain/link-passwords";
import type { LinkResolver } from "../domain/link-resolver";
import type { LiveFeed } from "../domain/live-feed";
import type { NotFoundRedirectService } from "../domain/not-found-redirects";
import type { RedirectRuleService } from "../domain/redirect-rule-service";
import type { ReplicationLag } from "../domain/replication-lag";
import type { ShortUrlService } from "../domain/short-urls";
import type { TagService } from "../domain/tags";
import type { VisitBuffer } from "../domain/visit-buffer";
import type { VisitQueryService } from "../domain/visit-queries";
import type { WebhookService } from "../domain/webhooks";
import type { Metrics } from "../telemetry/metrics";
import type { Tracing } from "../telemetry/tracing";
import type { MercureTokens } from "./realtime/mercure-token";

/** Process state that HTTP and operations share. */
export interface Lifecycle {
  draining: boolean;
}

export interface HttpDeps {
  config: Readonly<Config>;
  lifecycle: Lifecycle;
  resolver: LinkResolver;
  /** Checks passwords of password-protected links, within their attempt limits. */
  linkPasswords: LinkPasswords;
  /** Where the public listener records visits (redirects and orphan visits). */
  visits: VisitBuffer;
  shortUrls: ShortUrlService;
  /** Shlink's dynamic redirect rules of a link. */
  redirectRules: RedirectRuleService;
  /** Where visitors who find nothing are sent instead of the 404 page (Shlink's "not found redirects"). */
  notFoundRedirects: NotFoundRedirectService;
  /** The domains /domains lists and whose visits may be asked for. */
  domains: DomainService;
  tags: TagService;
  /** Reads and deletes visits (Shlink's visits API). */
  visitQueries: VisitQueryService;
  apiKeys: ApiKeyService;
  /** Who changed what, when: the audit history every write records into. */
  audit: AuditLog;
  webhooks: WebhookService;
  /** The real-time feed (Mercure hub) and the tokens that subscribe to it. */
  liveFeed: LiveFeed;
  mercureTokens: MercureTokens;
  metrics: Metrics;
  tracing: Tracing;
  /** Non-default domains that hold links; redirects only read the Host header when this is not empty. */
  customDomains: Set<string>;
  /** True when the database answers a trivial query. */
  databaseUsable(): boolean;
  /** On a standby, why it cannot serve its copy of the replica (schema, a replaced file); null when it can (always on a primary). */
  replicaProblem(): string | null;
  /** The replica's lag (RPO guard), when the primary replicates with Litestream; null otherwise. */
  replication: ReplicationLag | null;
}
