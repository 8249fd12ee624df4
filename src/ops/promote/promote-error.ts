/**
 * A promotion that did not happen, or stopped, for a reason the operator can act on (the old primary still renews
 * its lease, Litestream still follows the copy, another node won). The command prints it and exits 1.
 */
export class PromoteError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "PromoteError";
  }
}
