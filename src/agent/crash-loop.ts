/**
 * Crash loops: an instance that keeps dying. Each death of a current instance that should run is
 * counted; a run of `resetAfterMs` or longer forgets the earlier deaths. The agent restarts an
 * instance the engine does not (its policy says no, or it was stopped behind depad's back) after
 * a backoff that doubles from `firstBackoffMs` to `maxBackoffMs`; when `limit` deaths are counted
 * the agent gives up on it: the engine's restart policy is set to `no` and it stays stopped (an
 * event says so) until a depad command starts it again. Pure bookkeeping: no engine, no timers.
 */
import type { InstanceRestarts } from './observed.ts';

/** How the agent restarts dying instances. */
export interface CrashLoopOptions {
  /** Deaths after which the agent gives up (default 10). */
  limit: number;
  /** First wait before the agent restarts an instance (default 1 s); doubles per death. */
  firstBackoffMs: number;
  /** Longest wait (default 5 min). */
  maxBackoffMs: number;
  /** A run this long forgets earlier deaths (default 5 min). */
  resetAfterMs: number;
}

/** The defaults, as the README documents them. */
export const DEFAULT_CRASH_LOOP: CrashLoopOptions = Object.freeze({ limit: 10, firstBackoffMs: 1000, maxBackoffMs: 300_000, resetAfterMs: 300_000 });

interface Entry {
  deaths: number;
  restarts: number;
  lastDeath: number;
  gaveUp: boolean;
  /** When it gave up (ms). */
  gaveUpAt: number;
  /** When the agent may start it again. */
  notBefore: number;
}

/** Deaths and restarts of each instance (by container name). */
export class CrashLoops {
  readonly #options: CrashLoopOptions;
  readonly #entries = new Map<string, Entry>();

  constructor(options: Partial<CrashLoopOptions> = {}) {
    this.#options = { ...DEFAULT_CRASH_LOOP, ...options };
  }

  /** The options in force. */
  get options(): CrashLoopOptions {
    return this.#options;
  }

  /**
   * Counts a death at `now` of an instance that started at `startedAt` (ms); returns true when
   * this death reaches the limit (the caller gives up on it).
   */
  died(name: string, now: number, startedAt: number | undefined): boolean {
    const e = this.#entries.get(name) ?? { deaths: 0, restarts: 0, lastDeath: 0, gaveUp: false, gaveUpAt: 0, notBefore: 0 };
    if (startedAt !== undefined && now - startedAt >= this.#options.resetAfterMs) e.deaths = 0;
    e.deaths += 1;
    e.lastDeath = now;
    e.notBefore = now + this.backoff(e.deaths);
    this.#entries.set(name, e);
    if (e.gaveUp || e.deaths < this.#options.limit) return false;
    e.gaveUp = true;
    e.gaveUpAt = Infinity; // until given up on at the engine (gaveUpApplied): starts meanwhile are the engine's
    return true;
  }

  /** The wait before the agent's restart after the n-th death. */
  backoff(deaths: number): number {
    return Math.min(this.#options.firstBackoffMs * 2 ** Math.max(0, deaths - 1), this.#options.maxBackoffMs);
  }

  /** Ms to wait before the agent may start it (0: now); undefined when given up on. */
  waitBeforeStart(name: string, now: number): number | undefined {
    const e = this.#entries.get(name);
    if (e === undefined) return 0;
    if (e.gaveUp) return undefined;
    return Math.max(0, e.notBefore - now);
  }

  /** The agent started it. */
  restarted(name: string): void {
    const e = this.#entries.get(name);
    if (e) e.restarts += 1;
  }

  /** Forgets an instance: a depad command started or replaced it, or it is gone. */
  forget(name: string): void {
    this.#entries.delete(name);
  }

  /** The agent has set its restart policy to no and stopped it, at `time` (ms). */
  gaveUpApplied(name: string, time: number): void {
    const e = this.#entries.get(name);
    if (e?.gaveUp) e.gaveUpAt = time;
  }

  /** True when the agent gave up on it before `time` (ms): a start then is a depad command's, not the engine's. */
  gaveUpBefore(name: string, time: number): boolean {
    const e = this.#entries.get(name);
    return e?.gaveUp === true && e.gaveUpAt < time;
  }

  /** What `ps` and `inspect` show of it. */
  facts(name: string, now: number): InstanceRestarts | undefined {
    const e = this.#entries.get(name);
    if (e === undefined) return undefined;
    const state = e.gaveUp ? 'given-up' : e.notBefore > now ? 'backoff' : 'running';
    return { deaths: e.deaths, restarts: e.restarts, state, ...(state === 'backoff' ? { nextRestart: new Date(e.notBefore).toISOString() } : {}) };
  }
}
