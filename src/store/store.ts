/**
 * The one owner of depad's LevelDB. Sublevels: deployments, names (name → id), revisions,
 * ports (host port → holder), subnets (allocated subnet → holder), meta (the port cursor), journal. Writes that belong together go
 * through one `StoreBatch`, committed atomically. LevelDB admits one process: a second one waits
 * briefly, then gets DEPAD_STATE_LOCKED naming the holder.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { Level } from 'level';
import type { AbstractBatchOperation } from 'abstract-level';
import { DepadError } from '../errors.ts';
import { stateDir } from '../home.ts';
import type {
  DeploymentRecord,
  HolderInfo,
  HostRecord,
  JoinTokenRecord,
  PlacementRecord,
  JournalEntry,
  PortRecord,
  RevisionRecord,
  SubnetRecord,
  TokenRecord,
} from './records.ts';

type Db = Level<string, unknown>;
type Sub = ReturnType<Db['sublevel']>;
type BatchOp = AbstractBatchOperation<Db, string, unknown>;
type SubName = 'deployments' | 'names' | 'revisions' | 'ports' | 'meta' | 'journal' | 'tokens' | 'subnets' | 'hosts' | 'placements' | 'joins';
type Subs = Record<SubName, Sub>;

/** First port of the first block: where the cursor starts. */
export const INITIAL_CURSOR = 3000;

/** Options for `Store.open`. */
export interface StoreOpenOptions {
  /** What this process is doing, shown to a second process that finds the database locked. */
  command: string;
  /** How long to wait for another depad process to release the database (default DEPAD_LOCK_WAIT_MS, else 10 s). */
  lockWaitMs?: number;
}

/** depad's state. Open with `Store.open`, always `close()`. */
export class Store {
  readonly home: string;
  readonly #db: Db;
  readonly #holderFile: string;
  readonly #subs: Subs;

  private constructor(home: string, db: Db) {
    this.home = home;
    this.#db = db;
    this.#holderFile = path.join(stateDir(home), 'HOLDER.json');
    const sub = (name: SubName): Sub => db.sublevel(name, { valueEncoding: 'json' }) as unknown as Sub;
    this.#subs = {
      deployments: sub('deployments'),
      names: sub('names'),
      revisions: sub('revisions'),
      ports: sub('ports'),
      meta: sub('meta'),
      journal: sub('journal'),
      tokens: sub('tokens'),
      subnets: sub('subnets'),
      // The cluster manager's (src/cluster/): hosts by name, placements by deployment name, join tokens by id.
      hosts: sub('hosts'),
      placements: sub('placements'),
      joins: sub('joins'),
    };
  }

  /** Opens (creating if needed) the state database under `home`. */
  static async open(home: string, options: StoreOpenOptions): Promise<Store> {
    const dir = stateDir(home);
    await fs.mkdir(dir, { recursive: true, mode: 0o700 });
    const deadline = Date.now() + (options.lockWaitMs ?? Number(process.env.DEPAD_LOCK_WAIT_MS ?? 10_000));
    for (;;) {
      const db: Db = new Level<string, unknown>(dir, { valueEncoding: 'json' });
      try {
        await db.open();
      } catch (error) {
        const cause = (error as { cause?: { code?: string } }).cause;
        if (cause?.code !== 'LEVEL_LOCKED') {
          throw new DepadError('DEPAD_STATE_CORRUPT', `cannot open depad's state at ${dir}`, {
            cause: error,
            hint: 'check the directory permissions, or set DEPAD_HOME to another directory',
          });
        }
        if (Date.now() >= deadline) throw await lockedError(dir);
        await new Promise((r) => setTimeout(r, 100));
        continue;
      }
      const store = new Store(home, db);
      const holder: HolderInfo = { pid: process.pid, command: options.command, since: new Date().toISOString() };
      await fs.writeFile(store.#holderFile, JSON.stringify(holder) + '\n', { mode: 0o600 });
      return store;
    }
  }

  /** Closes the database and releases the lock. */
  async close(): Promise<void> {
    await fs.rm(this.#holderFile, { force: true });
    await this.#db.close();
  }

  /** Starts an atomic batch of writes. */
  batch(): StoreBatch {
    return new StoreBatch(this.#db, this.#subs);
  }

  /** The cluster's hosts (manager). */
  async listHosts(): Promise<HostRecord[]> {
    return (await this.#subs.hosts.values().all()) as HostRecord[];
  }

  /** The cluster's placements (manager). */
  async listPlacements(): Promise<PlacementRecord[]> {
    return (await this.#subs.placements.values().all()) as PlacementRecord[];
  }

  /** A join token by id (manager). */
  async getJoinToken(id: string): Promise<JoinTokenRecord | undefined> {
    return (await this.#subs.joins.get(id)) as JoinTokenRecord | undefined;
  }

  /** The deployment with this ID, if any. */
  async getDeployment(id: string): Promise<DeploymentRecord | undefined> {
    return (await this.#subs.deployments.get(id)) as DeploymentRecord | undefined;
  }

  /** The ID registered for a name, if any. */
  async idForName(name: string): Promise<string | undefined> {
    return (await this.#subs.names.get(name)) as string | undefined;
  }

  /** Every deployment, by ID order. */
  async listDeployments(): Promise<DeploymentRecord[]> {
    return (await this.#subs.deployments.values().all()) as DeploymentRecord[];
  }

  /** The revisions of a deployment, oldest first. */
  async listRevisions(deploymentId: string): Promise<RevisionRecord[]> {
    const it = this.#subs.revisions.values({ gte: `${deploymentId}!`, lt: `${deploymentId}~` });
    return (await it.all()) as RevisionRecord[];
  }

  /** Every port held in the registry. */
  async listPorts(): Promise<PortRecord[]> {
    return (await this.#subs.ports.values().all()) as PortRecord[];
  }

  /** The host ports held in the registry (keys only: cheap even with tens of thousands). */
  async reservedPorts(): Promise<Set<number>> {
    const keys = await this.#subs.ports.keys().all();
    return new Set(keys.map(Number));
  }

  /** Who holds `host` in the registry, if anyone. */
  async getPort(host: number): Promise<PortRecord | undefined> {
    return (await this.#subs.ports.get(portKey(host))) as PortRecord | undefined;
  }

  /** Every subnet held in the registry (`ipam` subnets allocated to deployments). */
  async listSubnets(): Promise<SubnetRecord[]> {
    return (await this.#subs.subnets.values().all()) as SubnetRecord[];
  }

  /** The port cursor: first port of the block the next create starts at. */
  async getCursor(): Promise<number> {
    const value = await this.#subs.meta.get('cursor');
    return typeof value === 'number' ? value : INITIAL_CURSOR;
  }

  /** The API token with this ID, if any. */
  async getToken(id: string): Promise<TokenRecord | undefined> {
    return (await this.#subs.tokens.get(id)) as TokenRecord | undefined;
  }

  /** Every API token, revoked ones included. */
  async listTokens(): Promise<TokenRecord[]> {
    return (await this.#subs.tokens.values().all()) as TokenRecord[];
  }

  /** Operations that were under way when a depad process died. */
  async listJournal(): Promise<JournalEntry[]> {
    return (await this.#subs.journal.values().all()) as JournalEntry[];
  }
}

/** Writes that commit together or not at all. */
export class StoreBatch {
  readonly #db: Db;
  readonly #subs: Subs;
  readonly #ops: BatchOp[] = [];

  constructor(db: Db, subs: Subs) {
    this.#db = db;
    this.#subs = subs;
  }

  #put(sub: SubName, key: string, value: unknown): this {
    this.#ops.push({ type: 'put', key, value, sublevel: this.#subs[sub] } as BatchOp);
    return this;
  }

  #del(sub: SubName, key: string): this {
    this.#ops.push({ type: 'del', key, sublevel: this.#subs[sub] } as BatchOp);
    return this;
  }

  /** Stores a deployment and its name index. */
  putDeployment(record: DeploymentRecord): this {
    return this.#put('deployments', record.id, record).#put('names', record.name, record.id);
  }

  /** Removes a deployment, its name index, its ports, its subnets and its revision records. */
  deleteDeployment(record: DeploymentRecord, revisions: readonly number[]): this {
    this.#del('deployments', record.id).#del('names', record.name);
    for (const p of record.ports) this.#del('ports', portKey(p.host));
    for (const n of record.subnets ?? []) this.#del('subnets', n.given);
    for (const n of revisions) this.#del('revisions', revisionKey(record.id, n));
    return this;
  }

  /** Reserves host ports in the registry. */
  putPorts(ports: readonly PortRecord[]): this {
    for (const p of ports) this.#put('ports', portKey(p.host), p);
    return this;
  }

  /** Releases host ports from the registry. */
  deletePorts(ports: ReadonlyArray<{ host: number }>): this {
    for (const p of ports) this.#del('ports', portKey(p.host));
    return this;
  }

  /** Reserves subnets in the registry. */
  putSubnets(subnets: readonly SubnetRecord[]): this {
    for (const n of subnets) this.#put('subnets', n.given, n);
    return this;
  }

  /** Releases subnets from the registry. */
  deleteSubnets(subnets: ReadonlyArray<{ given: string }>): this {
    for (const n of subnets) this.#del('subnets', n.given);
    return this;
  }

  /** Stores a revision. */
  putRevision(revision: RevisionRecord): this {
    return this.#put('revisions', revisionKey(revision.deploymentId, revision.number), revision);
  }

  /** Moves the port cursor. */
  setCursor(cursor: number): this {
    return this.#put('meta', 'cursor', cursor);
  }

  /** Records an operation in progress (or its progress). */
  putJournal(entry: JournalEntry): this {
    return this.#put('journal', entry.opId, entry);
  }

  /** Forgets a finished operation. */
  deleteJournal(opId: string): this {
    return this.#del('journal', opId);
  }

  /** Adds or replaces a host of the cluster (manager). */
  putHost(record: HostRecord): this {
    return this.#put('hosts', record.name, record);
  }

  /** Removes a host of the cluster (manager). */
  deleteHost(name: string): this {
    return this.#del('hosts', name);
  }

  /** Adds or replaces a placement (manager). */
  putPlacement(record: PlacementRecord): this {
    return this.#put('placements', record.name, record);
  }

  /** Removes a placement (manager). */
  deletePlacement(name: string): this {
    return this.#del('placements', name);
  }

  /** Adds or replaces a join token (manager). */
  putJoinToken(record: JoinTokenRecord): this {
    return this.#put('joins', record.id, record);
  }

  /** Stores an API token record. */
  putToken(record: TokenRecord): this {
    return this.#put('tokens', record.id, record);
  }

  /** Commits every write at once. */
  async write(): Promise<void> {
    if (this.#ops.length > 0) await this.#db.batch(this.#ops);
  }
}

function portKey(port: number): string {
  return String(port).padStart(5, '0');
}

function revisionKey(deploymentId: string, n: number): string {
  return `${deploymentId}!${String(n).padStart(6, '0')}`;
}

async function lockedError(dir: string): Promise<DepadError> {
  let holder: HolderInfo | undefined;
  try {
    holder = JSON.parse(await fs.readFile(path.join(dir, 'HOLDER.json'), 'utf8')) as HolderInfo;
  } catch {
    holder = undefined;
  }
  const who = holder ? `pid ${holder.pid} ('depad ${holder.command}', since ${holder.since})` : 'another process';
  return new DepadError('DEPAD_STATE_LOCKED', `depad's state at ${dir} is in use by ${who}`, {
    hint: 'wait for that command to finish and try again',
    details: holder ? { holder } : undefined,
  });
}
