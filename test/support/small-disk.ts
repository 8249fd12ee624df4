import { type RunResult, requireBinary } from "./binary";

/**
 * A data directory on a disk of its own, small enough to fill: the server runs in a mount namespace (unshare, as
 * an unprivileged user too) where a tmpfs of `sizeKiB` is mounted over its data directory, holding a copy of what
 * the directory held before. Only that process sees the tmpfs; the test reaches it through /proc/PID/root.
 */
export function onSmallDisk(dataDir: string, sizeKiB: number, options: { full?: boolean } = {}): string[] {
  const script = [
    'dir="$1"; size="$2"; shift 2',
    "stage=$(mktemp -d)",
    'cp -a "$dir/." "$stage/"',
    'mount -t tmpfs -o "size=$size"k tmpfs "$dir"',
    'cp -a "$stage/." "$dir/"',
    'rm -rf "$stage"',
    // `full`: the rest of the disk taken by a file named filler before the server starts (dd stops at ENOSPC).
    ...(options.full ? ['{ dd if=/dev/zero of="$dir/filler" bs=4k 2>/dev/null; test -s "$dir/filler"; }'] : []),
    'exec "$@"',
  ].join(" && ");
  return ["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", script, "sh", dataDir, String(sizeKiB)];
}

/** A path inside the data directory as the server `pid` sees it (its own mount namespace). */
export function seenBy(pid: number, dataDir: string, name: string): string {
  return `/proc/${pid}/root${dataDir}/${name}`;
}

/** Runs a command of the binary in the namespace of the server `pid`, so that it sees the same data directory. */
export async function runInside(pid: number, args: string[]): Promise<RunResult> {
  // Not through /proc/PID/root: SQLite resolves that symlink, back to the directory as this process sees it.
  const proc = Bun.spawn(["nsenter", "--target", String(pid), "--user", "--mount", requireBinary(), ...args], {
    stdout: "pipe",
    stderr: "pipe",
    stdin: "ignore",
  });
  const [exitCode, stdout, stderr] = await Promise.all([proc.exited, new Response(proc.stdout).text(), new Response(proc.stderr).text()]);
  return { exitCode, stdout, stderr };
}
