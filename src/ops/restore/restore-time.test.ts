import { describe, expect, test } from "bun:test";
import { parseRestoreTime } from "./restore-time";

const NOW = Date.parse("2026-11-23T12:00:00Z");

describe("parseRestoreTime", () => {
  test.each([
    ["2026-11-22T10:15:00Z", "2026-11-22T10:15:00.000Z"],
    ["2026-11-22T11:15:00+01:00", "2026-11-22T10:15:00.000Z"],
    ["2026-11-22t10:15:00.250z", "2026-11-22T10:15:00.250Z"],
    ["2026-11-22 10:15:00-02:30", "2026-11-22T12:45:00.000Z"],
    ["2024-02-29T00:00:00Z", "2024-02-29T00:00:00.000Z"],
  ])("accepts %p as %p", (raw, iso) => {
    expect(parseRestoreTime(raw, NOW).toISOString()).toBe(iso);
  });

  test.each([
    ["2026-11-22T10:15:00", "UTC offset"],
    ["2026-11-22", "UTC offset"],
    ["yesterday", "UTC offset"],
    ["2026-11-22T24:00:00Z", "UTC offset"],
    ["2026-11-22T10:60:00Z", "UTC offset"],
    ["2026-11-22T10:15Z", "UTC offset"],
    ["2026-02-30T10:15:00Z", "does not exist"],
    ["2026-13-01T10:15:00Z", "does not exist"],
    ["2026-11-23T12:00:01Z", "in the future"],
  ])("refuses %p (%s)", (raw, why) => {
    expect(() => parseRestoreTime(raw, NOW)).toThrow(why);
  });

  test("accepts the current instant itself", () => {
    expect(parseRestoreTime("2026-11-23T12:00:00Z", NOW).getTime()).toBe(NOW);
  });
});
