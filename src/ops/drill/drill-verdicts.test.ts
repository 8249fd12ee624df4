import { describe, expect, test } from "bun:test";
import { linksVerdict, pastHeartbeatVerdict, rpoVerdict } from "./drill-verdicts";

const T = Date.parse("2026-11-23T12:00:00.000Z");
const level = {
  liveLinks: 10,
  restoredLinks: 10,
  newerThanCopy: 0,
  missingFromCopy: 0,
  deletedSince: 0,
  liveLastId: 10,
  restoredLastId: 10,
};

describe("rpoVerdict", () => {
  test("passes a replica one heartbeat behind, and reports the age at the restore's end apart", () => {
    const verdict = rpoVerdict({ liveAt: T, copyAt: T - 1000, restoreStartedAt: T + 200, restoreFinishedAt: T + 700 }, 60_000);
    expect(verdict).toMatchObject({ rpoSeconds: 1, replicaAgeSeconds: 1.7, result: { name: "rpo", ok: true } });
  });

  test("fails a replica further behind than the maximum", () => {
    const verdict = rpoVerdict({ liveAt: T, copyAt: T - 5000, restoreStartedAt: T, restoreFinishedAt: T }, 3000);
    expect(verdict.result).toMatchObject({ ok: false, detail: expect.stringContaining("5 s behind the live database (max 3 s)") });
  });

  test("counts a replica that took newer uploads during the restore as level, not ahead", () => {
    expect(rpoVerdict({ liveAt: T, copyAt: T + 900, restoreStartedAt: T, restoreFinishedAt: T + 1000 }, 1000).rpoSeconds).toBe(0);
  });

  test("passes a level replica of a node whose primary is stopped, and says no heartbeats are written", () => {
    const verdict = rpoVerdict({ liveAt: T - 3_600_000, copyAt: T - 3_600_000, restoreStartedAt: T, restoreFinishedAt: T }, 60_000);
    expect(verdict.result).toMatchObject({ ok: true, detail: expect.stringContaining("no primary is writing heartbeats") });
  });

  test("fails without a heartbeat to measure by", () => {
    const verdict = rpoVerdict({ liveAt: T, copyAt: null, restoreStartedAt: T, restoreFinishedAt: T }, 60_000);
    expect(verdict).toMatchObject({ rpoSeconds: null, result: { ok: false, detail: expect.stringContaining("restored copy") } });
  });
});

describe("linksVerdict", () => {
  test("passes links created after the copy's newest heartbeat and links deleted since", () => {
    expect(linksVerdict({ ...level, liveLinks: 12, newerThanCopy: 3, deletedSince: 1, liveLastId: 13 }).ok).toBe(true);
  });

  test("fails live links older than the copy's newest heartbeat that the copy lacks", () => {
    expect(linksVerdict({ ...level, missingFromCopy: 2 })).toMatchObject({ ok: false, detail: expect.stringContaining("2 live link(s)") });
  });

  test("fails a copy holding link ids the live database never gave out", () => {
    expect(linksVerdict({ ...level, restoredLastId: 11 })).toMatchObject({
      ok: false,
      hint: expect.stringContaining("another node's replica"),
    });
  });
});

describe("pastHeartbeatVerdict", () => {
  test("passes a heartbeat before the point, and a copy from before the first heartbeat", () => {
    expect(pastHeartbeatVerdict(T, T - 400, T + 60_000).ok).toBe(true);
    expect(pastHeartbeatVerdict(T, null, T + 60_000).ok).toBe(true);
  });

  test("fails a heartbeat well after the point", () => {
    expect(pastHeartbeatVerdict(T, T + 5000, T + 60_000).ok).toBe(false);
  });
});
