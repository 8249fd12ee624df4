/**
 * A restore that did not happen, or was refused, for a reason the operator can act on (a server still running,
 * no backup at that time, a damaged copy). The message says what happened and ends with a "Try: …" hint; the
 * command prints it and exits 1. The live database is as it was.
 */
export class RestoreError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "RestoreError";
  }
}
