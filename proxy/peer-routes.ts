/**
 * Peer routes: the HTTP hostnames other hosts of a cluster serve, and where their proxies listen.
 * A request whose Host has no local route (a local route always wins) and that no proxy forwarded
 * yet goes to the peer's proxy, marked `X-Depad-Via: <this host>; key=<cluster key>`. A request that
 * carries the mark is never forwarded again (no loop; a forged mark only gets a 421). The key,
 * compared in constant time, tells a real peer from a client: only a request with the right key
 * keeps the X-Forwarded-For/-Proto/-Host the first proxy set. The mark never reaches a container.
 *
 * The table lives in memory only (the agent sends it after every heartbeat the manager answers)
 * and is replaced in one assignment; with no peers a request pays nothing for it.
 */
import { timingSafeEqual } from 'node:crypto';
import { DepadError } from '../src/errors.ts';
import { upstreamKey } from './route-table.ts';
import { HOSTNAME, normalizeHost } from './routes.ts';

/** The header that marks a request one proxy forwarded to another (lowercase). */
export const VIA_FIELD = 'x-depad-via';

/** The proxy's answer to a marked request that no local route serves. */
export const NOT_FORWARDED_AGAIN = 'depad proxy: no route on this host for a request another depad proxy forwarded; it is not forwarded again (its route moved or is gone: retry)';

/** One host of the cluster, as a peer of this one. */
export interface PeerHost {
  name: string;
  address: string;
  httpPort: number;
}

/** What the agent hands its proxy (`PUT /peers`): who this host is, the cluster's key, its peers and their hostnames. */
export interface PeerTable {
  /** This host's name in the cluster (the mark's value). */
  self: string;
  /** The cluster's peer key (43 base64url characters): what marked requests must carry to be trusted. */
  key: string;
  hosts: PeerHost[];
  /** Hostname (lowercase) → the name of the host (in `hosts`) that serves it. */
  routes: Record<string, string>;
}

/** Where a peer route forwards to. */
export interface PeerTarget {
  /** The peer's name. */
  readonly host: string;
  /** `address:port` of its proxy: the Upstreams entry (keep-alive connections) used for it. */
  readonly key: string;
}

const HOST_NAME = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;
const KEY = /^[A-Za-z0-9_-]{43}$/;
const ADDRESS = /^[0-9A-Fa-f.:]{2,45}$/;

function bad(message: string): DepadError {
  return new DepadError('DEPAD_USAGE', `peers: ${message}`);
}

/** Validates a peer table as received (JSON); throws DEPAD_USAGE naming the first problem. */
export function parsePeerTable(value: unknown): PeerTable {
  const v = value as Partial<PeerTable> | undefined;
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw bad('the body must be {self, key, hosts, routes}');
  if (typeof v.self !== 'string' || !HOST_NAME.test(v.self)) throw bad('self must be a host name');
  if (typeof v.key !== 'string' || !KEY.test(v.key)) throw bad('key must be 43 base64url characters');
  if (!Array.isArray(v.hosts)) throw bad('hosts must be a list');
  const hosts: PeerHost[] = v.hosts.map((h: Partial<PeerHost>, i) => {
    if (typeof h !== 'object' || h === null || typeof h.name !== 'string' || !HOST_NAME.test(h.name)) throw bad(`hosts[${i}].name must be a host name`);
    if (typeof h.address !== 'string' || !ADDRESS.test(h.address)) throw bad(`hosts[${i}].address must be an IP address`);
    if (typeof h.httpPort !== 'number' || !Number.isInteger(h.httpPort) || h.httpPort < 1 || h.httpPort > 65535) throw bad(`hosts[${i}].httpPort must be a port number`);
    if (h.name === v.self) throw bad(`hosts[${i}]: this host (${h.name}) is not its own peer`);
    return { name: h.name, address: h.address, httpPort: h.httpPort };
  });
  const names = new Set(hosts.map((h) => h.name));
  if (typeof v.routes !== 'object' || v.routes === null || Array.isArray(v.routes)) throw bad('routes must be an object {hostname: host}');
  const routes: Record<string, string> = Object.create(null) as Record<string, string>;
  for (const [hostname, host] of Object.entries(v.routes)) {
    if (!HOSTNAME.test(hostname)) throw bad(`routes: ${JSON.stringify(hostname)} is not a lowercase hostname`);
    if (typeof host !== 'string' || !names.has(host)) throw bad(`routes.${hostname}: ${JSON.stringify(host)} is not one of hosts`);
    routes[hostname] = host;
  }
  return { self: v.self, key: v.key, hosts, routes };
}

interface Index {
  readonly table: PeerTable | undefined;
  readonly byHost: ReadonlyMap<string, PeerTarget>;
  /** The field line forwarded requests carry, CRLF included. */
  readonly mark: string;
  readonly key: Buffer | undefined;
}

const EMPTY: Index = { table: undefined, byHost: new Map(), mark: '', key: undefined };

/** The peer routes of one proxy process. */
export class PeerRoutes {
  #index: Index = EMPTY;

  /** Replaces the table (already validated with `parsePeerTable`). */
  set(table: PeerTable): void {
    const address = new Map(table.hosts.map((h) => [h.name, upstreamKey({ host: h.address, port: h.httpPort })]));
    const byHost = new Map<string, PeerTarget>();
    for (const [hostname, host] of Object.entries(table.routes)) byHost.set(hostname, Object.freeze({ host, key: address.get(host) as string }));
    this.#index = { table, byHost, mark: `X-Depad-Via: ${table.self}; key=${table.key}\r\n`, key: Buffer.from(`; key=${table.key}`, 'latin1') };
  }

  /** The table in force (undefined until the agent sent one). */
  get table(): PeerTable | undefined {
    return this.#index.table;
  }

  /** The `address:port` of every peer proxy (their Upstreams entries are kept while they are peers). */
  keys(): Set<string> {
    return new Set([...this.#index.byHost.values()].map((t) => t.key));
  }

  /** The peer serving a Host header value (any case, with or without port), if any. */
  route(hostHeader: string): PeerTarget | undefined {
    const byHost = this.#index.byHost;
    if (byHost.size === 0) return undefined;
    return byHost.get(hostHeader) ?? byHost.get(normalizeHost(hostHeader));
  }

  /** The head to send the peer: `upstreamHead` (ending in a blank line) with the mark added. */
  marked(upstreamHead: string): string {
    return `${upstreamHead.slice(0, -2)}${this.#index.mark}\r\n`;
  }

  /** `trusted`, bound: what a connection's ForwardFor.peer calls. */
  readonly trust = (via: string): boolean => this.trusted(via);

  /** True when an `X-Depad-Via` value carries this cluster's key (a real peer forwarded the request). */
  trusted(via: string): boolean {
    const key = this.#index.key;
    if (key === undefined) return false;
    const semi = via.indexOf(';');
    if (semi <= 0) return false;
    const given = Buffer.from(via.slice(semi), 'latin1');
    return given.length === key.length && timingSafeEqual(given, key);
  }
}
