/**
 * An agent's membership of a cluster: the join (`depad agent --join URL --join-token T`), what it
 * keeps of it (`<home>/cluster/membership.json`, 0600: the manager's URL and CA, the client
 * certificate and key the manager issued, the manager's own certificate's fingerprint), its
 * heartbeats, and who its API accepts as the manager (exactly that certificate, over TLS).
 *
 * The join pins the manager's CA by the fingerprint inside the join token, so the token is only
 * ever sent to that manager. After the join no secret travels: both sides present certificates.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { IncomingMessage } from 'node:http';
import type { TLSSocket } from 'node:tls';
import { newClientKey } from '../../certs/local-ca.ts';
import { fetchPinnedCa, normalizeFingerprint, verifiedPeerFingerprint } from '../../certs/pin.ts';
import { AgentClient } from '../cli/agent-client.ts';
import { DepadError } from '../errors.ts';
import type { Logger } from '../logger.ts';
import { writePrivateFile } from '../private-file.ts';
import type { HostCapacity, TokenRecord } from '../store/records.ts';
import type { Store } from '../store/store.ts';
import { depadVersion } from '../version.ts';
import { parseJoinToken, type JoinAnswer } from './hosts.ts';

/** What an agent keeps of its join. */
export interface Membership {
  managerUrl: string;
  managerCa: string;
  managerCertFingerprint: string;
  name: string;
  clientCert: string;
  clientKey: string;
  heartbeatMs: number;
  joinedAt: string;
}

/** How an agent joins (the `--join` options). */
export interface JoinOptions {
  url: string;
  token: string;
  /** The host's name in the cluster (default: this machine's host name, lowercased). */
  name?: string;
  labels: Record<string, string>;
  /** The address the manager and other hosts reach this agent at (default: the first non-internal IPv4 address). */
  advertise?: string;
  /** What the host offers, when less than the machine has (`--capacity cpus=2,memory=4g`). */
  capacity?: Partial<HostCapacity>;
}

/** The membership file of an agent's home. */
export function membershipPath(home: string): string {
  return path.join(home, 'cluster', 'membership.json');
}

/** The agent's membership, if it joined a cluster. */
export async function readMembership(home: string): Promise<Membership | undefined> {
  const text = await fs.readFile(membershipPath(home), 'utf8').catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return undefined;
    throw error;
  });
  return text === undefined ? undefined : (JSON.parse(text) as Membership);
}

/** This machine's first non-internal IPv4 address. */
export function defaultAddress(): string {
  for (const list of Object.values(os.networkInterfaces())) for (const a of list ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  return '127.0.0.1';
}

/** What this host offers: CPUs, memory, free disk of the home, free ports of its range; `declared` wins where given. */
export async function hostCapacity(home: string, store: Store | undefined, declared: Partial<HostCapacity> = {}): Promise<HostCapacity> {
  const disk = await fs.statfs(home).then((s) => s.bavail * s.bsize).catch(() => undefined);
  const [from, to] = (process.env.DEPAD_PORT_RANGE ?? '20000-29999').split('-').map(Number);
  const held = store ? (await store.listPorts()).length : 0;
  const range = from !== undefined && to !== undefined && to >= from ? to - from + 1 : undefined;
  return {
    cpus: declared.cpus ?? os.availableParallelism(),
    memoryBytes: declared.memoryBytes ?? os.totalmem(),
    ...(declared.diskBytes !== undefined ? { diskBytes: declared.diskBytes } : disk !== undefined ? { diskBytes: disk } : {}),
    ...(range !== undefined ? { freePorts: Math.max(0, range - held) } : {}),
  };
}

/** Joins the cluster at `options.url` with a one-time token; writes and returns the membership (a member of that manager already: its membership). */
export async function joinCluster(home: string, options: JoinOptions, agent: { caCert: string; apiPort: number; httpPort: number; capacity: HostCapacity }): Promise<Membership> {
  const url = new URL(options.url);
  const known = await readMembership(home);
  // Started again with the same --join (a service unit): it is a member already, and the token was used.
  if (known && known.managerUrl === url.origin) return known;
  if (known) throw new DepadError('DEPAD_USAGE', `this agent is a member of the cluster at ${known.managerUrl} (${membershipPath(home)})`, { hint: 'to join another cluster, remove that file first (and the host from the old one: depad hosts rm)' });
  const { fingerprint } = parseJoinToken(options.token);
  if (url.protocol !== 'https:') throw new DepadError('DEPAD_USAGE', `--join ${options.url}: the manager is reached over https://`);
  const colon = fingerprint.toUpperCase().match(/../g)!.join(':');
  const managerCa = await fetchPinnedCa(url.hostname.replace(/^\[|\]$/g, ''), Number(url.port || 9443), normalizeFingerprint(colon), { peer: { runs: '`depad manager`', fingerprint: 'The join token carries the fingerprint of the CA of the manager that made it: check the URL names that manager (depad manager join-token there)' } });
  const key = await newClientKey();
  const client = new AgentClient({ kind: 'https', url, ca: managerCa, token: '', pinnedCaOnly: true });
  const name = options.name ?? os.hostname().toLowerCase().replace(/[^a-z0-9-]/g, '-');
  const answer = await client.request<JoinAnswer>({
    method: 'POST',
    path: '/v1/cluster/join',
    body: { token: options.token, name, address: options.advertise ?? defaultAddress(), apiPort: agent.apiPort, httpPort: agent.httpPort, labels: options.labels, capacity: agent.capacity, agentCa: agent.caCert, publicKey: key.publicKey, version: depadVersion() },
  });
  const membership: Membership = { managerUrl: url.origin, managerCa: answer.managerCa, managerCertFingerprint: answer.managerCertFingerprint, name: answer.name, clientCert: answer.clientCert, clientKey: key.privateKey, heartbeatMs: answer.heartbeatMs, joinedAt: new Date().toISOString() };
  await fs.mkdir(path.dirname(membershipPath(home)), { recursive: true, mode: 0o700 });
  await writePrivateFile(membershipPath(home), JSON.stringify(membership, null, 2) + '\n');
  return membership;
}

/** The token ID the manager's calls to an agent act under (its client certificate, never a bearer token). */
export const MANAGER_TOKEN_ID = 'cluster-manager';

const MANAGER_ADMIN: TokenRecord = Object.freeze({ id: MANAGER_TOKEN_ID, name: 'cluster-manager', scope: Object.freeze({ kind: 'admin' as const }), hash: '', createdAt: '' });

/** Who a request to the agent's API acts as when it presents the manager's certificate: the manager, as admin. */
export function managerPrincipal(membership: Membership): (req: IncomingMessage) => TokenRecord | undefined {
  return (req) => (verifiedPeerFingerprint(req.socket as TLSSocket) === membership.managerCertFingerprint ? MANAGER_ADMIN : undefined);
}

/** Sends a heartbeat every `membership.heartbeatMs` until stopped; failures are logged, once per outage; `onAnswer` gets each answer (peer routes). */
export function startHeartbeats(membership: Membership, beat: () => Promise<Record<string, unknown>>, log: Logger, onAnswer?: (answer: unknown) => Promise<void>): () => void {
  const client = new AgentClient({ kind: 'https', url: new URL(membership.managerUrl), ca: membership.managerCa, token: '', clientCert: { cert: membership.clientCert, key: membership.clientKey }, pinnedCaOnly: true });
  let failing = false;
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  const once = async () => {
    try {
      const answer = await client.request<unknown>({ method: 'POST', path: '/v1/cluster/heartbeat', body: await beat() });
      // Not awaited: the heartbeats keep their pace whatever the proxy does with the answer.
      void onAnswer?.(answer).catch(() => {});
      if (failing) log.info({ manager: membership.managerUrl }, 'the cluster manager answers heartbeats again');
      failing = false;
    } catch (error) {
      if (!failing) log.warn({ manager: membership.managerUrl, error: (error as Error).message }, 'the cluster manager does not take heartbeats; the deployments here keep running');
      failing = true;
    }
    if (!stopped) timer = setTimeout(() => void once(), membership.heartbeatMs);
  };
  void once();
  return () => {
    stopped = true;
    if (timer) clearTimeout(timer);
  };
}
