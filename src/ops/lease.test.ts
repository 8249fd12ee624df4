/**
 * promote's note of the holder it is about to become (`replica.env.promoting`), as `lease follow`, `lease show` and
 * the self-check treat it: a note the lease names is an unfinished promotion (only promote finishes it); a note it
 * does not name is left by a promote that stopped before it took the lease, and must not outlive a return to standby.
 */
import { describe, expect, test } from "bun:test";
import { existsSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { leaseStoresForFile } from "../../test/support/s3";
import { loadConfig } from "../config";
import { promotedHere, promotionNotePath, readReplicaEnv, replicaEnvPath, writeReplicaEnv } from "../storage/replica-epoch";
import type { Lease, LeaseStore, LeaseVersion } from "../storage/replica-lease";
import { leaseCheck } from "./checks/lease-check";
import { follow, standing } from "./lease";
import { PromoteError } from "./promote/promote-error";

const stores = leaseStoresForFile();

const LIVE: Lease = { epoch: 2, holder: "vm-a:/data:live", renewedAt: new Date().toISOString(), termSeconds: 15 };
const STALE = { epoch: 2, holder: "vm-b:/data:never" };
const TAKEN = { epoch: 2, holder: LIVE.holder };

/**
 * A standby's data dir following epoch `epoch`, with promote's note `note` when given, written `noteAgeSeconds` ago
 * (by a promote that has stopped since, unless that is only a moment), and no database yet.
 */
function standby(epoch: number, note: { epoch: number; holder: string } | null, noteAgeSeconds = 60): string {
  const dir = stores.dir("lease-note-");
  writeReplicaEnv(replicaEnvPath(dir), { epoch, holder: null }, "a standby");
  if (note !== null) {
    writeReplicaEnv(promotionNotePath(dir), note, "promote's note");
    const at = new Date(Date.now() - noteAgeSeconds * 1000);
    utimesSync(promotionNotePath(dir), at, at);
  }
  return dir;
}

async function stored(lease: Lease): Promise<{ store: LeaseStore; current: LeaseVersion }> {
  const store = stores.store();
  const etag = await store.create(lease);
  return { store, current: { lease, etag } };
}

function check(dir: string, store: LeaseStore) {
  return leaseCheck(loadConfig(new Map([["data-dir", dir]]), { SHORTENER_ROLE: "standby" }), store);
}

describe("promote's note", () => {
  test("left by a promote that never took the lease: check fails naming it; lease follow removes it; check passes", async () => {
    const { store, current } = await stored(LIVE);
    const dir = standby(2, STALE);
    // While it is there, a copy replaced by a fresh restore would be served as if this node had been promoted.
    expect(promotedHere(dir)).toBe(true);
    expect(await check(dir, store)).toMatchObject({
      ok: false,
      detail: `${promotionNotePath(dir)} is left by a promote that never took the lease`,
      hint: expect.stringContaining("shortener lease follow (it removes the note)"),
    });
    expect(standing(current, readReplicaEnv(dir), STALE, "standby")).toBe(
      "this node follows epoch 2\npromote's note of a run that never took the lease is left: shortener lease follow removes it",
    );
    writeFileSync(join(dir, "shortener.db"), "");
    writeFileSync(join(dir, "shortener.db.promoted"), "restored by that promote");
    expect(follow(join(dir, "shortener.db"), dir, current, readReplicaEnv(dir))).toBe(
      `this node already follows epoch 2\nremoved ${promotionNotePath(dir)}, left by a promote that never took the lease`,
    );
    expect(existsSync(promotionNotePath(dir))).toBe(false);
    expect(existsSync(join(dir, "shortener.db.promoted"))).toBe(false);
    expect(existsSync(join(dir, "shortener.db"))).toBe(true);
    expect(promotedHere(dir)).toBe(false);
    expect(await check(dir, store)).toMatchObject({ ok: true, detail: `this standby follows epoch 2, held by ${LIVE.holder}` });
  });

  test("a fresh follow of a new epoch removes it too", async () => {
    const { current } = await stored(LIVE);
    const dir = standby(1, STALE);
    const said = follow(join(dir, "shortener.db"), dir, current, readReplicaEnv(dir));
    expect(said).toContain("this node now follows epoch 2");
    expect(said).toContain(`removed ${promotionNotePath(dir)}`);
    expect(readReplicaEnv(dir)).toEqual({ epoch: 2, holder: null });
    expect(existsSync(promotionNotePath(dir))).toBe(false);
  });

  test("written a moment ago: a promote may still be running on this node, so lease follow leaves it", async () => {
    const { current } = await stored(LIVE);
    const dir = standby(2, STALE, 1);
    expect(() => follow(join(dir, "shortener.db"), dir, current, readReplicaEnv(dir))).toThrow(
      /^promote wrote \S+replica\.env\.promoting [12] s ago and may still be running on this node: let it finish, or run this again in 1[34] s$/,
    );
    expect(existsSync(promotionNotePath(dir))).toBe(true);
    expect(readReplicaEnv(dir)).toEqual({ epoch: 2, holder: null });
  });

  test("named by the lease: an unfinished promotion; follow refuses, show and check say to run promote again", async () => {
    const { store, current } = await stored(LIVE);
    const dir = standby(1, TAKEN);
    const unfinished =
      "this node took the lease (epoch 2) in a promote that did not finish: run shortener promote again to finish it, then restart the colours as the primary";
    expect(() => follow(join(dir, "shortener.db"), dir, current, readReplicaEnv(dir))).toThrow(new PromoteError(unfinished));
    expect(existsSync(promotionNotePath(dir))).toBe(true);
    expect(readReplicaEnv(dir)).toEqual({ epoch: 1, holder: null });
    expect(standing(current, readReplicaEnv(dir), TAKEN, "standby")).toBe(unfinished);
    // Not "follow the live epoch afresh", which would throw the promotion away.
    expect(await check(dir, store)).toMatchObject({
      ok: false,
      detail: "this node took the lease (epoch 2) in a promote that did not finish: no node takes writes",
      hint: expect.stringContaining("run shortener promote again to finish it"),
    });
  });
});
