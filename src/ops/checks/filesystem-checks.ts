/** Checks of the data directory: that the service can write there, and that its filesystem has room. */
import { randomUUID } from "node:crypto";
import { closeSync, existsSync, fsyncSync, openSync, unlinkSync, writeSync } from "node:fs";
import { join } from "node:path";
import { isOutOfSpace } from "../../commands/disk-wait";
import { formatSize } from "../../lib/size";
import { diskFreeBytes } from "../../telemetry/system-stats";
import { type Check, fail, pass } from "./check-result";

/** `data_dir.writable`: creates, syncs and deletes a temp file in the data dir, as SQLite's WAL and shm files need. */
export function dataDirWritableCheck(dataDir: string): Check {
  const name = "data_dir.writable";
  return {
    name,
    async run() {
      const probe = join(dataDir, `.shortener-check-${randomUUID()}`);
      try {
        const fd = openSync(probe, "wx", 0o600);
        try {
          writeSync(fd, "check\n");
          fsyncSync(fd);
        } finally {
          closeSync(fd);
          unlinkSync(probe);
        }
      } catch (error) {
        if ((error as { code?: string }).code === "ENOENT" && !existsSync(dataDir)) {
          return fail(
            name,
            `${dataDir} does not exist`,
            `create it for the service user (install -d -o shortener ${dataDir}) or check --data-dir`,
          );
        }
        return fail(
          name,
          `cannot create a file in ${dataDir}: ${error instanceof Error ? error.message : String(error)}`,
          isOutOfSpace(error, dataDir)
            ? `the disk of ${dataDir} is full: free space (runbooks/disk-filling.md)`
            : `the service user must own ${dataDir} (e.g. chown shortener: ${dataDir}) and its filesystem must be mounted read-write`,
        );
      }
      return pass(name, `${dataDir} is writable`);
    },
  };
}

/** `disk.free`: bytes available to the service on the data dir's filesystem must not fall below `minBytes`. */
export function diskFreeCheck(dataDir: string, minBytes: number): Check {
  const name = "disk.free";
  return {
    name,
    async run() {
      let free: number;
      try {
        free = diskFreeBytes(dataDir);
      } catch (error) {
        return fail(
          name,
          `cannot read free space of ${dataDir}: ${error instanceof Error ? error.message : String(error)}`,
          "check --data-dir",
        );
      }
      if (free >= minBytes) return pass(name, `${formatSize(free)} free (minimum ${formatSize(minBytes)})`);
      return fail(
        name,
        `${formatSize(free)} free < ${formatSize(minBytes)}`,
        `free space on the filesystem of ${dataDir} or lower --min-disk-free`,
      );
    },
  };
}
