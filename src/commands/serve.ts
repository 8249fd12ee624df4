import { createApp } from "../app";
import { type Config, loadConfig, settingName, unknownSettingVariables } from "../config";
import { LeaseKeeper } from "../domain/lease-keeper";
import { watchLinkChanges } from "../domain/link-change-watch";
import { FLUSH_CHUNK_MAX_VISITS } from "../domain/visit-buffer";
import { startSaltChain } from "../domain/visit-recorder";
import { startVisitRetention } from "../domain/visit-retention";
import { SettingError } from "../errors";
import { startOpsServer } from "../http/ops-server";
import { startPublicServer } from "../http/public-server";
import type { ParsedArgs } from "../lib/args";
import { idleThreadsNamed, RUNTIME_BACKGROUND_THREADS } from "../lib/thread-priority";
import { startYoungCollections } from "../lib/young-collections";
import { refuseEmptyDatabaseOverReplica } from "../ops/replica-guard";
import { LinkChangeStore } from "../storage/link-change-store";
import { controlSocketFor, LitestreamConfigError, leaseLocationFor, shipmentLocationFor } from "../storage/litestream-config";
import { promotedHere, ReplicaEnvError, readReplicaEnv } from "../storage/replica-epoch";
import { LeaseStore } from "../storage/replica-lease";
import { importedSince, ShipmentLedger } from "../storage/shipment-ledger";
import { ShipmentStore } from "../storage/shipment-store";
import { VisitStore } from "../storage/visit-store";
import { FailureStreak } from "../telemetry/failure-streak";
import { describeError, flushLogs, log } from "../telemetry/logger";
import { attachReplicaMetrics } from "../telemetry/replica-metrics";
import { tracingSummary } from "../telemetry/tracing";
import { VERSION } from "../version";
import type { Command } from "./command";
import { openWhenSpace } from "./disk-wait";
import { createDrain } from "./drain-sequence";
import { replicaCopyReady, watchReplicaCopy } from "./standby";
import { startVisitShipping } from "./visit-shipping";

/** How often the domains that hold links are read again (see domainsTimer). */
const DOMAINS_REFRESH_MS = 2000;
/** How often a standby looks whether Litestream has changed its copy (PRAGMA data_version: no I/O beyond a lock). */
const REPLICA_WATCH_MS = 100;

const SIGNAL_IGNORED_HINT =
  "settings are read at start only: apply new ones by restarting through the blue/green swap (runbooks/draining-a-node.md); SIGTERM stops the server";

function listenError(error: unknown, setting: string, address: { hostname: string; port: number }): Error {
  const code = (error as { code?: string }).code;
  const why = code === "EADDRINUSE" ? "address already in use" : error instanceof Error ? error.message : String(error);
  return new Error(`cannot listen on ${address.hostname}:${address.port} (${setting}): ${why}`);
}

/** A Litestream config that cannot be read or does not list the database, as the bad --replication setting it is. */
function asReplicationSetting(error: unknown, args: ParsedArgs): unknown {
  if (!(error instanceof LitestreamConfigError)) return error;
  return new SettingError(settingName("replication", args.flags, process.env), `litestream: ${error.message}`);
}

/**
 * With --replication litestream: the control socket of the Litestream that replicates this database, read from
 * --litestream-config (expanded with this process's environment, as Litestream expands it). A config that cannot
 * be read, does not list the database, or has no socket is a bad setting: exit 1, as systemd must not retry it.
 */
function litestreamSocket(config: Readonly<Config>, args: ParsedArgs): string | null {
  if (config.replication !== "litestream") return null;
  try {
    return controlSocketFor(config.litestreamConfig, config.databasePath, process.env);
  } catch (error) {
    throw asReplicationSetting(error, args);
  }
}

/**
 * With --replication litestream, on a replica on S3: its bucket, where a standby puts its visits and the primary
 * takes them (domain/visit-shipment.ts); null otherwise. Errors are bad settings, as above.
 */
function shipmentStore(config: Readonly<Config>, args: ParsedArgs): ShipmentStore | null {
  if (config.replication !== "litestream") return null;
  try {
    const location = shipmentLocationFor(config.litestreamConfig, config.databasePath, process.env);
    return location === null ? null : new ShipmentStore(location);
  } catch (error) {
    throw asReplicationSetting(error, args);
  }
}

/**
 * With --replication litestream, on a primary whose replica has epochs (its path ends in epoch-${REPLICA_EPOCH}):
 * its hold on the replica lease, from its replica.env; null otherwise. Errors are bad settings, as above.
 */
function leaseKeeper(config: Readonly<Config>, args: ParsedArgs): LeaseKeeper | null {
  if (config.replication !== "litestream" || config.role !== "primary") return null;
  try {
    const location = leaseLocationFor(config.litestreamConfig, config.databasePath, process.env);
    return location === null ? null : new LeaseKeeper(new LeaseStore(location), readReplicaEnv(config.dataDir), config.leaseTermMs);
  } catch (error) {
    if (error instanceof ReplicaEnvError) throw new SettingError(settingName("dataDir", args.flags, process.env), error.message);
    throw asReplicationSetting(error, args);
  }
}

/** The epoch in the data dir's replica.env now (promote and lease follow rewrite it under a running node), or null. */
function replicaEpoch(dataDir: string): number | null {
  try {
    return readReplicaEnv(dataDir)?.epoch ?? null;
  } catch (error) {
    if (error instanceof ReplicaEnvError) return null;
    throw error;
  }
}

export const serve: Command = {
  name: "serve",
  usage: "shortener serve [--role primary|standby] [--listen HOST:PORT] [--ops-listen HOST:PORT] [--data-dir DIR] [--base-url URL]",
  summary: "run the server",
  async run(args) {
    const startedAt = Date.now();
    const config = loadConfig(args.flags, process.env);
    const socket = litestreamSocket(config, args);
    const lease = leaseKeeper(config, args);
    // Writes wait for the first look at the lease; until it is confirmed they are refused (503), redirects are not.
    await lease?.start();
    if (config.role === "primary") await refuseEmptyDatabaseOverReplica(config, process.env);
    else if (!(await replicaCopyReady(config.databasePath))) return 0;
    const ctx = await openWhenSpace(
      () =>
        createApp(config, {
          litestreamSocket: socket,
          lease,
          shipments: shipmentStore(config, args),
          onMigration: (event) =>
            event.kind === "starting"
              ? log.info("schema_migrating", { version: event.version })
              : log.info("schema_migrated", { version: event.version, duration_ms: Math.round(event.durationMs) }),
        }),
      config.dataDir,
    );
    attachReplicaMetrics(ctx.metrics.registry, {
      epoch: () => replicaEpoch(config.dataDir),
      lease: () => lease?.status() ?? null,
      promoted: () => (config.role === "standby" ? promotedHere(config.dataDir) : null),
    });
    // Visit flush chunks on a thread that runs only when this one has nothing to do (src/domain/visit-writer.ts),
    // started before the listener: once /readyz answers, a SIGTERM must find its handler.
    // A standby writes no visits (app.ts): it has no writer thread, and no flush timer below; its spool spills them
    // on a thread of its own, started with the first spill (src/domain/visit-spool.ts).
    // A primary stores a new database's first visitor salt at once, so a standby's copy holds the chain before the
    // first visit counts: a visitor it serves counts once with the primary's (src/domain/visitor-salt.ts). A full disk
    // or a lock held too long only leaves that to the first visit's flush, as before.
    try {
      if (config.role === "primary") startSaltChain(new VisitStore(ctx.db));
    } catch (error) {
      log.warn("visitor_salt_not_stored", describeError(error));
    }
    try {
      if (config.role === "primary") {
        await ctx.visitWriter.start();
        ctx.visits.useWriter(ctx.visitWriter);
      }
    } catch (error) {
      log.warn("visit_writer_failed", { ...describeError(error), hint: "visits are written on the event loop from now on" });
    }
    // A primary takes standbys' shipments on a thread of its own too, started with the first shipment it finds
    // (src/domain/visit-inbox.ts).
    // In a blue/green overlap the other colour writes links too: their codes leave this cache within 100 ms of the
    // commit (domain/link-change-watch.ts). The watch starts before serving, so no change after the first cached link is missed.
    const changesTimer = config.role === "primary" ? watchLinkChanges(new LinkChangeStore(ctx.db), ctx.shortUrls) : undefined;
    let publicServer: ReturnType<typeof startPublicServer>;
    try {
      publicServer = startPublicServer(ctx);
    } catch (error) {
      clearInterval(changesTimer);
      await ctx[Symbol.asyncDispose]();
      throw listenError(error, "--listen", config.listen);
    }
    // Buffered visits are written in chunks that yield between them, so redirects never wait behind a whole
    // second's flush; a run still going when the next tick comes is not started twice. --visit-flush-interval is
    // the longest a counted visit may wait in memory (what a kill -9 can lose), so the runs start every half of it:
    // a late tick or a run slowed by commits in between (a loaded machine) still lands within the interval.
    let flushing = false;
    const flushFailures = new FailureStreak("visit_flush");
    const flushTimer =
      config.role === "standby"
        ? undefined
        : setInterval(() => {
            if (flushing) return;
            flushing = true;
            const started = performance.now();
            ctx.visits
              // A run still going after a quarter of the interval is behind: the writer's thread must then get the CPU.
              .flushInChunks(FLUSH_CHUNK_MAX_VISITS, undefined, config.visitFlushMs / 4)
              .then(
                (written) => {
                  if (written > 0) {
                    ctx.metrics.recordVisitFlush((performance.now() - started) / 1000);
                    // Between flush runs nothing else writes for a while: the checkpoint can finish and the WAL start over.
                    // The visit writer's thread, while it writes them, checkpoints after its chunks itself.
                    if (!ctx.visitWriter.usable) ctx.checkpointer?.afterWrites();
                  }
                  flushFailures.succeeded({ depth: ctx.visits.depth });
                },
                (error) => {
                  ctx.metrics.recordVisitFlushFailure();
                  flushFailures.failed({ depth: ctx.visits.depth, details_dropped: ctx.visits.detailsDropped, ...describeError(error) });
                },
              )
              .finally(() => {
                flushing = false;
              });
          }, config.visitFlushMs / 2);
    // A young collection every second, as Bun's GC timer runs them until it backs off (src/lib/young-collections.ts).
    const youngCollections = startYoungCollections();
    // The allocator's scavenger and JavaScriptCore's warm-up helper run when the event loop idles (lib/thread-priority.ts).
    idleThreadsNamed(RUNTIME_BACKGROUND_THREADS);
    // The primary rewrites one heartbeat row every second, so a replica's age (RPO) is measurable. A beat waiting for
    // another process's write lock is not joined by the next. A primary without the replica lease (never taken, or
    // moved on) beats no more: its Litestream may still upload into its old epoch, and a standby left following that
    // epoch must see its copy age (ShortenerStandbyBehind) rather than a live primary's pulse.
    let beating = false;
    const beatFailures = new FailureStreak("heartbeat");
    const heartbeatTimer =
      config.role === "primary"
        ? setInterval(() => {
            if (beating || lease?.problem() != null) return;
            beating = true;
            ctx.heartbeat
              .beat(Date.now())
              .then(
                () => beatFailures.succeeded(),
                (error) => beatFailures.failed(describeError(error)),
              )
              .finally(() => {
                beating = false;
              });
          }, 1000)
        : undefined;
    // `import db --visits` (another process) writes an old primary's later visits to links this server may have cached:
    // a batch of them in the ledger, seen at the domains look below, drops the cache, so the links' counts (maxVisits)
    // are read again. A standby's replica watch drops its cache at every change already.
    const ledger = new ShipmentLedger(ctx.db);
    let imported = config.role === "standby" ? null : ledger.importedBatches();
    // Links on a domain this server had none on are written by other processes too (`shortener import`, the other
    // colour during an upgrade): the domains are read again every few seconds (one index seek per domain), so their
    // Host is routed without a restart.
    const domainsTimer = setInterval(() => {
      for (const domain of ctx.shortUrls.domains()) ctx.customDomains.add(domain);
      if (imported === null) return;
      const batches = ledger.importedBatches();
      if (!importedSince(imported, batches)) return;
      imported = batches;
      ctx.shortUrls.forgetCached();
      log.info("imported_visits_noticed", {
        hint: "`import db` wrote visits to links here: cached links are read again, with their counts",
      });
    }, DOMAINS_REFRESH_MS);
    // A standby's copy changes under it as Litestream applies the primary's transactions: whatever it cached from
    // it (links, robots.txt) is dropped at the first look after each change, so it lags the replica by that much.
    const replicaTimer = config.role === "standby" ? watchReplicaCopy(ctx, REPLICA_WATCH_MS) : undefined;
    // With --replication litestream, the primary asks Litestream every second when it last uploaded (RPO guard).
    ctx.replication?.start(1000);
    ctx.checkpointer?.start();
    ctx.reader.start();
    // The primary sends the webhook outbox; a standby's copy is the primary's, which sends it. Nor does a primary without
    // the replica lease (never taken, or moved on) send it: the node that holds it sends the same outbox, same ids.
    if (config.role === "primary" && lease?.problem() == null) ctx.webhookDispatcher.start();
    lease?.onLost(() => void ctx.webhookDispatcher.stop());
    // Raw visit rows past --visits-retention, and deleted links' rows, are purged in the background by the primary.
    // Without Litestream, the purge gives the checkpointer a turn now and then, so the WAL starts over during it.
    const checkpointer = ctx.checkpointer;
    const settle = checkpointer === null ? undefined : () => checkpointer.catchUp();
    const retention =
      config.role === "primary" ? startVisitRetention(ctx.db, config.visitsRetentionMs, ctx.metrics, ctx.linkEvents, settle) : null;
    // A standby's visits go to the primary through the replica's bucket; the primary takes them (visit-shipping.ts).
    const shipping = startVisitShipping(ctx, config.visitFlushMs);
    const drain = createDrain(ctx, publicServer, async () => {
      void retention?.stop();
      clearInterval(flushTimer);
      clearInterval(heartbeatTimer);
      clearInterval(domainsTimer);
      clearInterval(replicaTimer);
      clearInterval(changesTimer);
      youngCollections.stop();
      ctx.replication?.stop();
      lease?.stop();
      await shipping.stop();
    });
    let opsServer: ReturnType<typeof startOpsServer>;
    try {
      opsServer = startOpsServer(ctx, { drain: (reason) => drain.start(reason), startedAt });
    } catch (error) {
      clearInterval(flushTimer);
      clearInterval(heartbeatTimer);
      clearInterval(domainsTimer);
      clearInterval(replicaTimer);
      clearInterval(changesTimer);
      youngCollections.stop();
      lease?.stop();
      await retention?.stop();
      await shipping.stop();
      await publicServer.stop(true);
      await ctx[Symbol.asyncDispose]();
      throw listenError(error, "--ops-listen", config.opsListen);
    }

    log.info("started", {
      version: VERSION,
      role: config.role,
      listen: `${publicServer.hostname}:${publicServer.port}`,
      ops_listen: `${opsServer.hostname}:${opsServer.port}`,
      database: config.databasePath,
      replication: config.replication,
      durability: config.durability,
      tracing: tracingSummary(config),
    });
    for (const unknown of unknownSettingVariables(process.env)) {
      log.warn("unknown_setting_variable", {
        name: unknown.name,
        hint: `no setting reads it${unknown.closest === null ? "" : `: did you mean ${unknown.closest}?`} (\`shortener help\` lists them; the setting keeps its default)`,
      });
    }
    if (ctx.apiKeys.activeCount() === 0) {
      log.warn("no_api_keys", { hint: `create one with: shortener keys create --name admin --data-dir ${config.dataDir}` });
    }

    const exit = Promise.withResolvers<number>();
    let signals = 0;
    const onSignal = (signal: string) => {
      signals++;
      if (signals > 1) {
        log.warn("forced_exit", { signal });
        flushLogs();
        process.exit(70);
      }
      void drain.start(signal);
    };
    process.on("SIGTERM", () => onSignal("SIGTERM"));
    process.on("SIGINT", () => onSignal("SIGINT"));
    // Left to Bun, SIGHUP, SIGUSR1 and SIGUSR2 end the process on the spot, its last second of visits unwritten; and
    // systemd counts a SIGHUP death as a clean exit, so Restart=on-failure leaves the node down. A hangup of the
    // terminal a server was started from stops it as SIGINT would. Elsewhere they are reload or reopen requests this
    // server has no use for (settings are read at start, logs go to stdout): logged, and ignored.
    const fromTerminal = process.stdin.isTTY || process.stdout.isTTY || process.stderr.isTTY;
    const ignore = (signal: string) => log.warn("signal_ignored", { signal, hint: SIGNAL_IGNORED_HINT });
    process.on("SIGHUP", () => (fromTerminal ? onSignal("SIGHUP") : ignore("SIGHUP")));
    process.on("SIGUSR1", () => ignore("SIGUSR1"));
    process.on("SIGUSR2", () => ignore("SIGUSR2"));
    // However the drain started, the process ends once it is done and the ops listener has answered
    // (stop(false) waits for the drain request's own response).
    drain.done.then(
      async () => {
        await opsServer.stop(false);
        exit.resolve(0);
      },
      async (error) => {
        // What was still buffered is lost with the process: say how much.
        log.error("drain_failed", { unwritten_visits: ctx.visits.depth, ...describeError(error) });
        flushLogs();
        await opsServer.stop(true);
        exit.resolve(70);
      },
    );
    return exit.promise;
  },
};
