import { afterEach, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { shipmentName } from "../../storage/shipment-store";
import { standbyVisitsCheck } from "./standby-checks";

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function spool(): string {
  const dir = mkdtempSync(join(tmpdir(), "shortener-spool-check-"));
  dirs.push(dir);
  return join(dir, "visit-spool");
}

describe("standby.visits", () => {
  test("passes with no spool, or one whose files are younger than 15 minutes", async () => {
    const dir = spool();
    expect(await standbyVisitsCheck(dir).run()).toMatchObject({ name: "standby.visits", ok: true });
    mkdirSync(dir);
    writeFileSync(join(dir, shipmentName(Date.now())), "{}");
    const result = await standbyVisitsCheck(dir).run();
    expect(result.ok).toBe(true);
    expect(result.detail).toMatch(/^1 file\(s\) of visits wait in .*visit-spool, the oldest for \d+ s$/);
  });

  test("fails on a file the bucket has not taken for over 15 minutes, saying they are kept and where to look", async () => {
    const dir = spool();
    mkdirSync(dir);
    const old = join(dir, shipmentName(Date.now() - 20 * 60_000));
    writeFileSync(old, "{}");
    const twentyMinutesAgo = (Date.now() - 20 * 60_000) / 1000;
    utimesSync(old, twentyMinutesAgo, twentyMinutesAgo);
    writeFileSync(join(dir, shipmentName(Date.now())), "{}");
    writeFileSync(join(dir, "not-a-shipment.txt"), "ignored");
    const result = await standbyVisitsCheck(dir).run();
    expect(result.ok).toBe(false);
    expect(result.detail).toMatch(
      /^2 file\(s\) of visits wait in .*, the oldest for 1[23]\d\d s: the replica's bucket does not take them$/,
    );
    expect(result.hint).toContain("visit_shipping_failed");
    expect(result.hint).toContain("SHORTENER_REPLICATION=litestream");
    expect(result.hint).toContain("runbooks/standby-behind.md");
  });
});
