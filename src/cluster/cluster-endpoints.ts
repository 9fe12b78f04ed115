/**
 * The cluster's own endpoints on the manager: join tokens, the join and heartbeats of agents,
 * and the hosts (`depad hosts`). Joins authenticate by their one-time token (in the body), and
 * heartbeats by the client certificate the join issued; everything else by an admin token.
 */
import type { Endpoint } from '../api/call.ts';
import { onlyFields, readJsonObject, stringField } from '../api/body.ts';
import { DepadError } from '../errors.ts';
import type { HostCapacity, HostRecord } from '../store/records.ts';
import { createJoinToken, type HostSummary, type JoinRequest } from './hosts.ts';
import type { ManagerDeps } from './manager-endpoints.ts';
import { peerKey, peersFor } from './peers.ts';

/** The id of the principal a join request acts as (its body's token is checked by the endpoint). */
export const JOINER_ID = 'cluster-joiner';
/** The id prefix of the principal an agent's heartbeat acts as: `host:<name>`. */
export const HOST_PRINCIPAL = 'host:';

/** The view of a host: no certificates. */
export function hostView(deps: ManagerDeps, h: HostRecord): HostSummary {
  return {
    name: h.name,
    state: deps.hosts.stateOf(h),
    cordoned: h.cordoned,
    address: h.address,
    apiUrl: h.apiUrl,
    labels: h.labels,
    capacity: h.capacity,
    reserved: deps.placements.reservedOn(h.name),
    deployments: deps.placements.onHost(h.name).length,
    joinedAt: h.joinedAt,
    lastSeen: h.lastSeen,
    ...(h.version ? { version: h.version } : {}),
    ...(h.engine?.state === 'down' ? { engine: h.engine } : {}),
  };
}

function capacityField(value: unknown): HostCapacity {
  const c = value as Partial<HostCapacity> | undefined;
  const ok = (n: unknown) => typeof n === 'number' && Number.isFinite(n) && n >= 0;
  if (!c || !ok(c.cpus) || !ok(c.memoryBytes)) throw new DepadError('DEPAD_USAGE', 'capacity must be {cpus, memoryBytes, diskBytes?, freePorts?}: numbers');
  return { cpus: c.cpus!, memoryBytes: c.memoryBytes!, ...(ok(c.diskBytes) ? { diskBytes: c.diskBytes! } : {}), ...(ok(c.freePorts) ? { freePorts: c.freePorts! } : {}) };
}

/** The heartbeat's engine status: whether the agent reaches its host's Docker Engine. */
function engineField(value: unknown): HostRecord['engine'] {
  const e = value as { state?: unknown; since?: unknown; error?: unknown } | undefined;
  if (!e || (e.state !== 'up' && e.state !== 'down')) return undefined;
  return { state: e.state, since: typeof e.since === 'string' ? e.since : new Date().toISOString(), ...(typeof e.error === 'string' ? { error: e.error.slice(0, 300) } : {}) };
}

function labelMap(value: unknown): Record<string, string> {
  if (value === undefined) return {};
  if (typeof value !== 'object' || value === null || Array.isArray(value) || Object.values(value).some((v) => typeof v !== 'string')) throw new DepadError('DEPAD_USAGE', 'labels must be an object of strings');
  return { ...(value as Record<string, string>) };
}

/** The cluster endpoints of the manager. */
export function clusterEndpoints(deps: ManagerDeps): Endpoint[] {
  const host = (params: string[]) => deps.hosts.get(params[0] ?? '');
  return [
    {
      method: 'POST',
      path: '/v1/cluster/join-tokens',
      action: 'hosts',
      summary: 'Make a one-time join token for an agent (depad manager join-token); the answer holds it, once',
      run: async (call) => {
        const { token, record } = await createJoinToken(call.ctx.store, deps.caFingerprint);
        return { status: 201, body: { token, expiresAt: record.expiresAt } };
      },
    },
    {
      method: 'POST',
      path: '/v1/cluster/join',
      action: 'hosts',
      scopesItself: true,
      mutates: true,
      summary: 'An agent joins with a one-time token (depad agent --join); answers its client certificate',
      run: async (call) => {
        if (call.token.id !== JOINER_ID) throw new DepadError('DEPAD_FORBIDDEN', 'only an agent joining may call this');
        const body = await readJsonObject(call.req);
        onlyFields(body, ['token', 'name', 'address', 'apiPort', 'httpPort', 'labels', 'capacity', 'agentCa', 'publicKey', 'version']);
        const port = (key: string) => {
          const n = body[key];
          if (typeof n !== 'number' || !Number.isInteger(n) || n < 1 || n > 65535) throw new DepadError('DEPAD_USAGE', `${key} must be a port number`);
          return n;
        };
        const request: JoinRequest = {
          token: stringField(body, 'token') as string,
          name: stringField(body, 'name') as string,
          address: stringField(body, 'address') as string,
          apiPort: port('apiPort'),
          httpPort: port('httpPort'),
          labels: labelMap(body.labels),
          capacity: capacityField(body.capacity),
          agentCa: stringField(body, 'agentCa') as string,
          publicKey: stringField(body, 'publicKey') as string,
          ...(typeof body.version === 'string' ? { version: body.version } : {}),
        };
        call.deployment = undefined;
        return { status: 201, body: await deps.hosts.join(request) };
      },
    },
    {
      method: 'POST',
      path: '/v1/cluster/heartbeat',
      action: 'hosts',
      scopesItself: true,
      summary: "An agent's heartbeat (its client certificate says which host): capacity, deployments",
      run: async (call) => {
        if (!call.token.id.startsWith(HOST_PRINCIPAL)) throw new DepadError('DEPAD_FORBIDDEN', 'only a joined agent (its client certificate) sends heartbeats');
        const name = call.token.id.slice(HOST_PRINCIPAL.length);
        const body = await readJsonObject(call.req);
        const deployments = Array.isArray(body.deployments) ? (body.deployments as HostRecord['deployments']) : undefined;
        const httpPort = typeof body.httpPort === 'number' ? body.httpPort : deps.hosts.get(name).httpPort;
        const engine = engineField(body.engine);
        await deps.hosts.heartbeat(name, { capacity: capacityField(body.capacity), httpPort, ...(deployments ? { deployments } : {}), ...(typeof body.version === 'string' ? { version: body.version } : {}), ...(engine ? { engine } : {}) });
        return { body: { ok: true, heartbeatMs: deps.hosts.heartbeatMs, peers: peersFor(deps.hosts, name, peerKey(deps.identity)) } };
      },
    },
    {
      method: 'GET',
      path: '/v1/hosts',
      action: 'hosts',
      summary: 'The hosts of the cluster: state, labels, capacity, reserved, deployments (depad hosts ls)',
      run: async () => ({ body: deps.hosts.list().map((h) => hostView(deps, h)) }),
    },
    {
      method: 'GET',
      path: '/v1/hosts/{host}',
      action: 'hosts',
      summary: 'One host, with the deployments placed on it (depad hosts inspect)',
      run: async (call) => {
        const h = host(call.params);
        return { body: { ...hostView(deps, h), placements: deps.placements.onHost(h.name), reported: h.deployments ?? [] } };
      },
    },
    {
      method: 'POST',
      path: '/v1/hosts/{host}/label',
      action: 'hosts',
      summary: 'Set or remove labels of a host (depad hosts label); body: {set?: {k: v}, remove?: [k]}',
      run: async (call) => {
        const body = await readJsonObject(call.req);
        onlyFields(body, ['set', 'remove']);
        const remove = body.remove === undefined ? [] : Array.isArray(body.remove) && body.remove.every((k) => typeof k === 'string') ? (body.remove as string[]) : undefined;
        if (remove === undefined) throw new DepadError('DEPAD_USAGE', 'remove must be a list of label keys');
        const changes: Record<string, string | undefined> = { ...labelMap(body.set), ...Object.fromEntries(remove.map((k) => [k, undefined])) };
        return { body: hostView(deps, await deps.hosts.label(host(call.params).name, changes)) };
      },
    },
    ...(['cordon', 'uncordon'] as const).map((verb): Endpoint => ({
      method: 'POST',
      path: `/v1/hosts/{host}/${verb}`,
      action: 'hosts',
      summary: verb === 'cordon' ? 'Place no new deployment on a host; the ones there stay (depad hosts cordon)' : 'Place deployments on a host again (depad hosts uncordon)',
      run: async (call) => ({ body: hostView(deps, await deps.hosts.cordon(host(call.params).name, verb === 'cordon')) }),
    })),
    {
      method: 'DELETE',
      path: '/v1/hosts/{host}',
      action: 'hosts',
      summary: 'Forget a host (depad hosts rm); refused while deployments are placed on it unless ?force=true',
      run: async (call) => {
        const h = host(call.params);
        const force = call.url.searchParams.get('force') === 'true';
        const placed = deps.placements.onHost(h.name);
        await deps.hosts.remove(h.name, placed.length, force);
        for (const p of placed) await deps.placements.forget(p.name);
        return { body: { removed: h.name, forgotten: placed.map((p) => p.name) } };
      },
    },
  ];
}

