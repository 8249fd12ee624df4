/**
 * A background job's failures as a streak in the log: the first failure at once, then a reminder at most every
 * `everyMs` while they go on (with how many and for how long), and one line when the job works again. A visit
 * flush fails every half second while another process migrates the database for minutes: one line each would bury
 * everything else.
 */
import { log } from "./logger";

type Write = (level: "info" | "error", event: string, fields: Record<string, unknown>) => void;

const defaultWrite: Write = (level, event, fields) => log[level](event, fields);

export class FailureStreak {
  #since: number | null = null;
  #failures = 0;
  #loggedAt = 0;

  /** Logs `${name}_failed` and `${name}_recovered`. */
  constructor(
    private readonly name: string,
    private readonly everyMs = 60_000,
    private readonly now: () => number = Date.now,
    private readonly write: Write = defaultWrite,
  ) {}

  failed(fields: Record<string, unknown>): void {
    const now = this.now();
    this.#failures++;
    if (this.#since === null) this.#since = now;
    else if (now - this.#loggedAt < this.everyMs) return;
    this.#loggedAt = now;
    this.write("error", `${this.name}_failed`, { ...fields, failures: this.#failures, failing_ms: now - this.#since });
  }

  succeeded(fields: Record<string, unknown> = {}): void {
    if (this.#since === null) return;
    this.write("info", `${this.name}_recovered`, { ...fields, failures: this.#failures, failed_ms: this.now() - this.#since });
    this.#since = null;
    this.#failures = 0;
  }
}
