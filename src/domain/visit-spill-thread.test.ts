import { afterEach, expect, test } from "bun:test";
import { readdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { tempDir } from "../../test/support/binary";
import { scratchDatabases } from "../../test/support/scratch-database";
import { plainLinkRow, ShortUrlStore } from "../storage/short-url-store";
import type { Visit } from "./visit";
import { DEFAULT_PRIVACY, dayOf, type PrivacySettings } from "./visit-recorder";
import { decodeShipment } from "./visit-shipment";
import { VisitShipper } from "./visit-shipper";
import { VisitSpillThread } from "./visit-spill-thread";
import { StandbyVisitBuffer, VisitSpool } from "./visit-spool";

const databases = scratchDatabases("shortener-spill-");
const threads: VisitSpillThread[] = [];
afterEach(async () => {
  await Promise.all(threads.splice(0).map((thread) => thread.stop()));
});

/** Just before midnight (UTC): the visits fall on two days, the first of which the primary has a salt for. */
const T0 = Date.UTC(2026, 11, 6, 23, 59, 59);
const PRIMARY_SALT = new Uint8Array(16).fill(7);
const PRIVACY: PrivacySettings = { ...DEFAULT_PRIVACY, trackReferrer: false };

async function startedThread(privacy: PrivacySettings): Promise<VisitSpillThread> {
  const thread = new VisitSpillThread({ privacy, geoipDb: null }, (message) => {
    throw new Error(`the spill thread failed: ${message}`);
  });
  threads.push(thread);
  await thread.start();
  return thread;
}

test("a spill on the thread writes what the event loop writes: each day's salt, the privacy settings, links and orphans", async () => {
  const { db } = databases.open();
  const links = new ShortUrlStore(db);
  const ids = ["a", "b", "c"].map((code) => links.insert(plainLinkRow(code)) as number);
  const buffer = new StandbyVisitBuffer(db, links, null, 10_000);
  const dir = tempDir("shortener-spool-");
  const thread = await startedThread(PRIVACY);
  const copySalt = (day: number) => (day === dayOf(T0) ? PRIMARY_SALT : null);
  const spool = new VisitSpool(dir, new VisitShipper(PRIVACY, null), copySalt, null, buffer, thread);
  const visits: Visit[] = Array.from({ length: 3000 }, (_, i) => {
    const id = i % 7 === 6 ? null : (ids[i % 3] as number);
    return {
      link: id === null ? null : { id, shortCode: ["a", "b", "c"][i % 3] as string, domain: i % 3 === 1 ? "s.example" : "" },
      orphanType: id === null ? "invalid_short_url" : null,
      at: T0 + i,
      bot: i % 5 === 0,
      referer: "https://ref.example/",
      userAgent: `agent ${i % 11}`,
      ip: i % 4 === 0 ? null : `2001:db8:${i % 13}::${i}`,
      visitedUrl: `http://s.test/${i}`,
      redirectUrl: id === null ? null : `https://example.com/ünïcode/${i}`,
    };
  });
  const capture = () => {
    for (const visit of visits) {
      if (visit.link !== null) buffer.record(visit.link.id, visit.bot);
      buffer.capture(visit);
    }
  };
  const spilled = () => {
    const [name, ...more] = readdirSync(dir);
    expect(more).toEqual([]);
    const text = readFileSync(join(dir, name as string), "utf8");
    rmSync(join(dir, name as string));
    return decodeShipment(text);
  };

  capture();
  expect(await spool.spill(T0)).toBe(3000);
  expect(buffer.held).toBe(0);
  const onThread = spilled();
  // Once the thread has stopped, spills go on on the event loop: the same visits again, through the same spool.
  await thread.stop();
  expect(thread.usable).toBe(false);
  capture();
  expect(await spool.spill(T0 + 1)).toBe(3000);
  const onLoop = spilled();

  expect(onThread).toEqual(onLoop);
  expect(onThread.map((visit) => visit.at)).toEqual(visits.map((visit) => visit.at));
  expect(onThread.filter((visit) => visit.link === null)).toHaveLength(visits.filter((visit) => visit.link === null).length);
  expect(onThread[1]?.link).toEqual({ id: ids[1] as number, shortCode: "b", domain: "s.example" });
  expect(onThread[1]?.remoteAddr).toBe("2001:db8:1::");
  expect(onThread[1]?.referer).toBeNull();
  expect(onThread[2]?.redirectUrl).toBe("https://example.com/ünïcode/2");
  // The first second's visitors hashed with the primary's salt, the next day's with this node's own.
  const hashed = (salt: Uint8Array, visit: Visit) =>
    new Bun.CryptoHasher("sha256")
      .update(salt)
      .update(`${visit.ip ?? ""}\u0000${visit.userAgent ?? ""}`)
      .digest("hex")
      .slice(0, 32);
  expect(onThread[5]?.visitor).toBe(hashed(PRIMARY_SALT, visits[5] as Visit));
  expect(onThread[2999]?.visitor).not.toBe(hashed(PRIMARY_SALT, visits[2999] as Visit));
});
