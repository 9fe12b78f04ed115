/**
 * Slowing down repeated authentication failures from one address: after FREE_FAILURES failures
 * within WINDOW_MS, each further answer to that address waits a second more (at most MAX_DELAY_MS).
 * Successes do not reset the count: a stolen-but-valid token is not a reason to allow guessing.
 */

/** Failures allowed in a window before answers slow down. */
export const FREE_FAILURES = 5;
/** The window failures are counted in. */
export const WINDOW_MS = 60_000;
/** The longest delay. */
export const MAX_DELAY_MS = 10_000;

/** Failure counts per client address. */
export class FailureLimiter {
  readonly #failures = new Map<string, number[]>();

  /** Records a failed authentication from `ip`. */
  failed(ip: string, now = Date.now()): void {
    const recent = this.#recent(ip, now);
    recent.push(now);
    this.#failures.set(ip, recent);
    if (this.#failures.size > 10_000) this.#prune(now);
  }

  /** How long to hold the answer to a request from `ip` (ms). */
  delayFor(ip: string, now = Date.now()): number {
    const excess = this.#recent(ip, now).length - FREE_FAILURES;
    return excess <= 0 ? 0 : Math.min(MAX_DELAY_MS, excess * 1000);
  }

  #recent(ip: string, now: number): number[] {
    return (this.#failures.get(ip) ?? []).filter((t) => now - t < WINDOW_MS);
  }

  #prune(now: number): void {
    for (const [ip, times] of this.#failures) if (times.every((t) => now - t >= WINDOW_MS)) this.#failures.delete(ip);
  }
}
