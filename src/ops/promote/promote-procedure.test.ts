import { Database } from "bun:sqlite";
import { describe, expect, test } from "bun:test";
import { existsSync, readdirSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { leaseStoresForFile } from "../../../test/support/s3";
import {
  promotionNotePath,
  ReplicaEnvError,
  readPromotionNote,
  readReplicaEnv,
  replicaEnvPath,
  writeReplicaEnv,
} from "../../storage/replica-epoch";
import { type Lease, LeaseStore, LeaseUnavailable } from "../../storage/replica-lease";
import { PromoteError } from "./promote-error";
import { type PromotePlan, runPromote, waitForLapse } from "./promote-procedure";

const stores = leaseStoresForFile();

const lease = (epoch: number, holder: string): Lease => ({ epoch, holder, renewedAt: new Date().toISOString(), termSeconds: 4 });

/** A data dir with a database holding one row that says which file it is, and a plan for promoting it. */
function node(): PromotePlan {
  const dataDir = stores.dir("promote-");
  const store = stores.store();
  const databasePath = join(dataDir, "shortener.db");
  return { store, databasePath, dataDir, litestreamConfig: "/nonexistent.yml", termMs: 4000, env: {}, progress: () => {} };
}

function database(path: string, which: string): void {
  const db = new Database(path, { create: true });
  db.run("CREATE TABLE which (name TEXT)");
  db.run("INSERT INTO which VALUES (?)", [which]);
  db.close();
}

function which(path: string): string {
  const db = new Database(path, { readonly: true });
  try {
    return (db.query("SELECT name FROM which").get() as { name: string }).name;
  } finally {
    db.close();
  }
}

/** A first primary's plan whose store creates the lease through `create` (given the real store); and that store. */
function firstPrimaryWith(create: (real: LeaseStore, lease: Lease) => Promise<string>): { plan: PromotePlan; real: LeaseStore } {
  const plan = node();
  database(plan.databasePath, "the first primary's");
  const real = plan.store;
  plan.store = new (class extends LeaseStore {
    override create(lease: Lease): Promise<string> {
      return create(real, lease);
    }
  })(real.location);
  return { plan, real };
}

describe("runPromote (real S3 server on loopback)", () => {
  test("finishes a promotion interrupted after it took the lease: swaps the restored file in, drops the -txid, names itself in replica.env", async () => {
    const plan = node();
    database(plan.databasePath, "the standby's copy");
    writeFileSync(`${plan.databasePath}-txid`, "0000000000000042\n");
    database(`${plan.databasePath}.promoted`, "restored from epoch 1");
    writeReplicaEnv(replicaEnvPath(plan.dataDir), { epoch: 1, holder: null }, "a standby of epoch 1");
    writeReplicaEnv(`${replicaEnvPath(plan.dataDir)}.promoting`, { epoch: 2, holder: "vm-b:/d:k2" }, "pending");
    await plan.store.create(lease(2, "vm-b:/d:k2"));

    const report = await runPromote(plan);
    expect(report).toMatchObject({ outcome: "resumed", epoch: 2, holder: "vm-b:/d:k2" });
    expect(which(plan.databasePath)).toBe("restored from epoch 1");
    expect(report.keptAside).toHaveLength(1);
    expect(which(report.keptAside[0] as string)).toBe("the standby's copy");
    expect(existsSync(`${plan.databasePath}-txid`)).toBe(false);
    expect(readReplicaEnv(plan.dataDir)).toEqual({ epoch: 2, holder: "vm-b:/d:k2" });
    expect(readdirSync(plan.dataDir).filter((name) => name.includes("promot"))).toEqual([]);
    // Run again: it holds the lease now.
    expect((await runPromote(plan)).outcome).toBe("already-primary");
  });

  test("will not take the first lease for a standby's copy: the primary takes epoch 1", async () => {
    const plan = node();
    database(plan.databasePath, "the standby's copy");
    writeFileSync(`${plan.databasePath}-txid`, "0000000000000042\n");
    await expect(runPromote(plan)).rejects.toThrow(PromoteError);
    await expect(runPromote(plan)).rejects.toThrow(/promote the primary first/);
    expect(await plan.store.read()).toBeNull();
    expect(readReplicaEnv(plan.dataDir)).toBeNull();
  });

  test("a first promotion keeps the database as it is and writes the holder it put in the lease", async () => {
    const plan = node();
    database(plan.databasePath, "the first primary's");
    const report = await runPromote(plan);
    expect(report).toMatchObject({ outcome: "first-primary", epoch: 1, restored: null, keptAside: [] });
    expect((await plan.store.read())?.lease).toMatchObject({ epoch: 1, holder: report.holder, termSeconds: 4 });
    expect(readReplicaEnv(plan.dataDir)).toEqual({ epoch: 1, holder: report.holder });
    expect(which(plan.databasePath)).toBe("the first primary's");
  });

  test("a lease write the store does not answer keeps the note: a second run finishes when the write had landed", async () => {
    // The PUT lands, and its answer is lost (a timeout, a reset connection).
    const { plan, real } = firstPrimaryWith(async (store, lease) => {
      await store.create(lease);
      throw new LeaseUnavailable("the answer was lost");
    });
    const unanswered = await runPromote(plan).catch((error: unknown) => error);
    expect(unanswered).toBeInstanceOf(PromoteError);
    expect((unanswered as Error).message).toContain("did not answer whether this node took the lease (the answer was lost)");
    expect((unanswered as Error).message).toContain("Run shortener promote again");
    const note = readPromotionNote(plan.dataDir);
    expect((await real.read())?.lease).toMatchObject({ epoch: 1, holder: note?.holder });
    expect(readReplicaEnv(plan.dataDir)).toBeNull();

    plan.store = real;
    const report = await runPromote(plan);
    expect(report).toMatchObject({ outcome: "resumed", epoch: 1, holder: note?.holder });
    expect(readReplicaEnv(plan.dataDir)).toEqual({ epoch: 1, holder: note?.holder ?? "" });
    expect(existsSync(promotionNotePath(plan.dataDir))).toBe(false);
    expect(which(plan.databasePath)).toBe("the first primary's");
  });

  test("…and starts over when it had not: a new holder takes the lease, and the note becomes replica.env", async () => {
    const { plan, real } = firstPrimaryWith(async () => {
      throw new LeaseUnavailable("connection refused");
    });
    await expect(runPromote(plan)).rejects.toThrow("did not answer whether this node took the lease (connection refused)");
    const stale = readPromotionNote(plan.dataDir);
    expect(stale?.epoch).toBe(1);
    expect(await real.read()).toBeNull();
    // What a promote over another holder's epoch restores beside the database goes with an untaken note.
    database(`${plan.databasePath}.promoted`, "restored by the run that never took the lease");

    plan.store = real;
    // Run again at once, the note could be a promote's still running on this node, waiting for its write's answer.
    await expect(runPromote(plan)).rejects.toThrow(/may still be running on this node: let it finish, or run this again in \d+ s/);
    expect(readPromotionNote(plan.dataDir)).toEqual(stale);
    const later = new Date(Date.now() - 20_000);
    utimesSync(promotionNotePath(plan.dataDir), later, later);
    const report = await runPromote(plan);
    expect(report.outcome).toBe("first-primary");
    expect(existsSync(`${plan.databasePath}.promoted`)).toBe(false);
    expect(which(plan.databasePath)).toBe("the first primary's");
    expect(report.holder).not.toBe(stale?.holder);
    expect((await real.read())?.lease.holder).toBe(report.holder);
    expect(readReplicaEnv(plan.dataDir)).toEqual({ epoch: 1, holder: report.holder });
    expect(existsSync(promotionNotePath(plan.dataDir))).toBe(false);
  });

  test("a lease taken by another node meanwhile is a clear no: the note goes, nothing changed", async () => {
    const { plan, real } = firstPrimaryWith(async (store, lease) => {
      await store.create({ ...lease, holder: "vm-a:/d:other" });
      return store.create(lease);
    });
    await expect(runPromote(plan)).rejects.toThrow("another node took the first lease at the same moment; nothing was changed");
    expect(existsSync(promotionNotePath(plan.dataDir))).toBe(false);
    expect(readReplicaEnv(plan.dataDir)).toBeNull();
    expect((await real.read())?.lease.holder).toBe("vm-a:/d:other");
  });

  test("a replica.env that is not one of ours stops it, naming the file", async () => {
    const plan = node();
    writeFileSync(replicaEnvPath(plan.dataDir), "REPLICA_EPOCH=zero\n");
    await expect(runPromote(plan)).rejects.toThrow(ReplicaEnvError);
    await expect(runPromote(plan)).rejects.toThrow(`${replicaEnvPath(plan.dataDir)} has no REPLICA_EPOCH=N`);
  });
});

describe("waitForLapse: a lease store that does not always answer", () => {
  /**
   * A plan whose store fails the reads `failing` picks (by their number from 1, and the ms since this returned), with
   * the lease of a dead primary (a term of `termSeconds`). The wait reads every 0.5 s.
   */
  async function lapsing(failing: (read: number, ms: number) => boolean, termSeconds = 1) {
    const plan = node();
    const real = plan.store;
    await real.create({ ...lease(1, "vm-a:/d:dead"), termSeconds });
    const seen = await real.read();
    if (seen === null) throw new Error("the lease was just written");
    let reads = 0;
    let from = 0;
    plan.store = new (class extends LeaseStore {
      override async read() {
        if (failing(++reads, performance.now() - from)) throw new LeaseUnavailable("connection reset");
        return super.read();
      }
    })(real.location);
    const lines: string[] = [];
    plan.progress = (line) => lines.push(line);
    from = performance.now();
    return { plan, seen, lines, reads: () => reads };
  }

  test("reads that fail within the term are tried again: the lapse is still seen, by a read begun after the term", async () => {
    const { plan, seen, lines } = await lapsing((read) => read === 1 || read === 2);
    const waited = await waitForLapse(plan, seen);
    expect(waited).toBeGreaterThan(1);
    expect(lines).toEqual([
      expect.stringContaining("waiting 1s for the lease of vm-a:/d:dead"),
      expect.stringContaining("did not answer ("),
    ]);
  });

  test("a read after the term that fails does not count: it waits for one that answers", async () => {
    // A 2 s term; every read begun from 1.8 s to 2.8 s fails: the first that answers after the term begins at about
    // 3 s, a second before it would give up.
    let failed = 0;
    const { plan, seen } = await lapsing((_, ms) => {
      const fails = ms >= 1800 && ms <= 2800;
      if (fails) failed++;
      return fails;
    }, 2);
    const waited = await waitForLapse(plan, seen);
    expect(failed).toBeGreaterThan(0);
    expect(waited).toBeGreaterThan(2.8);
  });

  test("no answer for another term: it gives up, and nothing was changed", async () => {
    const { plan, seen, reads } = await lapsing(() => true);
    const error = await waitForLapse(plan, seen).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(PromoteError);
    expect((error as Error).message).toContain("the lease store did not answer after the lease's term (");
    expect((error as Error).message).toContain("connection reset");
    expect((error as Error).message).toContain("Run shortener promote again once it answers");
    expect(reads()).toBeGreaterThanOrEqual(3);
    expect(reads()).toBeLessThanOrEqual(5);
  });

  test("a renewal seen after an unanswered read is still a renewal: it refuses", async () => {
    const { plan, seen } = await lapsing((read) => read === 1);
    const renewer = new LeaseStore(plan.store.location);
    await renewer.replace({ ...seen.lease, renewedAt: new Date().toISOString() }, seen.etag);
    await expect(waitForLapse(plan, seen)).rejects.toThrow("the lease is alive: vm-a:/d:dead renewed it at");
  });
});
