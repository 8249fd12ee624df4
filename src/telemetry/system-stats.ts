/** Scrape-time readings of the machine: established connections on a port, disk free, file sizes. */
import { readFileSync, statfsSync, statSync } from "node:fs";

/** Established TCP connections whose local port is `port`, from /proc/net/tcp and tcp6 (Linux). */
export function establishedConnections(port: number): number {
  const hexPort = port.toString(16).toUpperCase().padStart(4, "0");
  let count = 0;
  for (const table of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    let text: string;
    try {
      text = readFileSync(table, "utf8");
    } catch {
      continue;
    }
    for (const line of text.split("\n")) {
      const fields = line.trim().split(/\s+/);
      // fields[1] = local address:port, fields[3] = state (01 = ESTABLISHED)
      if (fields[3] === "01" && fields[1]?.endsWith(`:${hexPort}`)) count++;
    }
  }
  return count;
}

export function diskFreeBytes(path: string): number {
  const stats = statfsSync(path);
  return stats.bavail * stats.bsize;
}

export function fileSize(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
}
