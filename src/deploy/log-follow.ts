/**
 * `depad logs -f`: follows a deployment's instances as they come and go, as `docker compose logs
 * -f` does. The instances running at the start are followed from their `tail`; every second the
 * engine is asked again, and an instance that appeared since (a scale, an update's new replica,
 * the agent's restart of a gone container) is followed from its first line, one whose stream had
 * ended and that runs again (a restart) from where it stopped. Following ends when `signal` aborts,
 * or when no stream is open and none of the selected instances runs (a stopped or destroyed
 * deployment).
 */
import type { ContainerState } from '../engine/types.ts';

/** How often the engine is asked for new instances. */
export const FOLLOW_POLL_MS = 1000;

/** What `followInstances` works with. */
export interface FollowSource {
  /** The selected instances as the engine lists them now. */
  list(): Promise<ContainerState[]>;
  /**
   * Follows one instance until its stream ends: from the `tail` asked (one there at the start),
   * from its `first` line (one that appeared later), or from a time (Unix seconds: one that ran
   * again after its stream ended).
   */
  read(c: ContainerState, from: 'tail' | 'first' | number): Promise<void>;
}

/** Follows `initial` and every instance that appears later (module comment). */
export async function followInstances(source: FollowSource, initial: readonly ContainerState[], signal: AbortSignal | undefined, pollMs = FOLLOW_POLL_MS): Promise<void> {
  const open = new Map<string, Promise<void>>();
  const endedAt = new Map<string, number>();
  const seen = new Set(initial.map((c) => c.id));
  let failure: unknown;
  const follow = (c: ContainerState, from: 'tail' | 'first' | number) => {
    const stream = source.read(c, from).then(
      () => void endedAt.set(c.id, Date.now() / 1000),
      (error: unknown) => void (failure ??= error),
    ).finally(() => open.delete(c.id));
    open.set(c.id, stream);
  };
  for (const c of initial) follow(c, 'tail');
  while (!signal?.aborted && failure === undefined) {
    await sleep(pollMs, signal);
    if (signal?.aborted || failure !== undefined) break;
    const now = await source.list();
    for (const c of now) {
      if (open.has(c.id)) continue;
      if (!seen.has(c.id)) {
        seen.add(c.id);
        follow(c, 'first');
      } else if (c.running && endedAt.has(c.id)) {
        follow(c, endedAt.get(c.id)!);
      }
    }
    if (open.size === 0 && !now.some((c) => c.running)) break;
  }
  await Promise.all(open.values());
  if (failure !== undefined) throw failure;
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
    function done(): void {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
  });
}
