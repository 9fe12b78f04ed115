/**
 * The cluster manager's hosts: join tokens, the join itself, heartbeats, and each host's state.
 * A host is also `down` while its heartbeats say its agent does not reach its Docker Engine.
 *
 * Join (once, over HTTPS with the manager's CA pinned by the fingerprint inside the join token):
 * the agent sends the one-time token, its name, address, labels, capacity, its own CA and a public
 * key; the manager marks the token used, signs a client certificate for that key (common name: the
 * host's name) and answers with it, its CA and its own client certificate's fingerprint. From then
 * on no secret travels: the agent's heartbeats present its certificate, the manager's calls present
 * the manager's, and each side pins the other's CA.
 *
 * State: `down` when no heartbeat came for `downAfterMs` (default 3 heartbeats + 2 s: 8 s with the
 * default 2 s heartbeat), else `cordoned` when cordoned, else `ready`. Computed on read, never stored.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { fingerprintOf, issueClientCert } from '../../certs/local-ca.ts';
import { DepadError } from '../errors.ts';
import { NAME_PATTERN } from '../deploy/resolve.ts';
import type { HostCapacity, HostRecord, JoinTokenRecord } from '../store/records.ts';
import type { Store } from '../store/store.ts';

/** How often agents send a heartbeat, by default. */
export const HEARTBEAT_MS = 2000;
/** A host is `down` when its last heartbeat is older than this, by default. */
export const DOWN_AFTER_MS = 3 * HEARTBEAT_MS + 2000;
/** How long a join token may be used. */
export const JOIN_TOKEN_MS = 24 * 3600 * 1000;

const JOIN_FORMAT = /^DJT1-([0-9a-f]{64})-([0-9a-f]{12})-([A-Za-z0-9_-]{43})$/;
const LABEL_KEY = /^[a-z0-9][a-z0-9._-]{0,62}$/;

/** A host as the API shows it: its record (no certificates) and its state. */
export interface HostSummary {
  name: string;
  state: 'ready' | 'down' | 'cordoned';
  cordoned: boolean;
  address: string;
  apiUrl: string;
  labels: Record<string, string>;
  capacity: HostCapacity;
  /** What its placed deployments reserve. */
  reserved: { cpus: number; memoryBytes: number };
  deployments: number;
  joinedAt: string;
  lastSeen: string;
  version?: string;
  /** Set while the host's agent does not reach its engine (the host is then `down`). */
  engine?: { state: 'up' | 'down'; since: string; error?: string };
}

/** The parts of a join token: the manager CA's fingerprint (hex, no colons), the token's id and secret. */
export function parseJoinToken(token: string): { fingerprint: string; id: string; secret: string } {
  const m = JOIN_FORMAT.exec(token.trim());
  if (!m) throw new DepadError('DEPAD_USAGE', 'that is not a join token (DJT1-…)', { hint: 'print one on the manager with: depad manager join-token' });
  return { fingerprint: m[1]!, id: m[2]!, secret: m[3]! };
}

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

/** Makes a one-time join token for the manager whose CA has `caFingerprint` (`AB:CD:…`); only its hash is kept. */
export async function createJoinToken(store: Store, caFingerprint: string, now = new Date()): Promise<{ token: string; record: JoinTokenRecord }> {
  const id = randomBytes(6).toString('hex');
  const secret = randomBytes(32).toString('base64url');
  const record: JoinTokenRecord = { id, hash: sha256(secret), createdAt: now.toISOString(), expiresAt: new Date(now.getTime() + JOIN_TOKEN_MS).toISOString() };
  await store.batch().putJoinToken(record).write();
  return { token: `DJT1-${caFingerprint.replace(/:/g, '').toLowerCase()}-${id}-${secret}`, record };
}

/** What an agent sends to join. */
export interface JoinRequest {
  token: string;
  name: string;
  address: string;
  apiPort: number;
  httpPort: number;
  labels: Record<string, string>;
  capacity: HostCapacity;
  agentCa: string;
  publicKey: string;
  version?: string;
}

/** What the manager answers a join. */
export interface JoinAnswer {
  name: string;
  clientCert: string;
  managerCa: string;
  /** The manager's own client certificate's fingerprint: the only client certificate the agent then accepts as the manager. */
  managerCertFingerprint: string;
  heartbeatMs: number;
}

/** Checks `labels` (`k=v` pairs as an object): keys as agent labels, values non-empty. */
export function checkLabels(labels: Record<string, string>): void {
  for (const [k, v] of Object.entries(labels)) {
    if (!LABEL_KEY.test(k)) throw new DepadError('DEPAD_USAGE', `label key ${JSON.stringify(k)}: 1–63 of a-z, 0-9, '.', '_', '-', starting with a letter or digit`);
    if (typeof v !== 'string' || v === '' || v.length > 253) throw new DepadError('DEPAD_USAGE', `label ${k}: a value of 1–253 characters`);
  }
}

/** The manager's hosts: joins, heartbeats, labels, cordons, removal; states computed from heartbeats. */
export class HostRegistry {
  readonly #store: Store;
  readonly #tlsDir: string;
  readonly #hosts = new Map<string, HostRecord>();
  readonly downAfterMs: number;
  readonly heartbeatMs: number;
  /** The manager's CA certificate and its own client certificate's fingerprint. */
  readonly #manager: { ca: string; certFingerprint: string };

  private constructor(store: Store, tlsDir: string, manager: { ca: string; certFingerprint: string }, options: { heartbeatMs?: number; downAfterMs?: number }) {
    this.#store = store;
    this.#tlsDir = tlsDir;
    this.#manager = manager;
    this.heartbeatMs = options.heartbeatMs ?? HEARTBEAT_MS;
    this.downAfterMs = options.downAfterMs ?? 3 * this.heartbeatMs + 2000;
  }

  /** Loads the hosts of the store. */
  static async open(store: Store, tlsDir: string, manager: { ca: string; certFingerprint: string }, options: { heartbeatMs?: number; downAfterMs?: number } = {}): Promise<HostRegistry> {
    const registry = new HostRegistry(store, tlsDir, manager, options);
    for (const h of await store.listHosts()) registry.#hosts.set(h.name, h);
    return registry;
  }

  /** Every host, by name. */
  list(): HostRecord[] {
    return [...this.#hosts.values()].sort((a, b) => a.name.localeCompare(b.name));
  }

  /** One host, or DEPAD_NOT_FOUND naming the others. */
  get(name: string): HostRecord {
    const h = this.#hosts.get(name);
    if (!h) throw new DepadError('DEPAD_NOT_FOUND', `the cluster has no host ${JSON.stringify(name)}`, { hint: this.#hosts.size ? `its hosts are: ${[...this.#hosts.keys()].sort().join(', ')}` : 'no host joined yet: depad agent --join …' });
    return h;
  }

  /** ready, down (no heartbeat for downAfterMs) or cordoned. */
  stateOf(h: HostRecord, now = Date.now()): HostSummary['state'] {
    if (now - Date.parse(h.lastSeen) > this.downAfterMs || h.engine?.state === 'down') return 'down';
    return h.cordoned ? 'cordoned' : 'ready';
  }

  /** The host that runs `deployment`, refusing one that is down (DEPAD_HOST_DOWN, saying why): nothing is tried elsewhere. */
  running(name: string, deployment: string): HostRecord {
    const host = this.get(name);
    if (this.stateOf(host) === 'down') {
      const why = host.engine?.state === 'down' ? `its agent does not reach its engine since ${host.engine.since}` : `no heartbeat since ${host.lastSeen}`;
      throw new DepadError('DEPAD_HOST_DOWN', `deployment ${deployment} runs on host ${name}, which is down (${why})`, {
        hint: `nothing is moved elsewhere (its data is on ${name}); start its agent again, then repeat the command`,
      });
    }
    return host;
  }

  /** The hosts that are not down (ready or cordoned): those the manager asks. */
  answering(now = Date.now()): HostRecord[] {
    return this.list().filter((h) => this.stateOf(h, now) !== 'down');
  }

  /** Joins an agent: the token is checked and used up, its client certificate issued. */
  async join(request: JoinRequest, now = new Date()): Promise<JoinAnswer> {
    const { id, secret } = parseJoinToken(request.token);
    const record = await this.#store.getJoinToken(id);
    const given = Buffer.from(sha256(secret), 'hex');
    const valid = record !== undefined && record.usedBy === undefined && Date.parse(record.expiresAt) > now.getTime() && timingSafeEqual(given, Buffer.from(record.hash, 'hex'));
    // One answer for a wrong, used or expired token: a caller learns nothing of which.
    if (!valid) throw new DepadError('DEPAD_UNAUTHENTICATED', 'the join token is not valid (wrong, already used or expired)', { hint: 'print a new one on the manager with: depad manager join-token' });
    if (!NAME_PATTERN.test(request.name)) throw new DepadError('DEPAD_NAME_INVALID', `host name ${JSON.stringify(request.name)}: lowercase letters, digits and '-'`, { hint: 'pass --name to depad agent' });
    if (this.#hosts.has(request.name)) throw new DepadError('DEPAD_NAME_TAKEN', `the cluster has a host named ${request.name} already`, { hint: `remove it first (depad hosts rm ${request.name}), or join under another name (--name)` });
    checkLabels(request.labels);
    const clientCert = await issueClientCert(this.#tlsDir, request.name, request.publicKey, now);
    const host: HostRecord = {
      name: request.name,
      apiUrl: `https://${request.address.includes(':') ? `[${request.address}]` : request.address}:${request.apiPort}`,
      address: request.address,
      httpPort: request.httpPort,
      agentCa: request.agentCa,
      certFingerprint: fingerprintOf(clientCert),
      labels: { ...request.labels },
      capacity: request.capacity,
      cordoned: false,
      joinedAt: now.toISOString(),
      lastSeen: now.toISOString(),
      ...(request.version ? { version: request.version } : {}),
    };
    await this.#store.batch().putJoinToken({ ...record, usedBy: request.name }).putHost(host).write();
    this.#hosts.set(host.name, host);
    return { name: host.name, clientCert, managerCa: this.#manager.ca, managerCertFingerprint: this.#manager.certFingerprint, heartbeatMs: this.heartbeatMs };
  }

  /** The host whose client certificate has this fingerprint, if any. */
  byCertificate(fingerprint: string): HostRecord | undefined {
    return [...this.#hosts.values()].find((h) => h.certFingerprint === fingerprint);
  }

  /** Records a heartbeat of `name`: when it was seen, its capacity and deployments. */
  async heartbeat(name: string, beat: Pick<HostRecord, 'capacity' | 'deployments' | 'httpPort' | 'engine'> & { version?: string }, now = new Date()): Promise<void> {
    const { engine: _engine, ...h } = this.get(name);
    const next: HostRecord = { ...h, capacity: beat.capacity, httpPort: beat.httpPort, lastSeen: now.toISOString(), ...(beat.deployments ? { deployments: beat.deployments } : {}), ...(beat.version ? { version: beat.version } : {}), ...(beat.engine ? { engine: beat.engine } : {}) };
    this.#hosts.set(name, next);
    await this.#store.batch().putHost(next).write();
  }

  /**
   * Drops deployment `deployment` from what host `name` last reported (a destroy through the
   * manager succeeded there): its hostnames are free in the cluster at once, not at the next heartbeat.
   */
  async dropReported(name: string, deployment: string): Promise<void> {
    const h = this.#hosts.get(name);
    if (h?.deployments?.some((d) => d.name === deployment)) await this.#put({ ...h, deployments: h.deployments.filter((d) => d.name !== deployment) });
  }

  /** Sets (value) or removes (undefined) labels of a host. */
  async label(name: string, changes: Record<string, string | undefined>): Promise<HostRecord> {
    const h = this.get(name);
    const labels = { ...h.labels };
    for (const [k, v] of Object.entries(changes)) if (v === undefined) delete labels[k];
    else labels[k] = v;
    checkLabels(labels);
    return this.#put({ ...h, labels });
  }

  /** Cordons (no new placement) or uncordons a host. */
  async cordon(name: string, cordoned: boolean): Promise<HostRecord> {
    return this.#put({ ...this.get(name), cordoned });
  }

  /** Forgets a host (its certificate is no longer accepted). Refused while deployments are placed on it, unless `force`. */
  async remove(name: string, placed: number, force = false): Promise<void> {
    this.get(name);
    if (placed > 0 && !force) throw new DepadError('DEPAD_ENGINE_CONFLICT', `host ${name} runs ${placed} deployment${placed === 1 ? '' : 's'} of the cluster`, { hint: `destroy them first, or pass --force (their placements are forgotten; the deployments keep running on ${name})` });
    await this.#store.batch().deleteHost(name).write();
    this.#hosts.delete(name);
  }

  async #put(h: HostRecord): Promise<HostRecord> {
    await this.#store.batch().putHost(h).write();
    this.#hosts.set(h.name, h);
    return h;
  }
}
