import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { freePort } from "../../test/support/binary";
import { S3Server } from "../../test/support/s3";
import { type Lease, LeaseConflict, type LeaseLocation, LeaseStore, LeaseUnavailable } from "./replica-lease";

let s3: S3Server;
let keys = 0;
const lease = (epoch: number, holder = "vm-a:/data:x1"): Lease => ({
  epoch,
  holder,
  renewedAt: "2026-12-06T10:00:00+00:00",
  termSeconds: 30,
});

function location(endpoint = s3.endpoint): LeaseLocation {
  return s3.leaseLocation(`t${++keys}/lease.json`, "replica", endpoint);
}

beforeAll(async () => {
  s3 = await S3Server.start();
}, 60_000);
afterAll(async () => {
  await s3?.[Symbol.asyncDispose]();
});

describe("LeaseStore (real S3 server on loopback)", () => {
  test("reads nothing until a lease is created; a second create loses with a conflict", async () => {
    const store = new LeaseStore(location());
    expect(await store.read()).toBeNull();
    const etag = await store.create(lease(1));
    expect(await store.read()).toEqual({ lease: lease(1), etag });
    await expect(store.create(lease(1, "vm-b:/data:y2"))).rejects.toBeInstanceOf(LeaseConflict);
    expect((await store.read())?.lease.holder).toBe("vm-a:/data:x1");
  });

  test("replaces only the version it names: a stale ETag loses, and the lease stays as the winner wrote it", async () => {
    const store = new LeaseStore(location());
    const first = await store.create(lease(1));
    const second = await store.replace(lease(2, "vm-b:/data:y2"), first);
    expect(second).not.toBe(first);
    await expect(store.replace(lease(2, "vm-c:/data:z3"), first)).rejects.toBeInstanceOf(LeaseConflict);
    expect(await store.read()).toEqual({ lease: lease(2, "vm-b:/data:y2"), etag: second });
  });

  test("an object that is not a lease, and a store that does not answer, are LeaseUnavailable with what was wrong", async () => {
    const where = location();
    await new Bun.S3Client({ ...where, bucket: where.bucket }).write(where.key, '{"epoch": 0}');
    await expect(new LeaseStore(where).read()).rejects.toThrow(/not a shortener lease/);
    // A term no shortener writes would make a taker wait for ever.
    await new Bun.S3Client({ ...where }).write(where.key, JSON.stringify({ ...lease(1), termSeconds: 1e9 }));
    await expect(new LeaseStore(where).read()).rejects.toThrow(/termSeconds \(up to 3600\)/);
    await new Bun.S3Client({ ...where }).write(where.key, "<html>");
    await expect(new LeaseStore(where).read()).rejects.toThrow(/is not JSON/);
    const nowhere = new LeaseStore(location(`http://127.0.0.1:${freePort()}`));
    await expect(nowhere.read()).rejects.toBeInstanceOf(LeaseUnavailable);
    await expect(nowhere.create(lease(1))).rejects.toBeInstanceOf(LeaseUnavailable);
  });
});
