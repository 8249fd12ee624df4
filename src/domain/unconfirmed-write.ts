/**
 * Replicated durability's failure answer. A write whose after-commit confirmation failed is committed on this node
 * (redirects see it) but may be lost with the node, so it is never reported as a success: it becomes a 503 that
 * says what stands and what a retry does.
 */
import { type AppError, notReplicated } from "../errors";
import { UnconfirmedCommit } from "../storage/group-commit";

/** How long a client is told to wait before retrying an unconfirmed write. */
export const UNCONFIRMED_RETRY_AFTER_SECONDS = 5;

/**
 * For `.catch` on a write: rethrows an UnconfirmedCommit as `problem(value)` (by default a generic 503 for a
 * change that is safe to repeat), and anything else as it is.
 */
export function rethrowUnconfirmed(problem: (value: unknown) => AppError = () => unconfirmedChange()): (error: unknown) => never {
  return (error: unknown): never => {
    if (error instanceof UnconfirmedCommit) throw problem(error.value);
    throw error;
  };
}

/** The 503 for an edit, delete or tag change: the change stands here; repeating it is safe. */
export function unconfirmedChange(): AppError {
  return notReplicated(
    "The change is saved on this node, but Litestream has not confirmed that the backup replica has it, so it could still be lost " +
      "with this node. Repeat the same request after Retry-After: repeating it is safe (a repeated delete answers 404, " +
      "because the link is already gone here).",
    {},
    UNCONFIRMED_RETRY_AFTER_SECONDS,
  );
}

/**
 * The 503 for a create committed here but not confirmed in the replica. A single create's write returns its one id:
 * say which link was saved (`findLink` reads it) and how to get it once confirmed. Any other write (a bulk create's)
 * gets the generic one.
 */
export function unconfirmedCreate(value: unknown, findLink: (id: number) => { short_code: string; domain: string } | null): AppError {
  const id = Array.isArray(value) && value.length === 1 ? value[0] : value;
  const row = typeof id === "number" ? findLink(id) : null;
  if (row === null) return unconfirmedChange();
  return notReplicated(
    `The short URL "${row.short_code}" is saved on this node, but Litestream has not confirmed that the backup replica has it, so it ` +
      'could still be lost with this node. Repeat the same request after Retry-After with "findIfExists": true: it answers with this ' +
      "short URL once the replica has it (without findIfExists, a repeat creates another short URL, or is refused as non-unique-slug " +
      "for a custom slug).",
    { shortCode: row.short_code, domain: row.domain === "" ? null : row.domain },
    UNCONFIRMED_RETRY_AFTER_SECONDS,
  );
}
