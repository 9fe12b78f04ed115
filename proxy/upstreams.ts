/**
 * What the proxy knows about each upstream (`host:port`): its idle keep-alive connections, and
 * everything in flight to it (HTTP requests, upgraded WebSockets, TCP connections), so that
 * `drain` can wait for that work to finish, or end what remains.
 */
import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { Duplex } from 'node:stream';
import type { Logger } from '../src/logger.ts';
import { upstreamKey } from './route-table.ts';
import { coarseNow } from './coarse-clock.ts';
import type { DrainResult, RouteSnapshot, Upstream } from './types.ts';
import { IDLE_TIMEOUT_MS, UpstreamSocket } from './upstream-socket.ts';
import type { IdleHome } from './upstream-socket.ts';

/** Kinds of work tracked per upstream. */
export type WorkKind = 'request' | 'websocket' | 'tcp';

/**
 * One piece of in-flight work: counted on its upstream until released, ended by `destroy` when
 * a drain times out. Entries keep their work in an intrusive linked list (the links live here):
 * a Set churned at every request made V8 promote in-flight objects and slowed scavenges 10×.
 */
export abstract class Tracked {
  abstract readonly kind: WorkKind;
  /** Ends the work at once (both sides). */
  abstract destroy(): void;
  /** Called about once a second with `Date.now()`: ends the work if it is overdue (default: never). */
  expire(_now: number): void {}
  /** The entry this work is counted on, while it is. */
  trackedBy: UpstreamEntry | null = null;
  /** Links of the entry's in-flight list. */
  prevWork: Tracked | null = null;
  nextWork: Tracked | null = null;
}

/** A pair of piped sockets (an upgraded WebSocket or a TCP route connection) as tracked work. */
export class SocketPair extends Tracked {
  readonly kind: 'websocket' | 'tcp';
  readonly #a: Duplex;
  readonly #b: Duplex;

  constructor(kind: 'websocket' | 'tcp', a: Duplex, b: Duplex) {
    super();
    this.kind = kind;
    this.#a = a;
    this.#b = b;
  }

  /** Resets both connections. */
  destroy(): void {
    abortSocket(this.#a);
    abortSocket(this.#b);
  }
}

/**
 * Ends a connection abruptly (TCP RST where possible), so the peer sees an abort, not a clean
 * close. Not after `end()`: libuv refuses a reset while a shutdown is pending, and Node then never
 * closes the handle (the process cannot exit).
 */
export function abortSocket(socket: Duplex): void {
  if (socket.destroyed) return;
  if (socket.writableEnded) return void socket.destroy();
  try {
    (socket as Socket).resetAndDestroy();
  } catch {
    socket.destroy();
  }
}

/** Counts of in-flight work for one upstream. */
export interface UpstreamLoad {
  requests: number;
  websockets: number;
  tcp: number;
}

/** Most idle connections kept per upstream. */
const MAX_IDLE = 128;

/** One upstream's idle connections and in-flight work. */
export class UpstreamEntry implements IdleHome {
  readonly key: string;
  readonly host: string;
  readonly port: number;
  readonly load: UpstreamLoad = { requests: 0, websockets: 0, tcp: 0 };
  #size = 0;
  #head: Tracked | null = null;
  /** Idle keep-alive connections, most recently used last. */
  #idle: UpstreamSocket[] = [];
  #closed = false;
  #idleWaiters: (() => void)[] = [];
  #lastWarn = 0;
  readonly #log: Logger;

  constructor(key: string, log: Logger) {
    this.key = key;
    const colon = key.lastIndexOf(':');
    this.host = key.slice(0, colon).replace(/^\[(.*)\]$/, '$1');
    this.port = Number(key.slice(colon + 1));
    this.#log = log;
  }

  /** True once closed (drained or pruned): a new entry serves the upstream from then on. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Number of pieces of work in flight. */
  get size(): number {
    return this.#size;
  }

  /** A connection for one exchange: the most recently idle one, or a new one. */
  acquire(): UpstreamSocket {
    for (let conn = this.#idle.pop(); conn !== undefined; conn = this.#idle.pop()) {
      if (conn.usable) return conn;
      conn.destroy();
    }
    return this.connect();
  }

  /** A new connection (also for a retry after a stale keep-alive one failed). */
  connect(): UpstreamSocket {
    return new UpstreamSocket(this.host, this.port, this);
  }

  /** Takes a connection back after a complete exchange, to be reused (or closes it when not wanted). */
  reuse(conn: UpstreamSocket): void {
    conn.user = null;
    conn.served++;
    if (this.#closed || !conn.usable || this.#idle.length >= MAX_IDLE) return conn.destroy();
    conn.idleSince = coarseNow();
    this.#idle.push(conn);
  }

  /** Forgets an idle connection that closed (or is being closed). */
  dropIdle(conn: UpstreamSocket): void {
    const i = this.#idle.lastIndexOf(conn);
    if (i >= 0) this.#idle.splice(i, 1);
  }

  /** Counts `work` as in flight. */
  add(work: Tracked): void {
    if (work.trackedBy !== null) return;
    work.trackedBy = this;
    work.nextWork = this.#head;
    if (this.#head !== null) this.#head.prevWork = work;
    this.#head = work;
    this.#size++;
    this.#count(work.kind, 1);
  }

  /** Stops counting `work` (idempotent); wakes drains once nothing is left. */
  release(work: Tracked): void {
    if (work.trackedBy !== this) return;
    const { prevWork, nextWork } = work;
    if (prevWork !== null) prevWork.nextWork = nextWork;
    else this.#head = nextWork;
    if (nextWork !== null) nextWork.prevWork = prevWork;
    work.trackedBy = work.prevWork = work.nextWork = null;
    this.#size--;
    this.#count(work.kind, -1);
    if (this.#size === 0 && this.#idleWaiters.length > 0) {
      const waiters = this.#idleWaiters;
      this.#idleWaiters = [];
      for (const wake of waiters) wake();
    }
  }

  /** Lets every piece of work check whether it is overdue; closes connections idle too long. */
  expire(now: number): void {
    while (this.#idle.length > 0 && now - (this.#idle[0] as UpstreamSocket).idleSince >= IDLE_TIMEOUT_MS) (this.#idle[0] as UpstreamSocket).destroy();
    for (let w = this.#head; w !== null; ) {
      const next = w.nextWork;
      w.expire(now);
      w = next;
    }
  }

  /** Resolves once nothing is in flight, or after `timeoutMs`. */
  whenIdle(timeoutMs: number): Promise<void> {
    if (this.#size === 0) return Promise.resolve();
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

  /** Destroys all remaining work and the idle connections. Returns how much work was destroyed. */
  close(): number {
    this.#closed = true;
    const remaining: Tracked[] = [];
    for (let w = this.#head; w !== null; w = w.nextWork) remaining.push(w);
    for (const work of remaining) work.destroy();
    for (const work of remaining) this.release(work);
    for (const conn of this.#idle.splice(0)) conn.destroy();
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
  readonly #sweeper: NodeJS.Timeout;

  constructor(log: Logger) {
    this.#log = log;
    this.#sweeper = setInterval(() => this.#sweep(), 1000).unref();
  }

  #sweep(): void {
    const now = coarseNow();
    for (const entry of this.#entries.values()) entry.expire(now);
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

  /**
   * Closes the idle connections of upstreams no route uses any more and that have nothing in flight (the
   * others are left to their drain). Called after every route change; `keep`: peer proxies' keys, also in use.
   */
  prune(snapshot: RouteSnapshot, keep?: ReadonlySet<string>): void {
    const used = new Set<string>(keep);
    for (const route of snapshot.routes) for (const u of route.upstreams) used.add(upstreamKey(u));
    for (const [key, entry] of this.#entries) {
      if (used.has(key) || entry.size > 0) continue;
      this.#entries.delete(key);
      entry.close();
    }
  }

  /** In-flight counts of every upstream that has any. */
  stats(): Record<string, UpstreamLoad> {
    const out: Record<string, UpstreamLoad> = {};
    for (const [key, entry] of this.#entries) if (entry.size > 0) out[key] = { ...entry.load };
    return out;
  }

  /**
   * Waits until `upstream` has nothing in flight or `timeoutMs` passes, then destroys what is
   * left and closes its connections. The caller has already moved its routes elsewhere; work that
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
    const remaining = entry.close();
    this.#log.info({ upstream: key, remaining, waitedMs }, remaining === 0 ? 'upstream drained' : 'upstream drain timed out; remaining work destroyed');
    return { drained: remaining === 0, remaining, waitedMs };
  }

  /** Waits (at most `timeoutMs`) for every upstream to go idle, then closes them all. Returns how much work was destroyed. */
  async closeAll(timeoutMs: number): Promise<number> {
    clearInterval(this.#sweeper);
    const entries = [...this.#entries.values()];
    this.#entries.clear();
    const deadline = Date.now() + timeoutMs;
    for (const entry of entries) await entry.whenIdle(Math.max(0, deadline - Date.now()));
    let destroyed = 0;
    for (const entry of entries) destroyed += entry.close();
    return destroyed;
  }
}
