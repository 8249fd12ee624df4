/**
 * The composition root: builds database, tracing, stores, cache, visit buffer and services from a Config. `serve`
 * starts what this builds; `check` builds it and inspects it. Nothing else opens the database.
 */
import type { Database } from "bun:sqlite";
import type { Config } from "./config";
import { ApiKeyService } from "./domain/api-keys";
import { AuditLog } from "./domain/audit-log";
import { DomainService } from "./domain/domains";
import type { LeaseKeeper } from "./domain/lease-keeper";
import type { LinkEventListener } from "./domain/link-events";
import { LinkPasswords } from "./domain/link-passwords";
import { LinkResolver } from "./domain/link-resolver";
import { LIVE_FEED_DEFAULTS, LiveFeed } from "./domain/live-feed";
import { NotFoundRedirectService } from "./domain/not-found-redirects";
import { RedirectRuleService } from "./domain/redirect-rule-service";
import { ReplicationLag } from "./domain/replication-lag";
import { ShortUrlService } from "./domain/short-urls";
import { TagService } from "./domain/tags";
import { FLUSH_CHUNK_MAX_VISITS, VisitBuffer } from "./domain/visit-buffer";
import type { VisitInbox } from "./domain/visit-inbox";
import { visitLocator } from "./domain/visit-location";
import { VisitQueryService } from "./domain/visit-queries";
import { privacySettings, VisitRecorder } from "./domain/visit-recorder";
import { visitShipping } from "./domain/visit-shipping";
import { StandbyVisitBuffer, type VisitSpool } from "./domain/visit-spool";
import { VisitWriter } from "./domain/visit-writer";
import { proxyConfigured } from "./domain/webhook-targets";
import { WebhookService } from "./domain/webhooks";
import { WebhookDispatcher } from "./domain/webhooks-dispatcher";
import { publicShortUrl, WebhookOutbox } from "./domain/webhooks-outbox";
import { SettingError, unavailable } from "./errors";
import type { HttpDeps } from "./http/deps";
import { LiveLinkPublisher, LiveVisitPublisher } from "./http/realtime/live-publishers";
import { MercureTokens } from "./http/realtime/mercure-token";
import { shortUrlJson } from "./http/short-url-json";
import { coalesced } from "./lib/coalesced";
import { ApiKeyStore } from "./storage/api-key-store";
import { AuditStore } from "./storage/audit-store";
import { BackgroundReader } from "./storage/background-reader";
import { BackgroundCheckpointer, type CheckpointerEvents } from "./storage/checkpointer";
import { BUSY_TIMEOUT_MS, openDatabase, usableCheck } from "./storage/database";
import { DomainRedirectStore } from "./storage/domain-redirect-store";
import { readDrillStatus } from "./storage/drill-record";
import { GroupCommit } from "./storage/group-commit";
import { HeartbeatStore } from "./storage/heartbeat-store";
import { LinkChangeStore } from "./storage/link-change-store";
import { LinkPasswordStore } from "./storage/link-password-store";
import { LitestreamClient } from "./storage/litestream-client";
import type { MigrationEvent } from "./storage/migrations";
import { RedirectRuleStore } from "./storage/redirect-rule-store";
import { copyProblem, isFollowedCopy } from "./storage/replica-copy";
import type { ShipmentStore } from "./storage/shipment-store";
import { ShortUrlStore } from "./storage/short-url-store";
import { TagStore } from "./storage/tag-store";
import { VisitDeletionStore } from "./storage/visit-deletion-store";
import { VisitQueryStore } from "./storage/visit-query-store";
import { VisitStore } from "./storage/visit-store";
import { WebhookStore } from "./storage/webhook-store";
import { FailureStreak } from "./telemetry/failure-streak";
import { describeError, log } from "./telemetry/logger";
import { Metrics } from "./telemetry/metrics";
import { diskFreeBytes, fileSize, openConnections } from "./telemetry/system-stats";
import { startTracing } from "./telemetry/tracing";
import { COMMIT, VERSION } from "./version";

export interface AppContext extends HttpDeps, AsyncDisposable {
  db: Database;
  visits: VisitBuffer;
  heartbeat: HeartbeatStore;
  /** Listeners told of every link change (webhook outbox, real-time feed); register before serving. */
  linkEvents: LinkEventListener[];
  /** Sends the webhook outbox; `serve` starts it on the primary, disposal stops it. */
  webhookDispatcher: WebhookDispatcher;
  /** WAL checkpoints on a worker thread, when no Litestream owns them; `serve` starts it, disposal stops it. */
  checkpointer: BackgroundCheckpointer | null;
  /** Writes the visit flush's chunks on a thread that runs only when the event loop's has nothing to do; `serve` starts
   * it and hands it to `visits` (until then, and if it fails, they are written here). Disposal stops it. */
  visitWriter: VisitWriter;
  /** The API's heavy reads on a worker thread; `serve` starts it (until then they run here), disposal stops it. */
  reader: BackgroundReader;
  /** A standby's visits on their way to the primary, and the primary's taking of them (one is null); `serve` runs them. */
  spool: VisitSpool | null;
  inbox: VisitInbox | null;
  /** On a standby: set once its copy has been replaced under its connection (readiness then fails). */
  replicaCopy: { replaced: boolean };
}

export interface CreateAppOptions {
  /**
   * Bring the database up to date: create it when missing, switch it to WAL, apply pending migrations (default
   * true, as `serve` needs). `check` passes false to inspect the database as found, without changing it.
   */
  migrate?: boolean;
  /** Litestream's control socket (serve, --replication litestream): the primary watches the replica's lag through it, and
   * with --durability replicated waits for Litestream's upload before acknowledging a link write. */
  litestreamSocket?: string | null;
  /** A primary's hold on the replica lease, when its replica has epochs: writes wait for it (domain/lease-keeper.ts). */
  lease?: LeaseKeeper | null;
  /** The replica's bucket, where a standby puts its visits and the primary takes them (storage/shipment-store.ts). */
  shipments?: ShipmentStore | null;
  /** Told before and after each schema migration applied at open; `serve` logs them (other commands keep stdout for results). */
  onMigration?: (event: MigrationEvent) => void;
}

/** How often the background checkpointer runs a PASSIVE checkpoint (when Litestream does not own them). */
const CHECKPOINT_INTERVAL_MS = 1000;

/** The size a WAL file is cut back to as it starts over, when the app owns checkpoints: ~2-4 s of writes at capacity. */
const WAL_SIZE_LIMIT_BYTES = 64 * 1024 * 1024;

/** How long replicated durability waits for Litestream to confirm an upload before answering 503. */
const REPLICATION_CONFIRM_TIMEOUT_SECONDS = 5;

export function createApp(config: Readonly<Config>, options: CreateAppOptions = {}): AppContext {
  const migrate = options.migrate ?? true;
  // Checkpoints never run inside a commit on the event loop: Litestream runs them when it replicates, the
  // background checkpointer (started by serve) otherwise.
  const ownsCheckpoints = config.replication !== "litestream" && config.role === "primary";
  // A standby reads the copy that Litestream's follow mode writes (storage/replica-copy.ts), and never writes to it.
  const standby = config.role === "standby";
  // A primary would switch that copy back to WAL and write into it while Litestream writes its pages: corrupt.
  if (!standby && isFollowedCopy(config.databasePath)) {
    const copy = `${config.databasePath} is a copy that \`litestream restore -f\` follows (its -txid file is beside it)`;
    throw new SettingError("--role", `primary, but ${copy}: on a standby VM set SHORTENER_ROLE=standby`);
  }
  const db = standby
    ? openDatabase(config.databasePath, { readonly: true, pageCache: false })
    : openDatabase(config.databasePath, {
        create: migrate,
        migrate,
        noAutomaticCheckpoints: true,
        walSizeLimitBytes: ownsCheckpoints ? WAL_SIZE_LIMIT_BYTES : undefined,
        onMigration: options.onMigration,
      });
  const tracing = startTracing(config);
  const shortUrlStore = new ShortUrlStore(db, tracing.tracer);
  const tagStore = new TagStore(db);
  const litestream = options.litestreamSocket ? new LitestreamClient(options.litestreamSocket, config.databasePath) : null;
  // Replicated durability: one sync-and-wait per committed batch, shared by every batch committed while one runs.
  const confirmUpload =
    litestream !== null && config.durability === "replicated"
      ? coalesced(async () => {
          await litestream.syncAndWait(REPLICATION_CONFIRM_TIMEOUT_SECONDS);
        })
      : null;
  const writes = new GroupCommit(db, tracing.tracer, undefined, confirmUpload);
  // The RPO guard runs on the primary only: a standby refuses writes anyway, and follows the replica instead.
  const replication =
    litestream !== null && config.role === "primary" ? new ReplicationLag(() => litestream.lastSyncAt(), config.maxReplicationLagMs) : null;
  const visits = new (standby ? StandbyVisitBuffer : VisitBuffer)(db, shortUrlStore, tracing.tracer, config.visitBufferLimit);
  // Config carries the privacy switches (PrivacySettings); --geoip-db locates visits at flush time.
  const locate = visitLocator(config.geoipDb);
  const visitStore = new VisitStore(db);
  const recorder = new VisitRecorder(visitStore, config, locate);
  // A standby's visits are counted here (a link's maxVisits holds), never written (its database is the primary's):
  // its spool ships them to the primary, whose inbox writes them (visitShipping below).
  if (!standby) visits.addSink(recorder);
  const redirectRuleStore = new RedirectRuleStore(db);
  // Who changed what: every service's writes record their event in the change's own transaction.
  const audit = new AuditLog(new AuditStore(db));
  const resolver = new LinkResolver(shortUrlStore, visits, config.cacheSize, redirectRuleStore, new LinkChangeStore(db));
  const linkPasswords = new LinkPasswords();
  const customDomains = new Set(shortUrlStore.domains());
  // The recorder hears of deletions in their transaction (a deleted link's buffered visits leave its domain's sums).
  const linkEvents: LinkEventListener[] = [recorder];
  // A standby refuses every write (DESIGN.md, Failover); a primary, link writes while the replica lags too far behind.
  const guardWrites =
    config.role === "standby"
      ? () => {
          throw unavailable("This node is a standby: it serves redirects but refuses writes. Send writes to the primary.", 5);
        }
      : () => {
          options.lease?.assertWritable();
          replication?.assertWritable();
        };
  const reader = new BackgroundReader(
    config.databasePath,
    { list: (filter, order, limit, offset) => shortUrlStore.list(filter, order, limit, offset), tagStats: () => tagStore.stats() },
    (message) => log.warn("reader_worker_failed", { error: message }),
    !standby,
  );
  const shortUrls = new ShortUrlService({
    writes,
    shortUrls: shortUrlStore,
    tags: tagStore,
    redirectRules: redirectRuleStore,
    passwords: { store: new LinkPasswordStore(db), hasher: linkPasswords },
    resolver,
    defaultDomain: config.defaultDomain,
    shortCodeLength: config.shortCodeLength,
    pendingVisits: (id) => visits.pendingFor(id),
    onDomainUsed: (domain) => customDomains.add(domain),
    guardWrites,
    linkEvents,
    listLinks: (filter, order, limit, offset) => reader.list(filter, order, limit, offset),
    openLinkList: (filter, order, limit, offset, batch) => reader.openList(filter, order, limit, offset, batch),
    visitFlushes: () => visits.commits,
    audit,
  });
  const notFoundRedirects = new NotFoundRedirectService({
    store: new DomainRedirectStore(db),
    writes,
    defaults: {
      baseUrlRedirect: config.baseUrlRedirect,
      regular404Redirect: config.regular404Redirect,
      invalidShortUrlRedirect: config.invalidShortUrlRedirect,
    },
    domainKey: (domain) => shortUrls.domainKey(domain),
    assertCanWrite: (key) => shortUrls.assertCanWrite(key),
    audit,
  });
  // Webhooks: events go into the outbox inside their change's transaction; the dispatcher sends them.
  const webhookStore = new WebhookStore(db);
  const dispatchFailures = new FailureStreak("webhook_dispatch");
  const webhookDispatcher = new WebhookDispatcher(webhookStore, {
    maxAttempts: config.webhookMaxAttempts,
    backoff: { baseMs: config.webhookRetryBaseMs, maxMs: config.webhookRetryMaxMs },
    timeoutMs: config.webhookTimeoutMs,
    userAgent: `shortener/${VERSION} (Standard Webhooks)`,
    onAttempt: (outcome, seconds) => metrics.recordWebhookDelivery(outcome, seconds),
    onError: (error) => dispatchFailures.failed(describeError(error)),
    onTick: () => dispatchFailures.succeeded(),
    tracer: tracing.tracer,
    allowLoopback: config.webhookAllowLoopback,
    proxied: (scheme) => proxyConfigured(process.env, scheme),
    onWebhookGone: (webhookId, url) => {
      outbox.invalidate();
      log.warn("webhook_disabled", { webhook_id: webhookId, url, reason: "the receiver answered 410 Gone" });
    },
  });
  const outbox = new WebhookOutbox(webhookStore, {
    linkJson: (shortUrl) => shortUrlJson(shortUrl, config.baseUrl),
    shortUrlOf: (code, domain) => publicShortUrl(config.baseUrl, code, domain),
    // The visit flush's privacy switches: a webhook never gets what the visits tables may not keep.
    privacy: config,
    onEnqueued: () => webhookDispatcher.wake(),
  });
  linkEvents.push(outbox);
  const visitWriter = new VisitWriter(
    {
      path: config.databasePath,
      walSizeLimitBytes: ownsCheckpoints ? WAL_SIZE_LIMIT_BYTES : undefined,
      privacy: privacySettings(config),
      geoipDb: config.geoipDb,
      baseUrl: config.baseUrl,
      // Checkpoints after its chunks, in SCHED_IDLE (domain/visit-writer-worker.ts); the checkpointer's timer waits then.
      checkpointEveryMs: ownsCheckpoints ? CHECKPOINT_INTERVAL_MS : null,
    },
    {
      enqueued: () => webhookDispatcher.wake(),
      checkpointed: (result) => {
        checkpointEvents.checkpointed(result);
        checkpointer?.postpone();
      },
      checkpointFailed: (message) => checkpointEvents.failed(message),
      failed: (message) => log.warn("visit_writer_failed", { error: message, hint: "visits are written on the event loop from now on" }),
    },
  );
  // In the deletion's transaction, like the recorder here: the writer's recorder must hear of it before its next chunk.
  linkEvents.push(visitWriter);
  if (!standby) visits.addSink(outbox);
  // The real-time feed (Mercure hub): told after visit flushes and link writes commit; builds nothing unsubscribed.
  const liveFeed = new LiveFeed({ ...LIVE_FEED_DEFAULTS, maxSubscribers: config.realtimeMaxSubscribers });
  if (liveFeed.enabled && !standby) {
    visits.addSink(new LiveVisitPublisher(liveFeed, shortUrls, config.baseUrl, config, locate));
    linkEvents.push(new LiveLinkPublisher(liveFeed, config.baseUrl));
  }
  const { spool, inbox } = visitShipping({
    ...{ db, settings: config, store: options.shipments ?? null, recorder, visitStore, links: shortUrlStore, buffer: visits, locate },
    ...{ outbox, wakeWebhooks: () => webhookDispatcher.wake(), resolver, writable: () => (options.lease?.problem() ?? null) === null },
  });
  const webhooks = new WebhookService({
    store: webhookStore,
    writes,
    guardWrites,
    onChange: () => outbox.invalidate(),
    onRequeue: () => webhookDispatcher.wake(),
    audit,
  });
  const heartbeat = new HeartbeatStore(db);
  // Whether a standby can serve its copy (storage/replica-copy.ts); commands/standby.ts sets `replaced`.
  const replicaCopy = { replaced: false };
  const replicaProblem = () => (standby ? copyProblem(db, replicaCopy) : (options.lease?.problem() ?? null));
  const lifecycle = { draining: false };
  const databaseUsable = usableCheck(db);
  const metrics = new Metrics({ version: VERSION, commit: COMMIT, bun: Bun.version });
  metrics.attach({
    cache: () => resolver.stats(),
    // A standby never writes what it counts (its spool ships the visits): not a backlog (ShortenerVisitBacklog).
    visitBufferDepth: () => (standby ? 0 : visits.depth),
    visitsUnrecorded: () => (visits instanceof StandbyVisitBuffer ? visits.dropped : 0),
    shipmentsWaiting: () => spool?.waiting ?? null,
    standbyVisitsTaken: () => inbox?.visitsTaken ?? 0,
    visitDetailsDropped: () => visits.detailsDropped,
    ready: () => !lifecycle.draining && databaseUsable() && replicaProblem() === null,
    draining: () => lifecycle.draining,
    // The public and ops listeners are the two sockets that are not connections.
    openConnections: () => openConnections(2),
    diskFreeBytes: () => diskFreeBytes(config.dataDir),
    databaseSizeBytes: () => fileSize(config.databasePath),
    walSizeBytes: () => fileSize(`${config.databasePath}-wal`),
    replicationLagSeconds: () => replication?.lagSeconds() ?? null,
    standbyCopyAgeSeconds: () => {
      const at = standby ? heartbeat.latest() : null;
      return at === null ? null : Math.max(0, Date.now() - at) / 1000;
    },
    drill: () => readDrillStatus(config.dataDir),
  });
  if (!standby) metrics.attachWebhooks({ backlog: () => webhookStore.backlog(), deadLetters: () => webhookStore.deadLetters() });
  metrics.attachRealtime(() => liveFeed.stats());
  // A checkpoint runs every second (on the visit writer's thread, or the checkpointer's): on a full disk each one fails.
  const checkpointFailures = new FailureStreak("checkpoint");
  const checkpointEvents: CheckpointerEvents = {
    checkpointed: (result) => {
      metrics.recordCheckpoint(result.seconds);
      checkpointFailures.succeeded();
    },
    failed: (message) => {
      metrics.recordCheckpointFailure();
      checkpointFailures.failed({ error: message });
    },
  };
  const checkpointer = !ownsCheckpoints ? null : new BackgroundCheckpointer(config.databasePath, CHECKPOINT_INTERVAL_MS, checkpointEvents);
  let closed = false;
  return {
    config,
    db,
    checkpointer,
    visitWriter,
    reader,
    spool,
    inbox,
    lifecycle,
    metrics,
    tracing,
    heartbeat,
    linkEvents,
    webhookDispatcher,
    webhooks,
    liveFeed,
    mercureTokens: new MercureTokens(),
    resolver,
    linkPasswords,
    visits,
    shortUrls,
    redirectRules: new RedirectRuleService({
      writes,
      shortUrls: shortUrlStore,
      rules: redirectRuleStore,
      resolver,
      links: shortUrls,
      audit,
    }),
    notFoundRedirects,
    domains: new DomainService({ shortUrls, redirects: notFoundRedirects, defaultDomain: config.defaultDomain }),
    tags: new TagService(tagStore, writes, guardWrites, () => reader.tagStats(), audit),
    visitQueries: new VisitQueryService({
      db,
      store: new VisitQueryStore(db),
      deletions: new VisitDeletionStore(db),
      shortUrls,
      tagExists: (name) => tagStore.exists(name),
      resolver,
      // In chunks, as serve's flush: a busy second's buffer written at once would stall redirects. A request waits
      // for another process's write lock as long as a link write does.
      flushPending: () => visits.flushInChunks(FLUSH_CHUNK_MAX_VISITS, BUSY_TIMEOUT_MS),
      guardWrites,
      audit,
    }),
    apiKeys: new ApiKeyService(new ApiKeyStore(db), { log: audit, transaction: (write) => db.transaction(write).immediate() }),
    audit,
    customDomains,
    databaseUsable,
    replicaProblem,
    replicaCopy,
    replication,
    /** In shutdown order: live-feed streams, probes, webhook requests, buffered visits, database, then spans (so the final flush's are sent). */
    async [Symbol.asyncDispose]() {
      if (closed) return;
      closed = true;
      liveFeed.close();
      metrics.stop();
      replication?.stop();
      await webhookDispatcher.stop();
      await checkpointer?.stop();
      // The writer's last chunk is written before the rest is written here.
      await visits.idle();
      await Promise.all([visitWriter.stop(), spool?.stop(), inbox?.stop()]);
      await reader.stop();
      try {
        if (!standby) visits.flush();
        db.close();
      } finally {
        await tracing.shutdown();
      }
    },
  };
}
