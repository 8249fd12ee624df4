import { expect, test } from "bun:test";
import { FailureStreak } from "./failure-streak";

test("logs a streak's first failure, a reminder per interval with the count, and the recovery once", () => {
  let now = 1_000;
  const lines: [string, string, Record<string, unknown>][] = [];
  const streak = new FailureStreak(
    "visit_flush",
    60_000,
    () => now,
    (level, event, fields) => lines.push([level, event, fields]),
  );
  streak.succeeded();
  expect(lines).toEqual([]);
  // Failing every half second for two and a half minutes.
  for (let i = 0; i < 300; i++) {
    streak.failed({ depth: i });
    now += 500;
  }
  expect(lines).toEqual([
    ["error", "visit_flush_failed", { depth: 0, failures: 1, failing_ms: 0 }],
    ["error", "visit_flush_failed", { depth: 120, failures: 121, failing_ms: 60_000 }],
    ["error", "visit_flush_failed", { depth: 240, failures: 241, failing_ms: 120_000 }],
  ]);
  streak.succeeded({ depth: 0 });
  streak.succeeded({ depth: 0 });
  expect(lines.slice(3)).toEqual([["info", "visit_flush_recovered", { depth: 0, failures: 300, failed_ms: 150_000 }]]);
  // A new streak starts afresh, logged at once.
  streak.failed({ depth: 5 });
  expect(lines.slice(4)).toEqual([["error", "visit_flush_failed", { depth: 5, failures: 1, failing_ms: 0 }]]);
});
