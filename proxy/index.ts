/**
 * The depad proxy process: `startProxy` loads the saved routes (so every route is served again
 * at once after a restart), opens the HTTP listener, the TCP route listeners and the control
 * channel, and returns a handle whose `close()` shuts it all down after in-flight work ends.
 * `depad proxy` (the CLI) calls it and closes it on SIGTERM/SIGINT. The proxy never opens
 * depad's LevelDB: routes reach it through the control channel (see client.ts). For an agent
 * restart, a proxy hands its listening sockets to a new process (`listeners()`, then `retire()`:
 * stop accepting, serve what was accepted, drain) and the new one starts on them (`inherit`).
 */
import { readFileSync } from 'node:fs';
import fs from 'node:fs/promises';
import net from 'node:net';
import tls from 'node:tls';
import { createLogger } from '../src/logger.ts';
import type { Logger } from '../src/logger.ts';
import { affinityKeyFile, loadAffinityKey } from './affinity.ts';
import { startControlServer } from './control-server.ts';
import { listenerHandle, listenOnHandle, listenTcp } from './listeners.ts';
import type { ListenHandle } from './listeners.ts';
import type { ControlServer } from './control-server.ts';
import { ClientConnections } from './http-connection.ts';
import { proxyLimits } from './limits.ts';
import type { ProxyLimits } from './limits.ts';
import type { ForwardContext } from './http-connection.ts';
import { PauseGate } from './pause-gate.ts';
import { parsePeerTable, PeerRoutes } from './peer-routes.ts';
import type { PeerTable } from './peer-routes.ts';
import { RouteTable } from './route-table.ts';
import { STATE_DIR_MODE } from './snapshot-file.ts';
import { TcpListeners } from './tcp-proxy.ts';
import type { CertificateSource, ChallengeResponder, RouteSnapshot } from './types.ts';
import { Upstreams } from './upstreams.ts';
import type { UpstreamLoad } from './upstreams.ts';

/** The CLI's client of the control channel (import `./client.ts` directly to avoid loading the proxy). */
export { ProxyClient } from './client.ts';
/** The client's options, health answer and route-change result. */
export type { ProxyClientOptions, ProxyHealth, RouteChange } from './client.ts';
/** The shared vocabulary (types.ts). */
export type { CertificateSource, ChallengeResponder, DrainResult, Route, RouteSnapshot, Upstream } from './types.ts';
/** Timeouts and buffer bounds of client connections, and their defaults. */
export { DEFAULT_LIMITS } from './limits.ts';
export type { ProxyLimits } from './limits.ts';
/** In-flight counts per upstream, as `load()` reports them. */
export type { UpstreamLoad } from './upstreams.ts';

export { proxyPaths } from './paths.ts';
/** A listening socket as it is handed to another process. */
export type { ListenHandle } from './listeners.ts';
import { proxyPaths, type ProxyPaths } from './paths.ts';
import { writeListening } from './listening.ts';
export type { ProxyPaths } from './paths.ts';

/** Options of `startProxy`; the limits (`ProxyLimits`, see limits.ts) default to `DEFAULT_LIMITS`. */
export interface ProxyOptions extends Partial<ProxyLimits> {
  /** Directory of `routes.json` and `control.sock` (created, mode 0750, if missing). */
  stateDir: string;
  /** Port of the HTTP listener (default 80; 0 picks a free one, see `httpPort` on the handle). */
  httpPort?: number;
  /** Address of the HTTP listener (default 0.0.0.0). */
  httpHost?: string;
  /** Address the TCP route listeners bind (default 0.0.0.0). */
  tcpHost?: string;
  /** Logger (default: warnings and errors on stderr). */
  logger?: Logger;
  /** How long `close()` waits for in-flight work before ending it (default 10 000 ms). */
  closeTimeoutMs?: number;
  /** The HTTPS listener (TLS with SNI): where, and the certificates it serves. Unset: none. */
  https?: { port: number; host?: string; certificates: CertificateSource };
  /** Answers ACME HTTP-01 challenges on the HTTP listener. */
  challenges?: ChallengeResponder;
  /** Start on the listening sockets of a previous proxy process instead of binding (agent restart). */
  inherit?: InheritedListeners;
}

/** The listening sockets of a proxy, as one process hands them to the next. */
export interface ProxyListeners {
  http: ListenHandle;
  https?: ListenHandle;
  control: ListenHandle;
  /** TCP route listeners by listen port. */
  tcp: Map<number, ListenHandle>;
}

/** The previous process's route table once it stopped taking changes, and the upstreams it had marked unhealthy. */
export interface RouteHandover {
  snapshot: RouteSnapshot;
  unhealthy: string[];
  /** The cluster's peer routes (peer-routes.ts), when it had some. */
  peers?: PeerTable;
}

/**
 * Sockets handed over by the previous proxy process. The data listeners serve at once; the control
 * channel listens once `routes` resolves (the old process has stopped taking changes then), after
 * the table took the old one's last routes.
 */
export interface InheritedListeners extends ProxyListeners {
  routes: Promise<RouteHandover>;
}

/** Options of `ProxyHandle.retire`. */
export interface RetireOptions {
  /** An idle keep-alive connection is closed after this long (default 1000 ms). */
  idleGraceMs?: number;
  /** HTTP exchanges still running after this long are ended (default: the close timeout). */
  httpTimeoutMs?: number;
  /** WebSockets and TCP connections still open after this long are ended (default 30 000 ms). */
  drainTimeoutMs?: number;
}

/** A retiring proxy: its last routes, and when its work is done. */
export interface Retired extends RouteHandover {
  /** Resolves once no HTTP exchange remains (open WebSockets and TCP connections aside). */
  http: Promise<void>;
  /** Resolves, with how much work was ended at the deadline, once nothing remains and all is closed. */
  done: Promise<number>;
}
/** A running proxy. */
export interface ProxyHandle {
  /** The HTTP listener's port (the one picked when `httpPort` was 0). */
  readonly httpPort: number;
  /** The HTTPS listener's port, when there is one. */
  readonly httpsPort: number | undefined;
  readonly paths: ProxyPaths;
  /** The current route snapshot. */
  routes(): RouteSnapshot;
  /** Calls `listener` after every route change with the new snapshot. */
  onRoutes(listener: (snapshot: RouteSnapshot) => void): void;
  /** Marks an upstream (`host:port`) unhealthy or healthy: a route passes over unhealthy ones while it has another. */
  markUpstream(key: string, healthy: boolean): void;
  /** In-flight requests, WebSockets and TCP connections per busy upstream (`host:port`). */
  load(): Record<string, UpstreamLoad>;
  /** Ports the TCP route listeners listen on now. */
  tcpPorts(): number[];
  /** Resolves once the control channel listens (at once, unless the listeners were handed over). */
  readonly controlReady: Promise<void>;
  /** Stops accepting, waits (bounded) for in-flight work, then closes everything. Idempotent. */
  close(): Promise<void>;
  /** The listening sockets, for another process to take over (then `retire()`). */
  listeners(): ProxyListeners;
  /**
   * After the listeners were handed over: stops accepting on them (the sockets stay open in the
   * other process), stops taking route changes, and drains: every response says
   * `Connection: close`, idle keep-alive connections close after a grace, WebSockets and TCP
   * connections are left until they end or `drainTimeoutMs`. Then everything is closed.
   */
  retire(options?: RetireOptions): Promise<Retired>;
}

function packageVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version?: unknown };
    return typeof pkg.version === 'string' ? pkg.version : 'unknown';
  } catch {
    return 'unknown';
  }
}

/** Starts a proxy on `options.stateDir`; resolves once every listener is up. */
export async function startProxy(options: ProxyOptions): Promise<ProxyHandle> {
  const log = options.logger ?? createLogger();
  const paths = proxyPaths(options.stateDir);
  await fs.mkdir(options.stateDir, { recursive: true, mode: STATE_DIR_MODE });
  const table = await RouteTable.load(paths.snapshotFile);
  const upstreams = new Upstreams(log);
  const gate = new PauseGate();
  const peers = new PeerRoutes();
  const affinityKey = await loadAffinityKey(affinityKeyFile(options.stateDir), log);
  let closing = false;
  let retiring: number | undefined;
  const ctx: ForwardContext = {
    table,
    upstreams,
    gate,
    log,
    proto: 'http',
    closing: () => closing,
    retiring: () => retiring,
    limits: proxyLimits(options),
    affinityKey,
    peers,
  };
  const inherit = options.inherit;
  const tcp = new TcpListeners({ table, upstreams, gate, log, host: options.tcpHost ?? '0.0.0.0', ...(inherit ? { inherited: new Map(inherit.tcp) } : {}) });
  table.onChange((snapshot) => {
    gate.wake();
    upstreams.prune(snapshot, peers.keys());
    return tcp.sync(snapshot);
  });

  const clients = new ClientConnections();
  // Half-open: a client that ends its side after a request still gets the response.
  // Accepted paused: each socket is re-made to read into a shared buffer (client-socket.ts).
  const server = net.createServer({ allowHalfOpen: true, noDelay: true, pauseOnConnect: true }, (socket) => clients.accept(socket, ctx, true));
  // The HTTPS listener shares everything but the scheme; ACME challenges and redirects to HTTPS are the HTTP listener's alone.
  const https = options.https;
  const secure = https === undefined ? undefined : httpsServer(https.certificates, clients, { ...ctx, proto: 'https' }, log);
  if (options.challenges) ctx.challenges = options.challenges;

  let control: ControlServer | undefined;
  let httpPort: number;
  let httpsPort: number | undefined;
  const controlOptions = { socketPath: paths.socketPath, table, upstreams, gate, peers, log, version: packageVersion() };
  try {
    // The control socket is claimed first: a second proxy on the same state fails before binding anything.
    if (!inherit) control = await startControlServer(controlOptions);
    httpPort = inherit ? await listenOnHandle(server, inherit.http) : await listenTcp(server, options.httpPort ?? 80, options.httpHost ?? '0.0.0.0');
    if (secure && https) {
      httpsPort = inherit?.https ? await listenOnHandle(secure, inherit.https) : await listenTcp(secure, https.port, https.host ?? options.httpHost ?? '0.0.0.0');
      ctx.httpsRedirect = { port: httpsPort, certificates: https.certificates };
    }
    await tcp.sync(table.snapshot);
  } catch (error) {
    await control?.close();
    await tcp.close();
    server.close();
    secure?.close();
    clients.destroyAll();
    throw error;
  }
  log.info({ httpPort, httpsPort, routes: table.snapshot.routes.length, version: table.snapshot.version, inherited: inherit !== undefined }, 'proxy started');
  // For depad's views: routes are shown with the port clients use.
  await writeListening(options.stateDir, { pid: process.pid, httpPort, ...(httpsPort === undefined ? {} : { httpsPort }) }).catch((error: Error) =>
    log.warn({ stateDir: options.stateDir, err: error.message }, 'could not record the ports the proxy listens on'),
  );
  // Handed over: the old process's last routes first, then the control channel on its socket.
  let stopped = false;
  const controlReady = !inherit
    ? Promise.resolve()
    : inherit.routes.then(async ({ snapshot, unhealthy, peers: peerTable }) => {
        if (stopped) return (inherit.control as { close?: () => void }).close?.();
        await table.adopt(snapshot);
        for (const key of unhealthy) table.markUpstream(key, false);
        try {
          if (peerTable !== undefined) peers.set(parsePeerTable(peerTable));
        } catch (error) {
          log.warn({ err: (error as Error).message }, 'the peer routes handed over were refused; they come with the next heartbeat');
        }
        tcp.dropInherited();
        const started = await startControlServer({ ...controlOptions, inherited: inherit.control });
        if (stopped) await started.close();
        else control = started;
      });
  controlReady.catch((error: unknown) => log.error({ err: (error as Error).message }, 'the control channel did not start after the handover'));

  const listenersClosed = (): Promise<void> => Promise.all([server, ...(secure ? [secure] : [])].map((s) => new Promise<void>((resolve) => s.close(() => resolve())))).then(() => {});
  let closed: Promise<void> | undefined;
  const close = async (): Promise<void> => {
    closing = true;
    stopped = true;
    gate.close();
    const httpClosed = listenersClosed();
    clients.closeIdle();
    await Promise.all([tcp.close(), control?.close()]);
    const destroyed = await upstreams.closeAll(options.closeTimeoutMs ?? 10_000);
    clients.destroyAll();
    await httpClosed;
    log.info({ destroyed }, 'proxy stopped');
  };
  const retire = async (o: RetireOptions = {}): Promise<Retired> => {
    const graceMs = o.idleGraceMs ?? 1000;
    retiring = graceMs;
    // The listeners close at once; their close callbacks wait for every connection, so they are not awaited.
    void listenersClosed();
    void tcp.close();
    await control?.retire(2000);
    clients.retire(graceMs);
    const snapshot = table.snapshot;
    const httpDeadline = Date.now() + (o.httpTimeoutMs ?? options.closeTimeoutMs ?? 10_000);
    const http = (async () => {
      while (clients.exchanges > 0 && Date.now() < httpDeadline) await new Promise((r) => setTimeout(r, 25));
    })();
    const done = http.then(async () => {
      closing = true;
      gate.close();
      const destroyed = await upstreams.closeAll(o.drainTimeoutMs ?? 30_000);
      clients.destroyAll();
      log.info({ destroyed }, 'proxy retired');
      return destroyed;
    });
    log.info({ routes: snapshot.routes.length, version: snapshot.version, graceMs }, 'proxy retiring: listeners handed over');
    const peerTable = peers.table;
    return { snapshot, unhealthy: [...table.unhealthy], ...(peerTable ? { peers: peerTable } : {}), http, done };
  };
  const listeners = (): ProxyListeners => {
    const handle = (s: net.Server, what: string): ListenHandle => {
      const h = listenerHandle(s);
      if (h === undefined) throw new Error(`the proxy's ${what} listener is not listening`);
      return h;
    };
    const controlHandle = control?.handle();
    if (controlHandle === undefined) throw new Error("the proxy's control channel is not listening");
    return { http: handle(server, 'HTTP'), ...(secure ? { https: handle(secure, 'HTTPS') } : {}), control: controlHandle, tcp: tcp.handles() };
  };
  return {
    httpPort,
    httpsPort,
    paths,
    controlReady,
    routes: () => table.snapshot,
    onRoutes: (listener) => table.onChange(listener),
    markUpstream: (key, healthy) => table.markUpstream(key, healthy),
    load: () => upstreams.stats(),
    tcpPorts: () => tcp.ports,
    close: () => (closed ??= close()),
    listeners,
    retire,
  };
}

/**
 * The HTTPS listener: TLS with the certificate SNI names (none → the handshake is refused), HTTP/1.1
 * by ALPN, then the same client connections as the HTTP listener, with X-Forwarded-Proto https.
 */
function httpsServer(certificates: CertificateSource, clients: ClientConnections, ctx: ForwardContext, log: Logger): tls.Server {
  const server = tls.createServer(
    {
      // Not half-open: a TLS socket that gets EOF during the handshake would wait for ever.
      noDelay: true,
      // Handshakes that stall are cut off long before the 120 s default.
      handshakeTimeout: 10_000,
      ALPNProtocols: ['http/1.1'],
      SNICallback: (servername, done) => {
        const context = certificates.context(servername.toLowerCase());
        if (context) done(null, context);
        else done(new Error(`no certificate for ${servername}`));
      },
    },
    (socket) => clients.accept(socket, ctx),
  );
  server.on('tlsClientError', (error, socket) => {
    log.debug({ err: error.message, client: socket.remoteAddress }, 'TLS handshake failed');
    socket.destroy();
  });
  return server;
}
