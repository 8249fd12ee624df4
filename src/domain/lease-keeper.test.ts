import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { S3Server } from "../../test/support/s3";
import { AppError } from "../errors";
import { type Lease, LeaseStore, LeaseUnavailable } from "../storage/replica-lease";
import { LeaseKeeper } from "./lease-keeper";

const TERM_MS = 8000;
const HOLDER = "vm-a:/data:x1";
let s3: S3Server;
let keys = 0;

function store(): LeaseStore {
  return new LeaseStore(s3.leaseLocation(`k${++keys}/lease.json`));
}

const lease = (epoch: number, renewedAt: number, holder = HOLDER): Lease => ({
  epoch,
  holder,
  renewedAt: new Date(renewedAt).toISOString(),
  termSeconds: TERM_MS / 1000,
});

/** The 503 a write would get, or null when it would be accepted. */
function refusal(keeper: LeaseKeeper): string | null {
  try {
    keeper.assertWritable();
    return null;
  } catch (error) {
    expect(error).toBeInstanceOf(AppError);
    expect((error as AppError).status).toBe(503);
    return (error as AppError).detail;
  }
}

/** A clock the test moves, starting now (renewals are stamped with it, and S3 keeps what they wrote). */
function clock() {
  let at = Date.now();
  return { now: () => at, advance: (ms: number) => (at += ms) };
}

beforeAll(async () => {
  s3 = await S3Server.start();
}, 60_000);
afterAll(async () => {
  await s3?.[Symbol.asyncDispose]();
});

describe("LeaseKeeper (real S3 server on loopback)", () => {
  test("renews a lease it holds and accepts writes for half a term after each renewal, not after", async () => {
    const leases = store();
    const time = clock();
    await leases.create(lease(3, time.now() - TERM_MS));
    const keeper = new LeaseKeeper(leases, { epoch: 3, holder: HOLDER }, TERM_MS, time.now, time.now);
    expect(refusal(keeper)).toContain("cannot confirm");
    expect(keeper.status()).toEqual({ writableSeconds: 0, fenced: false });
    await keeper.renew();
    expect(refusal(keeper)).toBeNull();
    expect((await leases.read())?.lease).toEqual(lease(3, time.now()));
    expect(keeper.status()).toEqual({ writableSeconds: TERM_MS / 2 / 1000, fenced: false });
    time.advance(TERM_MS / 2 - 1);
    expect(refusal(keeper)).toBeNull();
    expect(keeper.status().writableSeconds).toBeCloseTo(0.001, 6);
    time.advance(1);
    expect(refusal(keeper)).toContain("cannot confirm it still holds the replica lease");
    expect(keeper.status()).toEqual({ writableSeconds: 0, fenced: false });
    await keeper.renew();
    expect(refusal(keeper)).toBeNull();
    expect(keeper.problem()).toBeNull();
  });

  test("a store that stops answering lets the term run out, the node staying ready; writes come back with the next renewal", async () => {
    const time = clock();
    const real = store();
    await real.create(lease(1, time.now() - TERM_MS));
    let up = true;
    const down = () => Promise.reject(new LeaseUnavailable("the store does not answer"));
    const flaky = {
      location: real.location,
      read: () => (up ? real.read() : down()),
      replace: (next: Lease, etag: string) => (up ? real.replace(next, etag) : down()),
    } as unknown as LeaseStore;
    const keeper = new LeaseKeeper(flaky, { epoch: 1, holder: HOLDER }, TERM_MS, time.now, time.now);
    await keeper.renew();
    up = false;
    time.advance(TERM_MS / 4);
    await keeper.renew();
    expect(refusal(keeper)).toBeNull();
    time.advance(TERM_MS / 4);
    await keeper.renew();
    expect(refusal(keeper)).toContain("cannot confirm");
    expect(keeper.problem()).toBeNull();
    up = true;
    await keeper.renew();
    expect(refusal(keeper)).toBeNull();
  });

  test("two colours of one node share the lease: a renewal an eighth of a term old counts for both, without a second write", async () => {
    const time = clock();
    const leases = store();
    await leases.create(lease(1, time.now() - TERM_MS));
    const blue = new LeaseKeeper(leases, { epoch: 1, holder: HOLDER }, TERM_MS, time.now, time.now);
    const green = new LeaseKeeper(leases, { epoch: 1, holder: HOLDER }, TERM_MS, time.now, time.now);
    await blue.renew();
    const written = (await leases.read())?.etag;
    time.advance(TERM_MS / 8 - 10);
    await green.renew();
    expect((await leases.read())?.etag).toBe(written);
    expect(refusal(green)).toBeNull();
    time.advance(20);
    await green.renew();
    expect((await leases.read())?.etag).not.toBe(written);
    expect(refusal(blue)).toBeNull();
  });

  test("the wall clock set back neither lengthens the writes' half term nor passes for a colour's fresh renewal", async () => {
    const time = clock();
    let wall = time.now();
    const leases = store();
    await leases.create(lease(1, wall - TERM_MS));
    const keeper = new LeaseKeeper(leases, { epoch: 1, holder: HOLDER }, TERM_MS, time.now, () => wall);
    await keeper.renew();
    const written = (await leases.read())?.etag;
    wall -= 3_600_000;
    time.advance(TERM_MS / 2);
    expect(refusal(keeper)).toContain("cannot confirm");
    // The lease says it was renewed an hour "from now": the next look writes a renewal rather than adopt that one.
    await keeper.renew();
    expect((await leases.read())?.etag).not.toBe(written);
    expect((await leases.read())?.lease.renewedAt).toBe(new Date(wall).toISOString());
    expect(refusal(keeper)).toBeNull();
  });

  test("a lease that moved to another epoch or holder fences the node for good: not ready, every write refused", async () => {
    const time = clock();
    const leases = store();
    const etag = await leases.create(lease(1, time.now()));
    const keeper = new LeaseKeeper(leases, { epoch: 1, holder: HOLDER }, TERM_MS, time.now, time.now);
    let told = 0;
    keeper.onLost(() => told++);
    await keeper.renew();
    expect(refusal(keeper)).toBeNull();
    expect(told).toBe(0);
    const taken = await leases.replace(lease(2, time.now(), "vm-b:/data:y2"), etag);
    await keeper.renew();
    expect(keeper.problem()).toContain("epoch 2 is held by vm-b:/data:y2; this node wrote epoch 1");
    expect(refusal(keeper)).toContain("This node is not the primary");
    expect(keeper.status()).toEqual({ writableSeconds: 0, fenced: true });
    expect(told).toBe(1);
    // Even if the lease named it again, a replaced primary does not come back by itself.
    await leases.replace(lease(1, time.now()), taken);
    await keeper.renew();
    expect(refusal(keeper)).toContain("not the primary");
    expect(told).toBe(1);
  });

  test("a node that never took the lease is not the primary", async () => {
    const keeper = new LeaseKeeper(store(), null, TERM_MS);
    await keeper.renew();
    expect(keeper.problem()).toContain("has not taken the replica lease");
    expect(refusal(keeper)).toContain("run shortener promote");
    expect(keeper.status()).toEqual({ writableSeconds: 0, fenced: false });
    const standbyFile = new LeaseKeeper(store(), { epoch: 2, holder: null }, TERM_MS);
    expect(standbyFile.problem()).toContain("has not taken the replica lease");
  });
});
