import { describe, expect, test } from "bun:test";
import { choosePastPoint } from "./past-point";

const T0 = Date.parse("2026-11-23T12:00:00.000Z");

describe("choosePastPoint", () => {
  test("picks one minute before the drill when the replica reaches back that far", () => {
    const point = choosePastPoint(T0, T0 - 3_600_000);
    expect(point.at.toISOString()).toBe("2026-11-23T11:59:00.000Z");
    expect(point.why).toBe("60 s before the drill");
  });

  test("picks the midpoint of a replica younger than a minute, a second past its listed start", () => {
    const point = choosePastPoint(T0, T0 - 21_000);
    expect(point.at.toISOString()).toBe("2026-11-23T11:59:50.000Z");
    expect(point.why).toContain("reaches back only 20.0 s");
  });

  test("picks the drill's start when the replica began less than a second before it", () => {
    expect(choosePastPoint(T0, T0 - 500).at.getTime()).toBe(T0);
  });
});
