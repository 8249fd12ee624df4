/**
 * Shares runs of `task` among concurrent callers. A call never joins a run already under way, which may have
 * started before whatever the caller needs it to cover: it joins the next run, which starts when the current one
 * ends and serves every call made meanwhile. A burst of callers costs at most two runs, and every caller's run
 * starts after its call.
 */
export function coalesced(task: () => Promise<void>): () => Promise<void> {
  let running = false;
  let queued: PromiseWithResolvers<void> | null = null;
  const finish = () => {
    running = false;
    if (queued === null) return;
    const waiting = queued;
    queued = null;
    run().then(waiting.resolve, waiting.reject);
  };
  const run = (): Promise<void> => {
    running = true;
    const done = Promise.resolve().then(task);
    done.then(finish, finish);
    return done;
  };
  return () => {
    if (!running) return run();
    queued ??= Promise.withResolvers<void>();
    return queued.promise;
  };
}
