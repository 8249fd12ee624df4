/**
 * Log lines into a stream that may stop being read: stdout, when journald stalls or cannot keep up. What the stream
 * cannot take waits in memory, without bound: an unread pipe took the server from 74 to 278 MiB in 10 s at 76 000
 * redirects a second. So once the stream has said it is full (write returned false), at most `maxBacklogBytes` more
 * are queued; past that, lines that may go (access lines) are dropped and counted, and the others (events, rare)
 * are queued still. When the stream drains, writing resumes and `onDrained` hears how many lines were dropped.
 *
 * A stream can also go for good: its reader exits (EPIPE) or its terminal hangs up (EIO). Bun throws that
 * error from the write, or emits it, and an unheard error ends the process: the last second of visits unwritten, for
 * want of a log line. From then on every line is dropped, the droppable ones counted, and `onGone` hears why once.
 */

/** The part of a writable stream (process.stdout) this needs. */
export interface DrainableStream {
  write(chunk: Uint8Array | string): boolean;
  once(event: "drain", listener: () => void): unknown;
  on(event: "error", listener: (error: Error) => void): unknown;
}

export class LineSink {
  /** Bytes written since the stream said it was full, or null while it takes more. */
  #backlog: number | null = null;
  #fullSince = 0;
  #dropped = 0;
  #droppedNow = 0;
  #gone = false;

  constructor(
    private readonly stream: DrainableStream,
    private readonly maxBacklogBytes: number,
    private readonly onDrained: (lines: number, stalledMs: number) => void,
    private readonly onGone: (error: Error) => void = () => {},
    private readonly now: () => number = performance.now.bind(performance),
  ) {
    stream.on("error", (error) => this.#goes(error));
  }

  /** Lines dropped since start. */
  get dropped(): number {
    return this.#dropped;
  }

  /** Whether `bytes` of droppable lines would be dropped now. */
  refuses(bytes: number): boolean {
    return this.#gone || (this.#backlog !== null && this.#backlog + bytes > this.maxBacklogBytes);
  }

  /**
   * Writes `chunk`; drops it instead when it is `lines` droppable lines that the backlog has no room for, and drops
   * whatever it is once the stream has gone.
   */
  write(chunk: Uint8Array | string, droppable: { lines: number } | null = null): void {
    if (this.#gone) {
      if (droppable !== null) this.#dropped += droppable.lines;
      return;
    }
    if (droppable !== null && this.refuses(chunk.length)) {
      this.#dropped += droppable.lines;
      this.#droppedNow += droppable.lines;
      return;
    }
    let room: boolean;
    try {
      room = this.stream.write(chunk);
    } catch (error) {
      this.#goes(error instanceof Error ? error : new Error(String(error)));
      if (droppable !== null) this.#dropped += droppable.lines;
      return;
    }
    if (this.#backlog !== null) this.#backlog += chunk.length;
    else if (!room) {
      this.#backlog = 0;
      this.#fullSince = this.now();
      this.stream.once("drain", () => this.#drained());
    }
  }

  #goes(error: Error): void {
    if (this.#gone) return;
    this.#gone = true;
    this.onGone(error);
  }

  #drained(): void {
    const lines = this.#droppedNow;
    const stalledMs = this.now() - this.#fullSince;
    this.#backlog = null;
    this.#droppedNow = 0;
    if (lines > 0) this.onDrained(lines, stalledMs);
  }
}
