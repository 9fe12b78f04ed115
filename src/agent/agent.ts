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
import type { SecureContext } from 'node:tls';
import fs from 'node:fs/promises';
import { AcmeManager, certificateHostnames, isPublicHostname } from '../../certs/acme.ts';
import type { CertificateStatus } from '../../certs/acme.ts';
import { CertificateStore } from '../../certs/certificate-store.ts';
import { ensureAgentTls } from '../../certs/local-ca.ts';
import { ProxyClient } from '../../proxy/client.ts';
import { startProxy } from '../../proxy/index.ts';
import type { ProxyLimits } from '../../proxy/index.ts';
import type { ProxyHandle } from '../../proxy/index.ts';
import { proxyPaths } from '../../proxy/paths.ts';
import { defaultHttpPort } from '../../proxy/listening.ts';
import { claimSocket, listenOnHandle, listenOnUnixSocket, listenTcp, removeUnixSocket } from '../../proxy/listeners.ts';
import { AuditLog } from '../api/audit.ts';
import { FailureLimiter } from '../api/failures.ts';
import { createApiHandler } from '../api/handler.ts';
import { serialQueue } from '../serial.ts';
import type { ApiDeps } from '../api/handler.ts';
import type { OpContext } from '../deploy/context.ts';
import { recoverJournal } from '../deploy/recover.ts';
import { removeStaleUploads } from '../deploy/bundle.ts';
import { Engine } from '../engine/engine.ts';
import { Reconciler } from './reconciler.ts';
import type { CrashLoopOptions } from './crash-loop.ts';
import { HealthMonitor } from './health-monitor.ts';
import { Handover } from './handover.ts';
import type { RestartOptions, RestartResult } from './handover.ts';
import { OperationGate } from './operation-gate.ts';
import type { Inheritance } from './takeover.ts';
import { DepadError, isDepadError } from '../errors.ts';
import { acmeDir, agentPidPath, agentSocketPath, agentTlsDir, proxyStateDir } from '../home.ts';
import type { Logger } from '../logger.ts';
import { Store } from '../store/store.ts';
import { depadVersion } from '../version.ts';
import type { AgentInfo } from './agent-info.ts';
import { hostCapacity, joinCluster, managerPrincipal, readMembership, startHeartbeats, type JoinOptions, type Membership } from '../cluster/membership.ts';
import type { HostCapacity } from '../store/records.ts';
import { deploymentHostnames, peerRouteSync } from '../cluster/peers.ts';

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
  /** The proxy's HTTPS listener port (default 443 as root, else 8444); it listens when ACME is on or this is given. */
  httpsPort?: number;
  /** Certificates for public route hostnames from an ACME CA (off when unset). */
  acme?: AgentAcmeOptions;
  /** The proxy's timeouts and buffer bounds (defaults: DEFAULT_LIMITS). */
  proxyLimits?: Partial<ProxyLimits>;
  /** How instances that keep dying are restarted and given up on (defaults: DEFAULT_CRASH_LOOP). */
  crashLoop?: Partial<CrashLoopOptions>;
  /** Take over the listeners of the agent that started this process (agent restart, takeover.ts). */
  inherit?: Inheritance;
  /** Join a cluster at start (`--join`); an agent that joined before rejoins by itself (cluster/membership.ts). */
  join?: JoinOptions;
  /** What this host offers the cluster, when less than the machine has (`--capacity`). */
  capacity?: Partial<HostCapacity>;
  log: Logger;
}

/** The agent's ACME settings. */
export interface AgentAcmeOptions {
  /** Directory URL (default Let's Encrypt production). */
  directoryUrl?: string;
  /** Contact address for the account. */
  email?: string;
  /** A PEM file with the CA of the ACME server's own HTTPS, when no public CA signs it (private CA, Pebble). */
  serverCaFile?: string;
  /** Renew when this many days or fewer remain (default 30). */
  renewDays?: number;
}

/** A running agent. */
export interface AgentHandle {
  apiPort: number;
  httpPort: number;
  /** The proxy's HTTPS port, when it listens. */
  httpsPort: number | undefined;
  socketPath: string;
  /** SHA-256 fingerprint of the agent's CA (what remote clients pin). */
  fingerprint: string;
  /** True when this start made the CA. */
  newCa: boolean;
  /** The cluster it is a member of: its manager and its host name there. */
  cluster?: { managerUrl: string; host: string };
  /** Stops accepting, waits for running operations, drains the proxy, releases the state. */
  close(): Promise<void>;
  /** Restarts the agent into a new process without refusing a connection (handover.ts). */
  restart(options?: RestartOptions): Promise<RestartResult>;
  /** Resolves once this agent handed over to a new process and drained (true: the new one started): the process may exit. */
  readonly retired: Promise<boolean>;
  /** Resolves when the local administrator asked the agent to stop (POST /v1/agent/stop): stop it as on SIGTERM. */
  readonly stopRequested: Promise<void>;
}

/** Starts the agent; fails at once (DEPAD_STATE_LOCKED) when another depad holds the state. */
export async function startAgent(options: AgentOptions): Promise<AgentHandle> {
  const { home, log, inherit } = options;
  const socketPath = agentSocketPath(home);
  // Taking over from a restarting agent: its sockets are inherited, its state comes once the proxy serves.
  if (!inherit) {
    // Named by its pid when its pid file has one (`depad agent` writes it once it listens).
    const pid = (await fs.readFile(agentPidPath(home), 'utf8').catch(() => '')).trim();
    await claimSocket(socketPath, /^\d+$/.test(pid) ? `depad agent (pid ${pid})` : 'depad agent');
  }
  let opened = inherit ? undefined : await Store.open(home, { command: 'agent', lockWaitMs: 0 });
  const cleanup: (() => Promise<unknown>)[] = [async () => opened?.close()];
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
    const root = process.getuid?.() === 0;
    const serveHttps = options.acme !== undefined || options.httpsPort !== undefined;
    const certificates = serveHttps ? await CertificateStore.open(acmeDir(home), (hostname, error) => log.warn({ hostname, err: error.message }, 'a stored certificate could not be loaded; it will be issued again')) : undefined;
    const acme = certificates && options.acme ? await acmeManager(options.acme, certificates, log) : undefined;
    const proxy: ProxyHandle = await startProxy({
      stateDir: proxyStateDir(home),
      httpPort: options.httpPort ?? defaultHttpPort(),
      httpHost: options.httpHost ?? '0.0.0.0',
      tcpHost: options.tcpHost ?? '0.0.0.0',
      ...(certificates ? { https: { port: options.httpsPort ?? (root ? 443 : 8444), certificates } } : {}),
      ...(acme ? { challenges: acme.challenges } : {}),
      ...options.proxyLimits,
      ...(inherit ? { inherit: inherit.proxy } : {}),
      logger: log,
    });
    cleanup.push(() => proxy.close());
    if (inherit) {
      await inherit.serving();
      opened = await Store.open(home, { command: 'agent', lockWaitMs: 10_000 });
      await proxy.controlReady;
    }
    const store: Store = opened ?? unreachable();
    if (acme) {
      // The routes' public hostnames, and the agent's own (--hostname) for its API.
      const apiNames = extra.map((h) => h.toLowerCase()).filter(isPublicHostname);
      acme.start();
      proxy.onRoutes((snapshot) => acme.want([...certificateHostnames(snapshot), ...apiNames]));
      acme.want([...certificateHostnames(proxy.routes()), ...apiNames]);
      cleanup.push(() => acme.stop());
    }
    const certificateStatus = (): CertificateStatus[] => acme?.status() ?? certificates?.list().map((certificate) => ({ hostname: certificate.hostname, state: 'valid' as const, certificate })) ?? [];
    const ctx: OpContext = { home, store, engine: new Engine(), routes: new ProxyClient(proxyPaths(proxyStateDir(home))), log, progress: () => {} };
    try {
      for (const note of await recoverJournal(ctx)) log.warn({ deployment: note.name, kind: note.kind, step: note.step, action: note.action }, 'recovered an interrupted operation');
    } catch (error) {
      if (!isDepadError(error, 'DEPAD_ENGINE_UNAVAILABLE')) throw error;
      log.warn({}, 'the engine is unavailable: interrupted operations will be recovered when it answers and an operation runs');
    }
    for (const name of await removeStaleUploads(path.join(home, 'uploads'))) log.warn({ upload: name }, 'removed a bundle an interrupted command left unpacked');
    const audit = new AuditLog(path.join(home, 'audit.log'));
    // Operations pass a gate an agent restart holds (handover.ts) before the queue.
    const gate = new OperationGate();
    const queue = gate.guard(serialQueue());
    // After every operation (create, update, stop…) the health checks follow the new instances.
    let afterOperation = (): void => {};
    const serialize = <T,>(fn: () => Promise<T>): Promise<T> => queue(fn).finally(() => afterOperation());
    const reconciler = new Reconciler(ctx, serialize, log, { ...(options.crashLoop ? { crashLoop: options.crashLoop } : {}) });
    await reconciler.start();
    cleanup.push(() => reconciler.stop());
    const health = new HealthMonitor(ctx, serialize, log, (event) => reconciler.note(event), (key, healthy) => proxy.markUpstream(key, healthy));
    reconciler.onEngineEvent((event) => health.onEngineEvent(event));
    // ls, inspect and ps show the checks' status: the same as depad health.
    reconciler.observed.health = (name) => health.statusOf(name);
    await health.start();
    afterOperation = () => health.kick();
    cleanup.push(async () => health.stop());
    const startedAt = new Date().toISOString();
    let requestStop = (): void => {};
    const stopRequested = new Promise<void>((resolve) => (requestStop = resolve));
    const info = (): AgentInfo => ({
      pid: process.pid,
      startedAt,
      version: depadVersion(),
      node: process.version,
      home,
      api: { host: options.apiHost ?? '0.0.0.0', port: apiPort },
      socket: socketPath,
      proxy: { httpHost: options.httpHost ?? '0.0.0.0', httpPort: proxy.httpPort, ...(proxy.httpsPort === undefined ? {} : { httpsPort: proxy.httpsPort }), tcpHost: options.tcpHost ?? '0.0.0.0', control: proxyPaths(proxyStateDir(home)).socketPath },
      fingerprint: tls.fingerprint,
      engine: reconciler.observed.engineStatus(),
    });
    // A member of a cluster accepts the manager's client certificate (and only it) as the administrator.
    let member: Membership | undefined = await readMembership(home);
    const clustered = member !== undefined || options.join !== undefined;
    const deps: ApiDeps = { context: () => ctx, audit, limiter: new FailureLimiter(), log, serialize, events: () => reconciler.events(), followEvents: (listener) => reconciler.followEvents(listener), certificates: certificateStatus, health: () => health.status(), observed: reconciler.observed, engine: () => reconciler.observed.engineStatus(), agent: info, principal: (req) => (member ? managerPrincipal(member)(req) : undefined), cluster: () => (member ? { managerUrl: member.managerUrl, host: member.name } : undefined) };
    // The API presents a public (ACME) certificate to clients that ask for a name that has one, else the local CA's.
    const api = https.createServer(
      {
        key: tls.serverKey,
        cert: tls.certChain,
        ...(clustered ? { requestCert: true, rejectUnauthorized: false, ...(member ? { ca: [member.managerCa] } : {}) } : {}),
        ...(certificates ? { SNICallback: (name: string, done: (error: Error | null, context?: SecureContext) => void) => done(null, certificates.context(name.toLowerCase())) } : {}),
      },
      createApiHandler(deps),
    );
    const apiPort = inherit ? await listenOnHandle(api, inherit.api) : await listenTcp(api, options.apiPort ?? 8443, options.apiHost ?? '0.0.0.0');
    cleanup.push(() => new Promise((resolve) => (api.close(resolve), api.closeIdleConnections())));
    if (options.join && !inherit) {
      member = await joinCluster(home, options.join, { caCert: tls.caCert, apiPort, httpPort: proxy.httpPort, capacity: await hostCapacity(home, store, options.capacity) });
      api.setSecureContext({ key: tls.serverKey, cert: tls.certChain, ca: [member.managerCa] });
      log.info({ manager: member.managerUrl, name: member.name }, 'joined the cluster');
    }
    const membership = member;
    const stopHeartbeats = membership
      ? startHeartbeats(membership, async (hostnames = deploymentHostnames(proxy.routes())) => ({
          capacity: await hostCapacity(home, store, options.capacity),
          httpPort: proxy.httpPort,
          version: depadVersion(),
          engine: reconciler.observed.engineStatus(),
          deployments: (await store.listDeployments()).map((d) => ({ name: d.name, id: d.id, labels: d.labels ?? {}, status: d.phase === 'ready' ? d.desired : d.phase, hostnames: hostnames.get(d.name) ?? [] })),
        }), log, peerRouteSync(new ProxyClient(proxyPaths(proxyStateDir(home))), log))
      : () => {};
    cleanup.push(async () => stopHeartbeats());
    // Only the local administrator restarts the agent (POST /v1/agent/restart).
    const local = http.createServer(createApiHandler({ ...deps, local: true, restart: (o) => handover.restart(o), stop: () => void setImmediate(requestStop) }));
    if (inherit) await listenOnHandle(local, inherit.local);
    else await listenOnUnixSocket(local, socketPath);
    cleanup.push(() => new Promise((resolve) => (local.close(resolve), local.closeIdleConnections())));
    const handover = new Handover({
      log,
      proxy,
      api,
      local,
      gate,
      holdOperations: () => queue.holdWhenIdle(),
      stopWatching: async () => {
        await reconciler.stop();
        health.stop();
        await acme?.stop();
      },
      releaseState: async () => {
        await audit.flush();
        await store.close();
      },
    });
    log.info({ apiPort, socket: socketPath, httpPort: proxy.httpPort, httpsPort: proxy.httpsPort, acme: acme ? (options.acme?.directoryUrl ?? 'letsencrypt') : 'off', fingerprint: tls.fingerprint }, 'agent started');

    let closed: Promise<void> | undefined;
    const close = async () => {
      // Handed over to a new agent: this one only drains (the socket file and the state are the new one's).
      await handover.settled();
      if (handover.handedOver) return void (await handover.retired);
      await removeUnixSocket(socketPath);
      // Stop accepting and watching; let running operations finish; then proxy and state.
      stopHeartbeats();
      await reconciler.stop();
      health.stop();
      await acme?.stop();
      const servers = [api, local].map((s) => new Promise<void>((resolve) => (s.close(() => resolve()), s.closeIdleConnections())));
      await deps.serialize(async () => {});
      await audit.flush();
      await Promise.all([proxy.close(), ...servers.map((p) => Promise.race([p, new Promise((r) => setTimeout(r, 2000))]))]);
      api.closeAllConnections();
      local.closeAllConnections();
      await store.close();
      log.info({}, 'agent stopped');
    };
    return {
      apiPort,
      httpPort: proxy.httpPort,
      httpsPort: proxy.httpsPort,
      socketPath,
      fingerprint: tls.fingerprint,
      newCa: tls.created.ca,
      ...(membership ? { cluster: { managerUrl: membership.managerUrl, host: membership.name } } : {}),
      close: () => (closed ??= close()),
      restart: (o) => handover.restart(o),
      retired: handover.retired,
      stopRequested,
    };
  } catch (error) {
    await undo();
    throw error;
  }
}

function unreachable(): never {
  throw new DepadError('DEPAD_INTERNAL', 'the agent has no state');
}

/** The ACME manager for the agent's settings (the server CA file read now, so a wrong path fails the start). */
async function acmeManager(o: AgentAcmeOptions, store: CertificateStore, log: Logger): Promise<AcmeManager> {
  const file = o.serverCaFile;
  const serverCa =
    file === undefined
      ? undefined
      : await fs.readFile(file, 'utf8').catch((error: NodeJS.ErrnoException) => {
          throw new DepadError('DEPAD_USAGE', `--acme-ca-file ${file}: cannot read it (${error.code ?? error.message})`, { hint: 'give the PEM file of the CA that signs the ACME server\'s HTTPS certificate' });
        });
  return new AcmeManager({
    store,
    log,
    ...(o.directoryUrl ? { directoryUrl: o.directoryUrl } : {}),
    ...(o.email ? { email: o.email } : {}),
    ...(serverCa ? { serverCa } : {}),
    ...(o.renewDays !== undefined ? { renewDays: o.renewDays } : {}),
  });
}
