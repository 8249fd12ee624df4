import { expect, test } from "bun:test";
import { freePort, RECENT_PORTS } from "./ports";

test("hands out no port twice among its latest picks, though none of them was bound", () => {
  // Drawn at random from 10 000 ports, 1 000 picks repeat one almost surely (birthday bound: 1 - e^-50).
  const picks = Array.from({ length: 1_000 }, () => freePort());
  expect(new Set(picks).size).toBe(picks.length);
  expect(RECENT_PORTS).toBeGreaterThanOrEqual(picks.length);
});

test("picks only ports nothing listens on", () => {
  const port = freePort();
  using server = Bun.listen({ hostname: "127.0.0.1", port, socket: { data() {} } });
  expect(server.port).toBe(port);
});
