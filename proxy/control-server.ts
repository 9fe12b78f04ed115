/**
 * The proxy's control channel: HTTP with JSON bodies over a unix socket (mode 0660) in the
 * proxy's state directory. Endpoints:
 *
 *   GET    /health               → { ok: true, pid, version, routesVersion, waiting, upstreams }
 *   GET    /routes               → RouteSnapshot
 *   PUT    /deployments/:name    { routes: Route[] } → { version }   (replaces that deployment's routes)
 *   DELETE /deployments/:name    → { version }
 *   POST   /drain                { upstream: {host, port}, timeoutMs? } → DrainResult
 *   GET    /peers                → PeerTable (the key left out) or {}
 *   PUT    /peers                PeerTable → { hostnames }        (the cluster's peer routes, peer-routes.ts)
 *
 * Errors answer `{ error: { code, message, hint? } }` with the code's HTTP status.
 */
import http from 'node:http';
import { DepadError } from '../src/errors.ts';
import { claimSocket, listenerHandle, listenOnHandle, listenOnUnixSocket, removeUnixSocket } from './listeners.ts';
import type { ListenHandle } from './listeners.ts';
import type { ErrorCode } from '../src/errors.ts';
import type { Logger } from '../src/logger.ts';
import { parseDeploymentRoutes, assertDeploymentName } from './routes.ts';
import type { RouteTable } from './route-table.ts';
import type { PauseGate } from './pause-gate.ts';
import type { Upstreams } from './upstreams.ts';
import { parsePeerTable } from './peer-routes.ts';
import type { PeerRoutes } from './peer-routes.ts';

/** Default time `POST /drain` waits for in-flight work. */
export const DEFAULT_DRAIN_TIMEOUT_MS = 30_000;
/** Longest drain wait accepted. */
export const MAX_DRAIN_TIMEOUT_MS = 15 * 60_000;
/** Largest request body accepted. */
const MAX_BODY_BYTES = 4 * 1024 * 1024;

/** What the control server acts on. */
export interface ControlContext {
  socketPath: string;
  table: RouteTable;
  upstreams: Upstreams;
  gate: PauseGate;
  /** The cluster's peer routes (`PUT /peers`). */
  peers: PeerRoutes;
  log: Logger;
  /** depad's version, reported by /health. */
  version: string;
  /** The listening socket handed over by the previous proxy process (agent restart), instead of binding `socketPath`. */
  inherited?: ListenHandle;
}

/** A running control server. */
export interface ControlServer {
  /** Removes the socket file, stops, ends open connections. */
  close(): Promise<void>;
  /** The listening socket, to hand to another process. */
  handle(): ListenHandle | undefined;
  /**
   * Stops accepting and leaves the socket file (another process took the listener over); resolves
   * once the requests under way are answered (at most `timeoutMs`, then they are ended).
   */
  retire(timeoutMs: number): Promise<void>;
}

/** A DepadError answered with a status of its own (405 for a wrong method). */
class EndpointError extends DepadError {
  readonly #status: number;

  constructor(code: ErrorCode, message: string, status: number) {
    super(code, message);
    this.#status = status;
  }

  override get status(): number {
    return this.#status;
  }
}

async function readJson(req: http.IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) throw new DepadError('DEPAD_USAGE', `the request body is larger than ${MAX_BODY_BYTES} bytes`);
    chunks.push(chunk);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  if (text.trim() === '') return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    throw new DepadError('DEPAD_USAGE', `the request body is not valid JSON: ${(error as Error).message}`);
  }
}

function send(res: http.ServerResponse, status: number, value: unknown): void {
  const body = JSON.stringify(value);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

function parseDrain(body: unknown): { host: string; port: number; timeoutMs: number } {
  const b = body as { upstream?: { host?: unknown; port?: unknown }; timeoutMs?: unknown } | undefined;
  const host = b?.upstream?.host;
  const port = b?.upstream?.port;
  if (typeof host !== 'string' || host === '' || typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65535) {
    throw new DepadError('DEPAD_USAGE', 'the body must be {"upstream": {"host": string, "port": integer}, "timeoutMs"?: number}');
  }
  const timeoutMs = b?.timeoutMs ?? DEFAULT_DRAIN_TIMEOUT_MS;
  if (typeof timeoutMs !== 'number' || !Number.isFinite(timeoutMs) || timeoutMs < 0 || timeoutMs > MAX_DRAIN_TIMEOUT_MS) {
    throw new DepadError('DEPAD_USAGE', `timeoutMs must be a number from 0 to ${MAX_DRAIN_TIMEOUT_MS}`);
  }
  return { host, port, timeoutMs };
}

async function route(ctx: ControlContext, req: http.IncomingMessage): Promise<[number, unknown]> {
  const url = new URL(req.url ?? '/', 'http://control');
  const method = req.method ?? 'GET';
  const path = url.pathname;
  if (path === '/health' && method === 'GET') {
    return [200, { ok: true, pid: process.pid, version: ctx.version, routesVersion: ctx.table.snapshot.version, waiting: ctx.gate.size, upstreams: ctx.upstreams.stats() }];
  }
  if (path === '/routes' && method === 'GET') return [200, ctx.table.snapshot];
  const deployment = /^\/deployments\/([^/]+)$/.exec(path);
  if (deployment) {
    const name = decodeURIComponent(deployment[1] as string);
    if (method === 'PUT') {
      const routes = parseDeploymentRoutes(name, await readJson(req));
      const snapshot = await ctx.table.setDeployment(name, routes);
      ctx.log.info({ deployment: name, routes: routes.length, version: snapshot.version }, 'routes set');
      return [200, { version: snapshot.version }];
    }
    if (method === 'DELETE') {
      assertDeploymentName(name);
      const snapshot = await ctx.table.removeDeployment(name);
      ctx.log.info({ deployment: name, version: snapshot.version }, 'routes removed');
      return [200, { version: snapshot.version }];
    }
  }
  if (path === '/drain' && method === 'POST') {
    const { host, port, timeoutMs } = parseDrain(await readJson(req));
    return [200, await ctx.upstreams.drain({ host, port }, timeoutMs)];
  }
  if (path === '/peers' && method === 'PUT') {
    const table = parsePeerTable(await readJson(req));
    const changed = JSON.stringify(table) !== JSON.stringify(ctx.peers.table);
    ctx.peers.set(table);
    ctx.upstreams.prune(ctx.table.snapshot, ctx.peers.keys());
    if (changed) ctx.log.info({ peers: table.hosts.length, hostnames: Object.keys(table.routes).length }, 'peer routes set');
    return [200, { hostnames: Object.keys(table.routes).length }];
  }
  if (path === '/peers' && method === 'GET') {
    const table = ctx.peers.table;
    return [200, table === undefined ? {} : { self: table.self, hosts: table.hosts, routes: table.routes }];
  }
  const known = path === '/health' || path === '/routes' || path === '/drain' || path === '/peers' || deployment !== null;
  if (known) throw new EndpointError('DEPAD_USAGE', `${method} is not allowed on ${path}`, 405);
  throw new EndpointError('DEPAD_NOT_FOUND', `no such endpoint: ${path}`, 404);
}

/** Starts the control server on `ctx.socketPath` (claiming a stale socket file first; mode 0660), or on `ctx.inherited`. */
export async function startControlServer(ctx: ControlContext): Promise<ControlServer> {
  if (ctx.inherited === undefined) await claimSocket(ctx.socketPath, 'depad proxy');
  const server = http.createServer((req, res) => {
    route(ctx, req).then(
      ([status, value]) => send(res, status, value),
      (error: unknown) => {
        const e = error instanceof DepadError ? error : new DepadError('DEPAD_INTERNAL', (error as Error).message ?? String(error), { cause: error });
        if (e.code === 'DEPAD_INTERNAL' || e.code === 'DEPAD_STATE_CORRUPT') ctx.log.error({ error: e.message }, 'control request failed');
        send(res, e.status, { error: { code: e.code, message: e.message, hint: e.hint } });
      },
    );
  });
  if (ctx.inherited === undefined) await listenOnUnixSocket(server, ctx.socketPath);
  else await listenOnHandle(server, ctx.inherited);
  ctx.log.info({ socket: ctx.socketPath, inherited: ctx.inherited !== undefined }, 'control channel listening');
  let retired = false;
  return {
    handle: () => listenerHandle(server),
    close: async () => {
      if (!retired) await removeUnixSocket(ctx.socketPath);
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
    retire: async (timeoutMs) => {
      retired = true;
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      const timer = setTimeout(() => server.closeAllConnections(), timeoutMs);
      await closed;
      clearTimeout(timer);
    },
  };
}
