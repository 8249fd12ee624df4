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

  test("round-trips the restored state's last link and visit ids; a value that is not a whole number is left out", () => {
    const dir = dataDir();
    const promoted = { epoch: 2, holder: "vm-b:/data:x1", restoredLinkId: 41, restoredVisitId: 0 };
    writeReplicaEnv(replicaEnvPath(dir), promoted, "test");
    expect(readReplicaEnv(dir)).toEqual(promoted);
    writeFileSync(replicaEnvPath(dir), "REPLICA_EPOCH=2\nREPLICA_RESTORED_LINK_ID=-3\nREPLICA_RESTORED_VISIT_ID=\n");
    expect(readReplicaEnv(dir)).toEqual({ epoch: 2, holder: null });
    writeFileSync(replicaEnvPath(dir), "REPLICA_EPOCH=2\nREPLICA_RESTORED_LINK_ID=7\nREPLICA_RESTORED_VISIT_ID=1e3\n");
    expect(readReplicaEnv(dir)).toEqual({ epoch: 2, holder: null, restoredLinkId: 7 });
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
