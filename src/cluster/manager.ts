/**
 * `depad manager`: the cluster manager, a long-lived process like the agent. It serves the same
 * management API over HTTPS (its own CA; tokens, scopes, OpenAPI, JSON-lines progress) and over
 * a unix socket (`<home>/manager.sock`, 0660, the local administrator), keeps its own state
 * (hosts, placements, join tokens, tokens; the audit log) in its own home's LevelDB, and relays
 * each deployment's verbs to the agent of the host that runs it (manager-endpoints.ts).
 *
 * TLS: the manager's CA signs its server certificate, a client certificate of its own (what it
 * presents to agents) and each agent's client certificate at join (hosts.ts). Its HTTPS port asks
 * for client certificates and accepts those its CA signed for heartbeats only.
 */
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import fs from 'node:fs/promises';
import type { TLSSocket } from 'node:tls';
import { ensureAgentTls, fingerprintOf, issueClientCert, newClientKey } from '../../certs/local-ca.ts';
import { verifiedPeerFingerprint } from '../../certs/pin.ts';
import { claimSocket, listenOnUnixSocket, listenTcp, removeUnixSocket } from '../../proxy/listeners.ts';
import { ProxyClient } from '../../proxy/client.ts';
import { proxyPaths } from '../../proxy/paths.ts';
import { AuditLog } from '../api/audit.ts';
import { FailureLimiter } from '../api/failures.ts';
import { createApiHandler, type ApiDeps } from '../api/handler.ts';
import type { OpContext } from '../deploy/context.ts';
import { Engine } from '../engine/engine.ts';
import { DepadError } from '../errors.ts';
import type { Logger } from '../logger.ts';
import { writePrivateFile } from '../private-file.ts';
import { managerSocketPath, proxyStateDir } from '../home.ts';
import type { TokenRecord } from '../store/records.ts';
import { Store } from '../store/store.ts';
import { HOST_PRINCIPAL, JOINER_ID } from './cluster-endpoints.ts';
import { callHost, type ManagerIdentity } from './host-client.ts';
import { HostRegistry } from './hosts.ts';
import { managerEndpoints } from './manager-endpoints.ts';
import { Placements } from './placements.ts';

/** Options of `startManager`. */
export interface ManagerOptions {
  /** The manager's own home (state, certificates, socket, audit log); not an agent's. */
  home: string;
  /** HTTPS API port (default 9443; 0 picks one) and address (default 0.0.0.0). */
  apiPort?: number;
  apiHost?: string;
  /** Names and addresses its server certificate covers besides localhost and this host's name. */
  hostnames?: string[];
  /** How often agents send heartbeats (default 2 s); a host is down after 3 missed ones + 2 s. */
  heartbeatMs?: number;
  log: Logger;
}

/** A running manager. */
export interface ManagerHandle {
  apiPort: number;
  socketPath: string;
  /** SHA-256 fingerprint of the manager's CA (clients pin it; join tokens carry it). */
  fingerprint: string;
  close(): Promise<void>;
}


/** The directory of the manager's CA, server and client certificates. */
export function managerTlsDir(home: string): string {
  return path.join(home, 'certs', 'manager');
}

const NOBODY = Object.freeze({ kind: 'deploy' as const, deployments: Object.freeze([]) as unknown as string[], labels: Object.freeze({}) as Record<string, string> });

/** The manager's client certificate (issued by its CA once, kept beside it). */
async function managerIdentity(dir: string): Promise<ManagerIdentity> {
  const certFile = path.join(dir, 'client.crt');
  const keyFile = path.join(dir, 'client.key');
  const [cert, key] = await Promise.all([fs.readFile(certFile, 'utf8').catch(() => undefined), fs.readFile(keyFile, 'utf8').catch(() => undefined)]);
  if (cert && key) return { cert, key };
  const pair = await newClientKey();
  const issued = await issueClientCert(dir, 'depad-manager', pair.publicKey);
  await writePrivateFile(keyFile, pair.privateKey);
  await writePrivateFile(certFile, issued);
  return { cert: issued, key: pair.privateKey };
}

/** Starts the manager; DEPAD_STATE_LOCKED when another process holds its home's state. */
export async function startManager(options: ManagerOptions): Promise<ManagerHandle> {
  const { home, log } = options;
  const socketPath = managerSocketPath(home);
  await claimSocket(socketPath, 'depad manager');
  const store = await Store.open(home, { command: 'manager', lockWaitMs: 0 });
  try {
    const extra = options.hostnames ?? [];
    const dir = managerTlsDir(home);
    const tls = await ensureAgentTls({ dir, hostnames: ['localhost', os.hostname(), ...extra.filter((h) => net.isIP(h) === 0)], ips: ['127.0.0.1', '::1', ...extra.filter((h) => net.isIP(h) !== 0)] });
    const identity = await managerIdentity(dir);
    const hosts = await HostRegistry.open(store, dir, { ca: tls.caCert, certFingerprint: fingerprintOf(identity.cert) }, options.heartbeatMs === undefined ? {} : { heartbeatMs: options.heartbeatMs });
    const placements = await Placements.open(store);
    const ctx: OpContext = { home, store, engine: new Engine(), routes: new ProxyClient(proxyPaths(proxyStateDir(home))), log, progress: () => {} };
    const endpoints = managerEndpoints({ hosts, placements, identity, caFingerprint: tls.fingerprint });
    // Joins carry their one-time token in the body; heartbeats present the client certificate the join issued.
    const principal = (req: http.IncomingMessage): TokenRecord | undefined => {
      const pathname = (req.url ?? '').split('?')[0];
      if (req.method === 'POST' && pathname === '/v1/cluster/join') return { id: JOINER_ID, name: 'joining agent', scope: NOBODY, hash: '', createdAt: '' };
      if (req.method !== 'POST' || pathname !== '/v1/cluster/heartbeat') return undefined;
      const fingerprint = verifiedPeerFingerprint(req.socket as TLSSocket);
      const host = fingerprint === undefined ? undefined : hosts.byCertificate(fingerprint);
      return host ? { id: `${HOST_PRINCIPAL}${host.name}`, name: `host ${host.name}`, scope: NOBODY, hash: '', createdAt: '' } : undefined;
    };
    const audit = new AuditLog(path.join(home, 'audit.log'));
    const deps: ApiDeps = { context: () => ctx, audit, limiter: new FailureLimiter(), log, serialize: (fn) => fn(), endpoints, principal };
    const api = https.createServer({ key: tls.serverKey, cert: tls.certChain, requestCert: true, rejectUnauthorized: false, ca: [tls.caCert] }, createApiHandler(deps));
    const apiPort = await listenTcp(api, options.apiPort ?? 9443, options.apiHost ?? '0.0.0.0');
    const local = http.createServer(createApiHandler({ ...deps, local: true }));
    await listenOnUnixSocket(local, socketPath);
    // Creates a crash interrupted: kept when the host has the deployment, else forgotten.
    void settleCreating(placements, hosts, identity, log);
    log.info({ apiPort, socket: socketPath, fingerprint: tls.fingerprint, hosts: hosts.list().length, placements: placements.list().length }, 'manager started');
    let closed: Promise<void> | undefined;
    const close = async () => {
      await removeUnixSocket(socketPath);
      const servers = [api, local].map((s) => new Promise<void>((resolve) => (s.close(() => resolve()), s.closeIdleConnections())));
      await Promise.race([Promise.all(servers), new Promise((r) => setTimeout(r, 2000))]);
      api.closeAllConnections();
      local.closeAllConnections();
      await audit.flush();
      await store.close();
      log.info({}, 'manager stopped');
    };
    return { apiPort, socketPath, fingerprint: tls.fingerprint, close: () => (closed ??= close()) };
  } catch (error) {
    await store.close().catch(() => {});
    await removeUnixSocket(socketPath).catch(() => {});
    throw error;
  }
}

async function settleCreating(placements: Placements, hosts: HostRegistry, identity: ManagerIdentity, log: Logger): Promise<void> {
  for (const p of placements.creating()) {
    try {
      const view = await callHost<{ id: string; labels: Record<string, string> }>(hosts.get(p.host), identity, { method: 'GET', path: `/v1/deployments/${encodeURIComponent(p.name)}` });
      await placements.placed(p.name, view.id, view.labels);
      log.warn({ deployment: p.name, host: p.host }, 'a create the manager did not see end had succeeded: placement kept');
    } catch (error) {
      if (error instanceof DepadError && error.code === 'DEPAD_NOT_FOUND') {
        await placements.forget(p.name);
        log.warn({ deployment: p.name, host: p.host }, 'a create the manager did not see end had failed: placement removed');
      } else log.warn({ deployment: p.name, host: p.host, error: (error as Error).message }, 'cannot settle an interrupted create yet: its host does not answer');
    }
  }
}
