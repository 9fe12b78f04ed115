/**
 * The depad proxy process: `startProxy` loads the saved routes (so every route is served again
 * at once after a restart), opens the HTTP listener, the TCP route listeners and the control
 * channel, and returns a handle whose `close()` shuts it all down after in-flight work ends.
 * `depad proxy` (the CLI) calls it and closes it on SIGTERM/SIGINT. The proxy never opens
 * depad's LevelDB: routes reach it through the control channel (see client.ts).
 */
import { readFileSync } from 'node:fs';
import fs from 'node:fs/promises';
import net from 'node:net';
import tls from 'node:tls';
import { createLogger } from '../src/logger.ts';
import type { Logger } from '../src/logger.ts';
import { startControlServer } from './control-server.ts';
import { listenTcp } from './listeners.ts';
import type { ControlServer } from './control-server.ts';
import { ClientConnections } from './http-connection.ts';
import { proxyLimits } from './limits.ts';
import type { ProxyLimits } from './limits.ts';
import type { ForwardContext } from './http-connection.ts';
import { PauseGate } from './pause-gate.ts';
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
import { proxyPaths, type ProxyPaths } from './paths.ts';
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
  /** Stops accepting, waits (bounded) for in-flight work, then closes everything. Idempotent. */
  close(): Promise<void>;
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
  let closing = false;
  const ctx: ForwardContext = {
    table,
    upstreams,
    gate,
    log,
    proto: 'http',
    closing: () => closing,
    limits: proxyLimits(options),
  };
  const tcp = new TcpListeners({ table, upstreams, gate, log, host: options.tcpHost ?? '0.0.0.0' });
  table.onChange((snapshot) => {
    gate.wake();
    upstreams.prune(snapshot);
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
  try {
    // The control socket is claimed first: a second proxy on the same state fails before binding anything.
    control = await startControlServer({ socketPath: paths.socketPath, table, upstreams, gate, log, version: packageVersion() });
    httpPort = await listenTcp(server, options.httpPort ?? 80, options.httpHost ?? '0.0.0.0');
    if (secure && https) {
      httpsPort = await listenTcp(secure, https.port, https.host ?? options.httpHost ?? '0.0.0.0');
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
  log.info({ httpPort, httpsPort, routes: table.snapshot.routes.length, version: table.snapshot.version }, 'proxy started');

  let closed: Promise<void> | undefined;
  const close = async (): Promise<void> => {
    closing = true;
    gate.close();
    const httpClosed = Promise.all([server, ...(secure ? [secure] : [])].map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
    clients.closeIdle();
    await Promise.all([tcp.close(), control?.close()]);
    const destroyed = await upstreams.closeAll(options.closeTimeoutMs ?? 10_000);
    clients.destroyAll();
    await httpClosed;
    log.info({ destroyed }, 'proxy stopped');
  };
  return {
    httpPort,
    httpsPort,
    paths,
    routes: () => table.snapshot,
    onRoutes: (listener) => table.onChange(listener),
    markUpstream: (key, healthy) => table.markUpstream(key, healthy),
    load: () => upstreams.stats(),
    tcpPorts: () => tcp.ports,
    close: () => (closed ??= close()),
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
