/**
 * Stable endpoints across hosts: every agent's proxy serves every HTTP hostname of the cluster.
 * Each heartbeat carries, per deployment, the hostnames of its HTTP routes (from the proxy's route
 * table); the manager keeps them on the host's record and answers each heartbeat with the peer
 * table of that host: every hostname a *other* host that is not down serves → that host, with its
 * address and proxy port, and the cluster's peer key (what marks a request one proxy forwarded to
 * another, proxy/peer-routes.ts). The agent hands the table to its proxy when it changed, so
 * routes converge within one heartbeat. TCP routes stay on their own host.
 */
import { createHmac } from 'node:crypto';
import net from 'node:net';
import type { PeerTable } from '../../proxy/peer-routes.ts';
import { HOSTNAME } from '../../proxy/routes.ts';
import type { RouteSnapshot } from '../../proxy/types.ts';
import type { Logger } from '../logger.ts';
import type { RouteOwner } from '../deploy/preflight.ts';
import type { HostRecord, PlacementRecord } from '../store/records.ts';
import type { ManagerIdentity } from './host-client.ts';
import type { HostRegistry } from './hosts.ts';

/** The HTTP route hostnames of each deployment in a route snapshot (the agent's heartbeat). */
export function deploymentHostnames(snapshot: RouteSnapshot): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const route of snapshot.routes) if (route.kind === 'http') out.set(route.deployment, [...(out.get(route.deployment) ?? []), ...route.hosts]);
  return out;
}

/**
 * The cluster's peer key: derived from the manager's own client key (HMAC-SHA256), so it is the
 * same after a restart and is never stored; it travels only in heartbeat answers (mutual TLS).
 */
export function peerKey(identity: ManagerIdentity): string {
  return createHmac('sha256', identity.key).update('depad cluster peer key v1').digest('base64url');
}

/**
 * Who routes each HTTP hostname of the cluster: what the hosts' heartbeats report (down hosts too:
 * their deployments keep their names), and, for a placement its host has not reported yet (a
 * create under way or just done), the hostnames its config routed at create.
 */
export function clusterRouteOwners(hosts: Pick<HostRegistry, 'list'>, placements: readonly Pick<PlacementRecord, 'name' | 'host' | 'hostnames'>[]): Map<string, RouteOwner> {
  const owners = new Map<string, RouteOwner>();
  const reported = new Set<string>();
  for (const h of [...hosts.list()].sort((a, b) => a.name.localeCompare(b.name))) {
    for (const d of h.deployments ?? []) {
      reported.add(d.name);
      for (const hostname of hostnamesOf(d)) if (!owners.has(hostname)) owners.set(hostname, { deployment: d.name, host: h.name });
    }
  }
  for (const p of placements) {
    if (reported.has(p.name)) continue;
    for (const hostname of p.hostnames ?? []) if (!owners.has(hostname)) owners.set(hostname, { deployment: p.name, host: p.host });
  }
  return owners;
}

/** The hostnames a heartbeat reported for one deployment: lowercase hostnames only, anything else dropped. */
function hostnamesOf(deployment: NonNullable<HostRecord['deployments']>[number]): string[] {
  const list = (deployment as { hostnames?: unknown }).hostnames;
  return Array.isArray(list) ? list.filter((h): h is string => typeof h === 'string' && HOSTNAME.test(h)) : [];
}

/**
 * The peer table of host `self`: the other hosts that are not down (they may forward to it too),
 * and every hostname they serve. A hostname two hosts report goes to the first by name.
 */
export function peersFor(hosts: Pick<HostRegistry, 'list' | 'stateOf'>, self: string, key: string, now = Date.now()): PeerTable {
  const peers = hosts.list().filter((h) => h.name !== self && hosts.stateOf(h, now) !== 'down' && net.isIP(h.address) !== 0);
  const routes = Object.create(null) as Record<string, string>; // hostnames may be `__proto__`
  for (const h of peers) for (const d of h.deployments ?? []) for (const hostname of hostnamesOf(d)) routes[hostname] ??= h.name;
  return { self, key, hosts: peers.map((h) => ({ name: h.name, address: h.address, httpPort: h.httpPort })), routes };
}

/** The agent's side: hands each heartbeat answer's peer table to its proxy, when it changed. */
export function peerRouteSync(proxy: { setPeers(table: PeerTable): Promise<boolean> }, log: Logger): (answer: unknown) => Promise<void> {
  let last: string | undefined;
  return async (answer) => {
    const table = (answer as { peers?: PeerTable } | undefined)?.peers;
    if (table === undefined) return;
    const text = JSON.stringify(table);
    if (text === last) return;
    try {
      if (!(await proxy.setPeers(table))) return;
      last = text;
      log.info({ peers: table.hosts.length, hostnames: Object.keys(table.routes).length }, 'peer routes handed to the proxy');
    } catch (error) {
      log.warn({ error: (error as Error).message }, 'the proxy did not take the peer routes; tried again at the next heartbeat');
    }
  };
}
