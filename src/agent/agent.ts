/**
 * The agent: a long-lived depad that owns the state (the LevelDB lock), runs the proxy in its
 * own process, and serves the management API over HTTPS (its own CA, see certs/) and over a unix
 * socket (`<home>/agent.sock`, 0660, acting as the local administrator). At start it finishes or
 * undoes operations a crash interrupted (the journal), restores every route, and then watches the
 * engine for instances that die (reconciler.ts). `close()` stops accepting, lets running
 * operations finish, drains the proxy and releases the state.
 */
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { ensureAgentTls } from '../../certs/local-ca.ts';
import { ProxyClient } from '../../proxy/client.ts';
import { startProxy } from '../../proxy/index.ts';
import type { ProxyHandle } from '../../proxy/index.ts';
import { proxyPaths } from '../../proxy/paths.ts';
import { claimSocket, listenOnUnixSocket, listenTcp } from '../../proxy/listeners.ts';
import { AuditLog } from '../api/audit.ts';
import { FailureLimiter } from '../api/failures.ts';
import { createApiHandler, operationQueue } from '../api/handler.ts';
import type { ApiDeps } from '../api/handler.ts';
import type { OpContext } from '../deploy/context.ts';
import { recoverJournal } from '../deploy/recover.ts';
import { Engine } from '../engine/engine.ts';
import { Reconciler } from './reconciler.ts';
import { isDepadError } from '../errors.ts';
import { agentSocketPath, agentTlsDir, proxyStateDir } from '../home.ts';
import type { Logger } from '../logger.ts';
import { Store } from '../store/store.ts';

/** Options of `startAgent`. */
export interface AgentOptions {
  home: string;
  /** HTTPS API port (default 8443; 0 picks one). */
  apiPort?: number;
  /** HTTPS API address (default 0.0.0.0). */
  apiHost?: string;
  /** Names and IP addresses the server certificate covers besides localhost, the host name and loopback. */
  hostnames?: string[];
  /** The proxy's HTTP port (default 80 as root, else 8080), address and TCP route address. */
  httpPort?: number;
  httpHost?: string;
  tcpHost?: string;
  log: Logger;
}

/** A running agent. */
export interface AgentHandle {
  apiPort: number;
  httpPort: number;
  socketPath: string;
  /** SHA-256 fingerprint of the agent's CA (what remote clients pin). */
  fingerprint: string;
  /** True when this start made the CA. */
  newCa: boolean;
  /** Stops accepting, waits for running operations, drains the proxy, releases the state. */
  close(): Promise<void>;
}

/** Starts the agent; fails at once (DEPAD_STATE_LOCKED) when another depad holds the state. */
export async function startAgent(options: AgentOptions): Promise<AgentHandle> {
  const { home, log } = options;
  const socketPath = agentSocketPath(home);
  await claimSocket(socketPath, 'depad agent');
  const store = await Store.open(home, { command: 'agent', lockWaitMs: 0 });
  const cleanup: (() => Promise<unknown>)[] = [() => store.close()];
  const undo = async () => {
    for (const step of cleanup.reverse()) await step().catch(() => {});
  };
  try {
    const extra = options.hostnames ?? [];
    const tls = await ensureAgentTls({
      dir: agentTlsDir(home),
      hostnames: ['localhost', os.hostname(), ...extra.filter((h) => net.isIP(h) === 0)],
      ips: ['127.0.0.1', '::1', ...extra.filter((h) => net.isIP(h) !== 0)],
    });
    const proxy: ProxyHandle = await startProxy({
      stateDir: proxyStateDir(home),
      httpPort: options.httpPort ?? (process.getuid?.() === 0 ? 80 : 8080),
      httpHost: options.httpHost ?? '0.0.0.0',
      tcpHost: options.tcpHost ?? '0.0.0.0',
      logger: log,
    });
    cleanup.push(() => proxy.close());
    const ctx: OpContext = { home, store, engine: new Engine(), routes: new ProxyClient(proxyPaths(proxyStateDir(home))), log, progress: () => {} };
    try {
      for (const note of await recoverJournal(ctx)) log.warn({ deployment: note.name, kind: note.kind, step: note.step, action: note.action }, 'recovered an interrupted operation');
    } catch (error) {
      if (!isDepadError(error, 'DEPAD_ENGINE_UNAVAILABLE')) throw error;
      log.warn({}, 'the engine is unavailable: interrupted operations will be recovered when it answers and an operation runs');
    }
    const audit = new AuditLog(path.join(home, 'audit.log'));
    const serialize = operationQueue();
    const reconciler = new Reconciler(ctx, serialize, log);
    await reconciler.start();
    cleanup.push(() => reconciler.stop());
    const deps: ApiDeps = { context: () => ctx, audit, limiter: new FailureLimiter(), log, serialize, events: () => reconciler.events() };
    const api = https.createServer({ key: tls.serverKey, cert: tls.certChain }, createApiHandler(deps));
    const apiPort = await listenTcp(api, options.apiPort ?? 8443, options.apiHost ?? '0.0.0.0');
    cleanup.push(() => new Promise((resolve) => (api.close(resolve), api.closeIdleConnections())));
    const local = http.createServer(createApiHandler({ ...deps, local: true }));
    await listenOnUnixSocket(local, socketPath);
    cleanup.push(() => new Promise((resolve) => (local.close(resolve), local.closeIdleConnections())));
    log.info({ apiPort, socket: socketPath, httpPort: proxy.httpPort, fingerprint: tls.fingerprint }, 'agent started');

    let closed: Promise<void> | undefined;
    const close = async () => {
      // Stop accepting and watching; let running operations finish; then proxy and state.
      await reconciler.stop();
      const servers = [api, local].map((s) => new Promise<void>((resolve) => (s.close(() => resolve()), s.closeIdleConnections())));
      await deps.serialize(async () => {});
      await audit.flush();
      await Promise.all([proxy.close(), ...servers.map((p) => Promise.race([p, new Promise((r) => setTimeout(r, 2000))]))]);
      api.closeAllConnections();
      local.closeAllConnections();
      await store.close();
      log.info({}, 'agent stopped');
    };
    return { apiPort, httpPort: proxy.httpPort, socketPath, fingerprint: tls.fingerprint, newCa: tls.created.ca, close: () => (closed ??= close()) };
  } catch (error) {
    await undo();
    throw error;
  }
}
