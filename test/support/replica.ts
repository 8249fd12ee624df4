/** What the replication tests ask of a replica: flush it through Litestream's control socket, restore it, read it. */
import { Database } from "bun:sqlite";
import { HeartbeatStore } from "../../src/storage/heartbeat-store";
import { cleanEnv } from "./litestream";
import { toolPath } from "./tools";

/** The newest heartbeat (epoch ms; 0 before the first) in the database at `databasePath`, read through a connection of its own. */
export function newestHeartbeat(databasePath: string): number {
  const db = new Database(databasePath, { readonly: true });
  try {
    return new HeartbeatStore(db).latest() ?? 0;
  } finally {
    db.close();
  }
}

/** `POST /sync` with wait on Litestream's control socket: returns once the replica holds everything committed. */
export async function syncReplica(socketPath: string, databasePath: string, timeoutSeconds = 30): Promise<void> {
  const response = await fetch("http://localhost/sync", {
    method: "POST",
    body: JSON.stringify({ path: databasePath, wait: true, timeout: timeoutSeconds }),
    unix: socketPath,
    signal: AbortSignal.timeout((timeoutSeconds + 5) * 1000),
  } as RequestInit);
  const body = await response.text();
  if (!response.ok) throw new Error(`litestream sync failed (HTTP ${response.status}): ${body}`);
}

/** `litestream restore -config CONFIG -o OUTPUT DATABASE`: the replica's latest state, written to `output`. */
export async function restoreReplica(configPath: string, databasePath: string, output: string, timeoutMs = 60_000): Promise<void> {
  const proc = Bun.spawn([toolPath("litestream"), "restore", "-config", configPath, "-o", output, databasePath], {
    env: cleanEnv(),
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
  const timer = setTimeout(() => proc.kill("SIGKILL"), timeoutMs);
  const [stdout, stderr, exitCode] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  clearTimeout(timer);
  if (exitCode !== 0) throw new Error(`litestream restore exited ${exitCode}:\n${stdout}${stderr}`);
}

/** The short codes in a restored database file, after checking that SQLite finds it intact. */
export function shortCodesIn(file: string): Set<string> {
  const db = new Database(file, { readonly: true });
  try {
    const integrity = db.query("PRAGMA integrity_check").get() as { integrity_check: string };
    if (integrity.integrity_check !== "ok") throw new Error(`${file} is damaged: ${integrity.integrity_check}`);
    const rows = db.query("SELECT short_code FROM short_urls").all() as { short_code: string }[];
    return new Set(rows.map((r) => r.short_code));
  } finally {
    db.close();
  }
}
