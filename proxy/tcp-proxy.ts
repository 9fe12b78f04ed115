/**
 * TCP routes: one `net.Server` per route's listen port, started and stopped as routes appear
 * and disappear (`sync` after every route-table change). Each accepted connection goes to the
 * route's upstream chosen at accept time (the one with the fewest open connections, round robin
 * among ties; balance.ts), is held while the route is paused, and
 * is piped both ways with half-close (`allowHalfOpen`) and backpressure; an error on either side
 * destroys both. Connections are tracked on their upstream until closed or drained. A proxy that
 * took over from another process (agent restart) listens on the sockets it was handed for those
 * ports instead of binding them.
 */
import net from 'node:net';
import { listenerHandle, listenOnHandle } from './listeners.ts';
import type { ListenHandle } from './listeners.ts';
import type { Logger } from '../src/logger.ts';
import { isPaused } from './pause-gate.ts';
import type { PauseGate } from './pause-gate.ts';
import { entryAt, pickUpstream } from './balance.ts';
import type { ActiveRoute, RouteTable } from './route-table.ts';
import type { RouteSnapshot } from './types.ts';
import { SocketPair } from './upstreams.ts';
import type { Upstreams } from './upstreams.ts';

/** What the TCP listeners need. */
export interface TcpContext {
  table: RouteTable;
  upstreams: Upstreams;
  gate: PauseGate;
  log: Logger;
  /** Address the listeners bind (default 0.0.0.0). */
  host: string;
  /** Listening sockets handed over by the previous proxy process, by port (taken as their routes appear). */
  inherited?: Map<number, ListenHandle>;
}

/** Pipes `client` to `active`'s least connected upstream (balance.ts); closes the client when there is none or it fails. */
function connect(ctx: TcpContext, active: ActiveRoute, client: net.Socket): void {
  const i = pickUpstream(active, ctx.upstreams, ctx.table.unhealthy, 'tcp');
  if (i < 0) {
    client.destroy();
    return;
  }
  const upstream = active.route.upstreams[i] as ActiveRoute['route']['upstreams'][number];
  const entry = entryAt(active, ctx.upstreams, i);
  const up = net.connect({ host: upstream.host, port: upstream.port, allowHalfOpen: true, noDelay: true });
  const work = new SocketPair('tcp', client, up);
  entry.add(work);
  up.once('connect', () => {
    client.pipe(up);
    up.pipe(client);
  });
  up.on('error', (error) => {
    entry.failed(error, 'tcp connection');
    client.destroy();
  });
  client.on('error', () => up.destroy());
  // Once one side is fully closed, the other finishes writing what it has, then closes.
  up.once('close', () => {
    entry.release(work);
    if (!client.destroyed) client.destroySoon();
  });
  client.once('close', () => {
    entry.release(work);
    if (!up.destroyed) up.destroySoon();
  });
}

function accept(ctx: TcpContext, port: number, client: net.Socket): void {
  client.on('error', () => client.destroy());
  client.setNoDelay(true);
  const active = ctx.table.tcpRoute(port);
  if (active === undefined) {
    client.destroy();
    return;
  }
  if (!isPaused(active)) return connect(ctx, active, client);
  const wait = ctx.gate.wait(() => ctx.table.tcpRoute(port));
  client.once('close', wait.cancel);
  void wait.outcome.then((outcome) => {
    client.off('close', wait.cancel);
    if (outcome.kind === 'ready') connect(ctx, outcome.active, client);
    else client.destroy();
  });
}

/** The TCP listeners of one proxy process, one per tcp route. */
export class TcpListeners {
  readonly #ctx: TcpContext;
  readonly #servers = new Map<number, net.Server>();
  #closed = false;

  constructor(ctx: TcpContext) {
    this.#ctx = ctx;
  }

  /** The listening sockets by port, to hand to another process. */
  handles(): Map<number, ListenHandle> {
    const out = new Map<number, ListenHandle>();
    for (const [port, server] of this.#servers) {
      const handle = listenerHandle(server);
      if (handle !== undefined) out.set(port, handle);
    }
    return out;
  }

  /** Closes the handed-over sockets no route took (their routes went away during the handover). */
  dropInherited(): void {
    const inherited = this.#ctx.inherited;
    if (inherited === undefined) return;
    for (const [port, handle] of inherited) {
      (handle as { close?: () => void }).close?.();
      this.#ctx.log.info({ port }, 'handed-over tcp listener closed: no route uses it');
    }
    inherited.clear();
  }

  /** Ports listened on now. */
  get ports(): number[] {
    return [...this.#servers.keys()];
  }

  /**
   * Listens on every tcp route's port of `snapshot` and stops listening on the others (their
   * open connections go on until they close or are drained). A port that cannot be bound is
   * logged and tried again at the next change.
   */
  async sync(snapshot: RouteSnapshot): Promise<void> {
    if (this.#closed) return;
    const wanted = new Set<number>();
    for (const route of snapshot.routes) if (route.kind === 'tcp' && route.listenPort !== undefined) wanted.add(route.listenPort);
    for (const [port, server] of this.#servers) {
      if (!wanted.has(port)) {
        this.#servers.delete(port);
        server.close();
        this.#ctx.log.info({ port }, 'tcp listener stopped');
      }
    }
    const starts: Promise<void>[] = [];
    for (const port of wanted) if (!this.#servers.has(port)) starts.push(this.#listen(port));
    await Promise.all(starts);
  }

  /** Stops every listener (open connections are left to the caller's drain). */
  async close(): Promise<void> {
    this.#closed = true;
    this.dropInherited();
    const servers = [...this.#servers.values()];
    this.#servers.clear();
    await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  }

  async #listen(port: number): Promise<void> {
    const server = net.createServer({ allowHalfOpen: true, pauseOnConnect: true }, (client) => accept(this.#ctx, port, client));
    this.#servers.set(port, server);
    try {
      const handle = this.#ctx.inherited?.get(port);
      this.#ctx.inherited?.delete(port);
      if (handle !== undefined) await listenOnHandle(server, handle);
      else {
        await new Promise<void>((resolve, reject) => {
          server.once('error', reject);
          server.listen({ port, host: this.#ctx.host }, () => {
            server.off('error', reject);
            resolve();
          });
        });
      }
      server.on('error', (error) => this.#ctx.log.error({ port, error: error.message }, 'tcp listener failed'));
      this.#ctx.log.info({ port, host: this.#ctx.host, inherited: handle !== undefined }, 'tcp listener started');
    } catch (error) {
      if (this.#servers.get(port) === server) this.#servers.delete(port);
      this.#ctx.log.error({ port, host: this.#ctx.host, error: (error as Error).message }, 'cannot listen for a tcp route; will retry at the next route change');
    }
  }
}
