import { afterEach, describe, expect, test } from "bun:test";
import { rmSync, writeFileSync } from "node:fs";
import { tempDir } from "../../test/support/binary";
import { promotedHere, promotionNotePath, readReplicaEnv, replicaEnvPath, writeReplicaEnv } from "./replica-epoch";

const dirs: string[] = [];
function dataDir(): string {
  const dir = tempDir("shortener-replica-env-");
  dirs.push(dir);
  return dir;
}
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

describe("replica.env", () => {
  test("round-trips a primary's epoch and holder, and a standby's epoch alone", () => {
    const dir = dataDir();
    writeReplicaEnv(replicaEnvPath(dir), { epoch: 3, holder: "vm-b:/data:x1" }, "test");
    expect(readReplicaEnv(dir)).toEqual({ epoch: 3, holder: "vm-b:/data:x1" });
    writeReplicaEnv(replicaEnvPath(dir), { epoch: 4, holder: null }, "test");
    expect(readReplicaEnv(dir)).toEqual({ epoch: 4, holder: null });
  });

  test("promotedHere: from promote's note (the database may be swapped before replica.env names the holder) to replica.env naming one", () => {
    const dir = dataDir();
    expect(promotedHere(dir)).toBe(false);
    writeReplicaEnv(replicaEnvPath(dir), { epoch: 1, holder: null }, "a standby");
    expect(promotedHere(dir)).toBe(false);
    writeReplicaEnv(promotionNotePath(dir), { epoch: 2, holder: "vm-b:/data:x1" }, "promoting");
    expect(promotedHere(dir)).toBe(true);
    rmSync(promotionNotePath(dir));
    writeReplicaEnv(replicaEnvPath(dir), { epoch: 2, holder: "vm-b:/data:x1" }, "promoted");
    expect(promotedHere(dir)).toBe(true);
    writeFileSync(replicaEnvPath(dir), "REPLICA_EPOCH=zero\n");
    expect(promotedHere(dir)).toBe(false);
  });
});
