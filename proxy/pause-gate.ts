/**
 * Holding new requests and connections while their route is paused (`route.pausedUntil` in the
 * future): a wait list, re-checked on every route-table change and at each waiter's deadline.
 * A waiter ends `ready` (the route is no longer paused), `gone` (the route was removed),
 * `timeout` (the pause deadline passed while still paused) or `closed` (the proxy is closing).
 */
import type { ActiveRoute } from './route-table.ts';

/** How a wait ended. */
export type WaitOutcome = { kind: 'ready'; active: ActiveRoute } | { kind: 'gone' } | { kind: 'timeout' } | { kind: 'closed' };

/** Longest single timer (setTimeout's limit); longer pauses re-arm. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** True while `active`'s route is paused at `now`. */
export function isPaused(active: ActiveRoute, now?: number): boolean {
  const until = active.route.pausedUntil;
  // The clock only when the route has a pause at all (the common case has none).
  return until !== undefined && until > (now ?? Date.now());
}

interface Waiter {
  lookup: () => ActiveRoute | undefined;
  resolve: (outcome: WaitOutcome) => void;
  timer: NodeJS.Timeout | undefined;
}

/** A pending wait: its outcome, and `cancel` for when the client goes away first. */
export interface PendingWait {
  readonly outcome: Promise<WaitOutcome>;
  cancel(): void;
}

/** The wait list of one proxy process. */
export class PauseGate {
  readonly #waiters = new Set<Waiter>();
  #closed = false;

  /** Number of requests and connections waiting. */
  get size(): number {
    return this.#waiters.size;
  }

  /**
   * Waits while the route found by `lookup` (re-run on every change) is paused. Resolves at
   * once when it is not paused now.
   */
  wait(lookup: () => ActiveRoute | undefined): PendingWait {
    let waiter: Waiter | undefined;
    const outcome = new Promise<WaitOutcome>((resolve) => {
      waiter = { lookup, resolve, timer: undefined };
    });
    const w = waiter as Waiter;
    if (this.#closed) w.resolve({ kind: 'closed' });
    else {
      this.#waiters.add(w);
      this.#check(w, false);
    }
    return {
      outcome,
      cancel: () => this.#finish(w, { kind: 'closed' }),
    };
  }

  /** Re-checks every waiter: call after each route-table change. */
  wake(): void {
    for (const w of [...this.#waiters]) this.#check(w, false);
  }

  /** Ends every wait with `closed` and refuses new ones. */
  close(): void {
    this.#closed = true;
    for (const w of [...this.#waiters]) this.#finish(w, { kind: 'closed' });
  }

  #check(w: Waiter, deadlineReached: boolean): void {
    const active = w.lookup();
    if (active === undefined) return this.#finish(w, { kind: 'gone' });
    const now = Date.now();
    if (!isPaused(active, now)) {
      // A pause that simply ran out, with no update since, ends the wait as a timeout (503 / close).
      return this.#finish(w, deadlineReached && active.route.pausedUntil !== undefined ? { kind: 'timeout' } : { kind: 'ready', active });
    }
    if (w.timer !== undefined) clearTimeout(w.timer);
    const delay = Math.min(MAX_TIMER_MS, (active.route.pausedUntil as number) - now);
    w.timer = setTimeout(() => {
      w.timer = undefined;
      this.#check(w, delay < MAX_TIMER_MS);
    }, delay + 1);
  }

  #finish(w: Waiter, outcome: WaitOutcome): void {
    if (!this.#waiters.delete(w)) return;
    if (w.timer !== undefined) clearTimeout(w.timer);
    w.resolve(outcome);
  }
}
