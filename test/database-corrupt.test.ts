/**
 * A damaged database file, found by a request: a page of the links table overwritten with zeros while the server was
 * stopped. The request that reads it answers an opaque 500, and the log says `database_corrupt` with what to do
 * (check, keep a copy, restore), not `unhandled_error`; links on sound pages go on redirecting.
 */
import { expect, test } from "bun:test";
import { loggedErrors, TestServer } from "./support/binary";
import { damageLinksPage } from "./support/damaged-database";

test("a request that reads a damaged page answers 500 and logs database_corrupt with the way out; sound links still redirect", async () => {
  await using node = new TestServer();
  await node.createKey();
  await node.start();
  expect(await node.stop()).toBe(0);

  const { readable, unreadable } = damageLinksPage(node.dataDir);

  await node.start();
  const broken = await fetch(`${node.baseUrl}/${unreadable[0]}`, { redirect: "manual", headers: { Accept: "application/json" } });
  expect(broken.status).toBe(500);
  const problem = (await broken.json()) as { type: string; detail: string; requestId: string };
  expect(problem.type).toBe("https://shlink.io/api/error/internal-server-error");
  expect(problem.detail).toBe("An unexpected error occurred.");
  const sound = await fetch(`${node.baseUrl}/${readable[0]}`, { redirect: "manual" });
  expect(sound.status).toBe(302);

  expect(await node.stop()).toBe(0);
  const output = node.stdout + node.stderr;
  const logged = loggedErrors(output, "database_corrupt");
  expect(logged.map((l) => l.request_id)).toContain(problem.requestId);
  expect(logged[0]?.code).toStartWith("SQLITE_CORRUPT");
  expect(logged[0]?.hint).toContain("restore from the replica");
  expect(output).not.toContain("unhandled_error");
});
