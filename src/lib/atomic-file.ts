/** Replacing a small file so that a reader sees the old content or the new, never half of either. */
import { closeSync, fsyncSync, openSync, renameSync, rmSync, writeSync } from "node:fs";
import { open, rename, rm } from "node:fs/promises";
import { basename, dirname, join } from "node:path";

/**
 * Writes `text` to `path` atomically and durably: 1. a temp file beside it (same filesystem), 2. fsync,
 * 3. rename over `path`, 4. fsync the directory so the rename itself survives a power loss. `text` may come in
 * pieces, each written as it comes, so that a large file is never one string in memory.
 */
export function writeFileAtomic(path: string, text: string | Iterable<string>, mode = 0o640): void {
  const dir = dirname(path);
  const temp = join(dir, `.${basename(path)}.tmp-${process.pid}`);
  const fd = openSync(temp, "w", mode);
  try {
    for (const piece of typeof text === "string" ? [text] : text) writeSync(fd, piece);
    fsyncSync(fd);
  } catch (error) {
    closeSync(fd);
    rmSync(temp, { force: true });
    throw error;
  }
  closeSync(fd);
  try {
    renameSync(temp, path);
  } catch (error) {
    rmSync(temp, { force: true });
    throw error;
  }
  const dirFd = openSync(dir, "r");
  try {
    fsyncSync(dirFd);
  } finally {
    closeSync(dirFd);
  }
}

/**
 * writeFileAtomic off the event loop: the write and both fsyncs run on the runtime's I/O threads, so a large file
 * (a standby's second of visits, megabytes) does not hold up requests while the disk takes it.
 */
export async function writeFileAtomicAsync(path: string, text: string, mode = 0o640): Promise<void> {
  const dir = dirname(path);
  const temp = join(dir, `.${basename(path)}.tmp-${process.pid}`);
  const file = await open(temp, "w", mode);
  try {
    await file.writeFile(text);
    await file.sync();
  } catch (error) {
    await file.close();
    await rm(temp, { force: true });
    throw error;
  }
  await file.close();
  try {
    await rename(temp, path);
  } catch (error) {
    await rm(temp, { force: true });
    throw error;
  }
  const directory = await open(dir, "r");
  try {
    await directory.sync();
  } finally {
    await directory.close();
  }
}
