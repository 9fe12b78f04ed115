/**
 * What the proxy knows about each upstream (`host:port`): its undici Pool of keep-alive
 * connections, and everything in flight to it (HTTP requests, upgraded WebSockets, TCP
 * connections), so that `drain` can wait for that work to finish, or end what remains.
 */
import { performance } from 'node:perf_hooks';
import { Pool } from 'undici';
import type { Logger } from '../src/logger.ts';
import { upstreamKey } from './route-table.ts';
import type { DrainResult, Upstream } from './types.ts';

/** Kinds of work tracked per upstream. */
export type WorkKind = 'request' | 'websocket' | 'tcp';

/** One piece of in-flight work: counted until released, ended by `destroy` when a drain times out. */
export interface Tracked {
  readonly kind: WorkKind;
  /** Ends the work at once (both sides); must lead to `release`. */
  destroy(): void;
}

/** Counts of in-flight work for one upstream. */
export interface UpstreamLoad {
  requests: number;
  websockets: number;
  tcp: number;
}

/** Pool settings for every upstream: keep-alive, no body idle timeout (SSE, long polls), 5 min to headers. */
const POOL_OPTIONS: Pool.Options = {
  connections: null,
  pipelining: 1,
  keepAliveTimeout: 4_000,
  headersTimeout: 300_000,
  bodyTimeout: 0,
  connectTimeout: 10_000,
};

/** One upstream's pool and in-flight work. */
export class UpstreamEntry {
  readonly key: string;
  readonly origin: string;
  readonly active = new Set<Tracked>();
  readonly load: UpstreamLoad = { requests: 0, websockets: 0, tcp: 0 };
  #pool: Pool | undefined;
  #idleWaiters: (() => void)[] = [];
  #lastWarn = 0;
  readonly #log: Logger;

  constructor(key: string, log: Logger) {
    this.key = key;
    this.origin = `http://${key}`;
    this.#log = log;
  }

  /** The keep-alive connection pool to this upstream (created on first use). */
  pool(): Pool {
    return (this.#pool ??= new Pool(this.origin, POOL_OPTIONS));
  }

  /** Counts `work` as in flight. */
  add(work: Tracked): void {
    this.active.add(work);
    this.#count(work.kind, 1);
  }

  /** Stops counting `work` (idempotent); wakes drains once nothing is left. */
  release(work: Tracked): void {
    if (!this.active.delete(work)) return;
    this.#count(work.kind, -1);
    if (this.active.size === 0 && this.#idleWaiters.length > 0) {
      const waiters = this.#idleWaiters;
      this.#idleWaiters = [];
      for (const wake of waiters) wake();
    }
  }

  /** Resolves once nothing is in flight, or after `timeoutMs`. */
  whenIdle(timeoutMs: number): Promise<void> {
    if (this.active.size === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(done, timeoutMs);
      function done(): void {
        clearTimeout(timer);
        resolve();
      }
      this.#idleWaiters.push(done);
    });
  }

  /** Logs an upstream failure: every one at debug, at most one every 10 s at warn. */
  failed(error: Error, what: string): void {
    const fields = { upstream: this.key, error: error.message, code: (error as { code?: unknown }).code };
    const now = Date.now();
    if (now - this.#lastWarn >= 10_000) {
      this.#lastWarn = now;
      this.#log.warn(fields, `upstream ${what} failed`);
    } else {
      this.#log.debug(fields, `upstream ${what} failed`);
    }
  }

  /** Destroys all remaining work and closes the pool. Returns how much work was destroyed. */
  async close(): Promise<number> {
    const remaining = [...this.active];
    for (const work of remaining) work.destroy();
    for (const work of remaining) this.release(work);
    const pool = this.#pool;
    this.#pool = undefined;
    if (pool) await (remaining.length > 0 ? pool.destroy() : pool.close()).catch(() => {});
    return remaining.length;
  }

  #count(kind: WorkKind, delta: number): void {
    if (kind === 'request') this.load.requests += delta;
    else if (kind === 'websocket') this.load.websockets += delta;
    else this.load.tcp += delta;
  }
}

/** All upstreams of one proxy process, by `host:port`. */
export class Upstreams {
  readonly #entries = new Map<string, UpstreamEntry>();
  readonly #log: Logger;

  constructor(log: Logger) {
    this.#log = log;
  }

  /** The entry for `key` (created on first use). */
  entry(key: string): UpstreamEntry {
    let entry = this.#entries.get(key);
    if (entry === undefined) {
      entry = new UpstreamEntry(key, this.#log);
      this.#entries.set(key, entry);
    }
    return entry;
  }

  /** In-flight counts of every upstream that has any. */
  stats(): Record<string, UpstreamLoad> {
    const out: Record<string, UpstreamLoad> = {};
    for (const [key, entry] of this.#entries) if (entry.active.size > 0) out[key] = { ...entry.load };
    return out;
  }

  /**
   * Waits until `upstream` has nothing in flight or `timeoutMs` passes, then destroys what is
   * left and closes its pool. The caller has already moved its routes elsewhere; work that
   * starts on it meanwhile is waited for too.
   */
  async drain(upstream: Pick<Upstream, 'host' | 'port'>, timeoutMs: number): Promise<DrainResult> {
    const key = upstreamKey(upstream);
    const entry = this.#entries.get(key);
    if (entry === undefined) return { drained: true, remaining: 0, waitedMs: 0 };
    const start = performance.now();
    await entry.whenIdle(timeoutMs);
    const waitedMs = Math.round(performance.now() - start);
    if (this.#entries.get(key) === entry) this.#entries.delete(key);
    const remaining = await entry.close();
    this.#log.info({ upstream: key, remaining, waitedMs }, remaining === 0 ? 'upstream drained' : 'upstream drain timed out; remaining work destroyed');
    return { drained: remaining === 0, remaining, waitedMs };
  }

  /** Waits (at most `timeoutMs`) for every upstream to go idle, then closes them all. Returns how much work was destroyed. */
  async closeAll(timeoutMs: number): Promise<number> {
    const entries = [...this.#entries.values()];
    this.#entries.clear();
    const deadline = Date.now() + timeoutMs;
    for (const entry of entries) await entry.whenIdle(Math.max(0, deadline - Date.now()));
    let destroyed = 0;
    for (const entry of entries) destroyed += await entry.close();
    return destroyed;
  }
}
