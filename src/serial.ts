/** Running async work one piece at a time, in the order asked. */

/** A queue: each call runs `fn` after every earlier call's `fn` settled; resolves or rejects as `fn` does. */
export function serialQueue(): <T>(fn: () => Promise<T>) => Promise<T> {
  let tail: Promise<unknown> = Promise.resolve();
  return <T>(fn: () => Promise<T>): Promise<T> => {
    const run = tail.then(fn, fn);
    tail = run.catch(() => {});
    return run;
  };
}
