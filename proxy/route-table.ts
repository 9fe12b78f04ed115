/**
 * The proxy's route table: the one owner of the current `RouteSnapshot`. Every change builds a
 * new frozen snapshot plus its lookup index, persists it (snapshot-file.ts), then replaces the
 * old one in ONE assignment, so a request sees either the old table or the new one, never a mix.
 * Changes are serialized; listeners (pause waiters, TCP listeners) run after each swap.
 */
import { normalizeHost, removeDeployment, replaceDeployment } from './routes.ts';
import { readSnapshotFile, writeSnapshotFile } from './snapshot-file.ts';
import type { Route, RouteSnapshot, Upstream } from './types.ts';
import type { UpstreamEntry } from './upstreams.ts';

/** A route as the forwarding code uses it: the route, its upstreams' keys, a round-robin cursor. */
export interface ActiveRoute {
  readonly route: Route;
  /** `host:port` of each upstream, same order as `route.upstreams`. */
  readonly keys: readonly string[];
  /** Round-robin cursor among equally loaded upstreams (it restarts at 0 with each new snapshot). */
  next: number;
  /** The upstreams' Upstreams entries, same order as `keys`, filled as picks need them (balance.ts). */
  entries: UpstreamEntry[] | undefined;
  /** Cookie affinity: each upstream's cookie value, same order as `keys`, made on first use (affinity.ts). */
  tokens: readonly string[] | undefined;
}

/** Called after each swap with the new snapshot; the change completes once every returned promise settles. */
export type ChangeListener = (snapshot: RouteSnapshot) => void | Promise<void>;

interface Index {
  readonly snapshot: RouteSnapshot;
  readonly byHost: ReadonlyMap<string, ActiveRoute>;
  readonly byPort: ReadonlyMap<number, ActiveRoute>;
}

/** The key upstreams are tracked by: `host:port` (`[v6]:port` for an IPv6 literal). */
export function upstreamKey(upstream: Pick<Upstream, 'host' | 'port'>): string {
  return upstream.host.includes(':') && !upstream.host.startsWith('[') ? `[${upstream.host}]:${upstream.port}` : `${upstream.host}:${upstream.port}`;
}

function freezeSnapshot(snapshot: RouteSnapshot): RouteSnapshot {
  for (const route of snapshot.routes) {
    for (const u of route.upstreams) Object.freeze(u);
    Object.freeze(route.upstreams);
    Object.freeze(route.hosts);
    Object.freeze(route);
  }
  Object.freeze(snapshot.routes);
  return Object.freeze(snapshot);
}

function buildIndex(snapshot: RouteSnapshot): Index {
  const frozen = freezeSnapshot(snapshot);
  const byHost = new Map<string, ActiveRoute>();
  const byPort = new Map<number, ActiveRoute>();
  for (const route of frozen.routes) {
    const active: ActiveRoute = { route, keys: route.upstreams.map(upstreamKey), next: 0, entries: undefined, tokens: undefined };
    if (route.kind === 'http') for (const host of route.hosts) byHost.set(host, active);
    else if (route.listenPort !== undefined) byPort.set(route.listenPort, active);
  }
  return { snapshot: frozen, byHost, byPort };
}

/** The live route table of one proxy process. */
export class RouteTable {
  readonly file: string;
  #index: Index;
  #queue: Promise<unknown> = Promise.resolve();
  readonly #listeners: ChangeListener[] = [];
  /** Upstreams (`host:port`) the agent's health checks found unhealthy. */
  readonly unhealthy = new Set<string>();

  private constructor(file: string, snapshot: RouteSnapshot) {
    this.file = file;
    this.#index = buildIndex(snapshot);
  }

  /** Loads the table from `file` (missing → empty; corrupt → DEPAD_STATE_CORRUPT). */
  static async load(file: string): Promise<RouteTable> {
    return new RouteTable(file, await readSnapshotFile(file));
  }

  /** The current snapshot (frozen). */
  get snapshot(): RouteSnapshot {
    return this.#index.snapshot;
  }

  /** The http route for a Host header value (any case, with or without port), if any. */
  httpRoute(hostHeader: string): ActiveRoute | undefined {
    const byHost = this.#index.byHost;
    return byHost.get(hostHeader) ?? byHost.get(normalizeHost(hostHeader));
  }

  /** The tcp route listening on `port`, if any. */
  tcpRoute(port: number): ActiveRoute | undefined {
    return this.#index.byPort.get(port);
  }

  /** Marks an upstream (`host:port`) unhealthy or healthy again, for the picks (balance.ts). */
  markUpstream(key: string, healthy: boolean): void {
    if (healthy) this.unhealthy.delete(key);
    else this.unhealthy.add(key);
  }

  /** Registers a listener run after every change. */
  onChange(listener: ChangeListener): void {
    this.#listeners.push(listener);
  }

  /**
   * Replaces every route of deployment `name` with `routes` (validated by the caller with
   * `parseDeploymentRoutes`); throws a 409 DepadError on a host/port/id conflict.
   */
  setDeployment(name: string, routes: readonly Route[]): Promise<RouteSnapshot> {
    return this.#change((current) => replaceDeployment(current, name, routes));
  }

  /** Removes every route of deployment `name`. */
  removeDeployment(name: string): Promise<RouteSnapshot> {
    return this.#change((current) => removeDeployment(current, name));
  }

  /**
   * Takes `snapshot` (validated: another proxy process's table, at a handover) when it is newer
   * than this one's; resolves with the snapshot in force.
   */
  adopt(snapshot: RouteSnapshot): Promise<RouteSnapshot> {
    return this.#change((current) => (snapshot.version > current.version ? snapshot : current));
  }

  #change(compute: (current: RouteSnapshot) => RouteSnapshot): Promise<RouteSnapshot> {
    const run = async (): Promise<RouteSnapshot> => {
      const next = compute(this.#index.snapshot);
      if (next === this.#index.snapshot) return next;
      await writeSnapshotFile(this.file, next);
      this.#index = buildIndex(next);
      const snapshot = this.#index.snapshot;
      await Promise.allSettled(this.#listeners.map(async (listener) => listener(snapshot)));
      return snapshot;
    };
    const result = this.#queue.then(run);
    this.#queue = result.catch(() => {});
    return result;
  }
}
