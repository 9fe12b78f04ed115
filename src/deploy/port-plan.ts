/**
 * Which host ports a deployment's services hold, and how an update keeps them.
 *
 * - A service's published ports (`ports:`) are its own: each gets one `published` host port at
 *   create (or when it first appears) and keeps it across updates, restarts and rollbacks. Its
 *   instance binds it directly, so it answers whether or not a depad process runs; an update of
 *   such a service is therefore stop-first on the same port (swap.ts).
 * - The container port a proxy route forwards to (`x-depad.expose`) is an upstream: each instance
 *   publishes it on a port of its own (`instance`), so the new one starts beside the old and the
 *   route (hostname, or the `route` port of a tcp route) is the stable endpoint.
 * - A port an update gives up becomes a `spare` of the deployment: still reserved, never handed to
 *   another deployment while this one exists, and the first choice for its next new instances.
 */
import type { DeploymentSpec, PortSpec, ServiceSpec } from '../config/spec.ts';
import type { DeploymentRecord, PortAssignment } from '../store/records.ts';
import type { ServicePlan } from '../engine/types.ts';
import { rolloutDefaults, type RolloutPolicy } from '../config/service-rollout.ts';
import { currentInstances, type InstanceHolder } from '../render/names.ts';

/** A port still to be given a host port; `fixed`: only a port of that range will do (`x-depad.host_ports: fixed`). */
export type PortNeed = Omit<PortAssignment, 'host'> & { fixed?: { from: number; to: number } };

/**
 * True when `p` is the container port `service`'s proxy route forwards to (an instance port),
 * unless it asks for a fixed host port (then it is published, and its route forwards there).
 */
export function isUpstreamPort(service: ServiceSpec, p: PortSpec, fixed = false): boolean {
  const route = service.depad.route;
  return route !== undefined && p.protocol === 'tcp' && p.target === route.port && !(fixed && p.published !== undefined);
}

/** What an asked host port reads as: `80`, or `9000-9010`. */
function askedText(p: PortSpec): string | undefined {
  if (p.published === undefined) return undefined;
  return p.published.from === p.published.to ? String(p.published.from) : `${p.published.from}-${p.published.to}`;
}

/**
 * The host ports a service needs with instance `instance` current: one per published port (the
 * route's upstream port is the instance's own), plus (when `withRoutePort`) the proxy's stable port
 * if the service is exposed over tcp. With `fixed`, a port the file asks for must be that one.
 */
export function portsNeeded(service: ServiceSpec, instance: number, withRoutePort: boolean, fixed = false, replica?: number): PortNeed[] {
  const route = service.depad.route;
  return [
    ...service.ports.map((p): PortNeed => {
      const asked = askedText(p);
      return {
        service: service.name,
        target: p.target,
        protocol: p.protocol,
        ...(isUpstreamPort(service, p, fixed) ? { role: 'instance' as const, instance } : { role: 'published' as const, instance: 0, ...(replica === undefined ? {} : { replica }) }),
        ...(asked !== undefined ? { asked } : {}),
        ...(p.hostIp !== undefined ? { hostIp: p.hostIp } : {}),
        ...(fixed && p.published !== undefined ? { fixed: { ...p.published } } : {}),
      };
    }),
    ...(withRoutePort && route?.kind === 'tcp' ? [{ service: service.name, target: route.port, protocol: 'tcp' as const, role: 'route' as const, instance: 0 }] : []),
  ];
}

/** What an update does with the deployment's ports. */
export interface UpdatePorts {
  /** Assignments the deployment keeps as they are or re-labelled (a published port found under its old role). */
  kept: PortAssignment[];
  /** Ports to find: its spares first, then new ones from its block. */
  needed: PortNeed[];
  /** Ports it gives up: spares once the update commits. */
  retired: PortAssignment[];
  /** Its spares from before this update, free for `needed`. */
  spares: PortAssignment[];
}

/**
 * Plans an update's ports: unchanged services keep theirs; a changed service keeps each published
 * port it still publishes (records made before `published` existed held it as an `instance` port
 * of the current instance: it is taken over as it is) and gets fresh instance ports for its route;
 * ports of removed services, of old instances and of ports no longer published are retired.
 */
export function planUpdatePorts(
  record: Pick<DeploymentRecord, 'ports' | 'instances'>,
  spec: DeploymentSpec,
  changed: readonly string[],
  removed: readonly string[],
  /** Scaled services: the replicas (instance numbers) that stay, with their ports (`scaleKeeps`). */
  keeps: Readonly<Record<string, readonly number[]>> = {},
): UpdatePorts {
  const kept: PortAssignment[] = [];
  const needed: PortNeed[] = [];
  const retired: PortAssignment[] = [];
  const claimed = new Set<PortAssignment>();
  for (const name of changed) {
    const service = spec.services[name]!;
    const current = record.instances[name];
    const hasRoute = record.ports.some((p) => p.service === name && p.role === 'route');
    const stay = keeps[name] ?? [];
    // A scale keeps the replicas that stay (the first ones) with their ports: their route ports and published ports.
    for (const p of record.ports) {
      if (p.service !== name || claimed.has(p)) continue;
      if ((p.role === 'instance' && stay.includes(p.instance)) || (p.role === 'published' && stay.length > 0 && (p.replica ?? 1) <= stay.length)) (claimed.add(p), kept.push(p));
    }
    // One set per new replica (instances current+1…); the tcp route's stable port once.
    const many = (service.replicas ?? 1) > 1;
    const wanted = Array.from({ length: (service.replicas ?? 1) - stay.length }, (_, k) => portsNeeded(service, (current ?? 0) + 1 + k, k === 0 && !hasRoute, spec.depad.hostPorts === 'fixed', many ? stay.length + 1 + k : undefined)).flat();
    for (const need of wanted) {
      if (need.role !== 'published') {
        needed.push(need);
        continue;
      }
      // A held port still fits unless the file now asks for a fixed port it is not.
      const fits = (p: PortAssignment) => need.fixed === undefined || (p.host >= need.fixed.from && p.host <= need.fixed.to);
      const same = (p: PortAssignment) => p.service === name && p.target === need.target && p.protocol === need.protocol && (p.role !== 'published' || (p.replica ?? 1) === (need.replica ?? 1)) && !claimed.has(p) && fits(p);
      const held = record.ports.find((p) => same(p) && p.role === 'published') ?? record.ports.find((p) => same(p) && p.role === 'instance' && p.instance === current);
      if (held === undefined) needed.push(need);
      else {
        claimed.add(held);
        const { fixed: _fixed, ...assignment } = need;
        kept.push({ ...assignment, host: held.host });
      }
    }
  }
  for (const p of record.ports) {
    if (claimed.has(p) || p.role === 'spare') continue;
    const service = spec.services[p.service];
    const gone =
      removed.includes(p.service) ||
      (changed.includes(p.service) && (p.role !== 'route' || service?.depad.route?.kind !== 'tcp'));
    if (gone) retired.push(p);
    else kept.push(p);
  }
  return { kept, needed, retired, spares: record.ports.filter((p) => p.role === 'spare') };
}

/** The replicas each scaled service keeps (an update whose only change to it is its replica count). */
export function scaleKeeps(diff: { services: ReadonlyArray<{ service: string; replicas?: { to: number; only: boolean } }> }, record: InstanceHolder): Record<string, number[]> {
  return Object.fromEntries(diff.services.filter((c) => c.replicas?.only === true).map((c) => [c.service, currentInstances(record, c.service).slice(0, c.replicas!.to)]));
}

/** `p` as a spare of its deployment. */
export function asSpare(p: PortAssignment): PortAssignment {
  return { service: p.service, target: p.target, protocol: p.protocol, host: p.host, role: 'spare', instance: 0 };
}

/**
 * Whether an update (or, with `kind`, a rollback) replaces `service` stop-first: it publishes host
 * ports (`ports`: what it holds after the update, or will be given) or has a fixed address, which
 * two instances cannot share; else as its `update_config`/`rollback_config` `order` says; else
 * when it has named volumes.
 */
export function stopsFirst(
  meta: { stateful: boolean; fixedAddress?: true; order?: ServicePlan['order'] },
  ports: ReadonlyArray<Pick<PortAssignment, 'service' | 'role'>>,
  service: string,
  kind: 'update' | 'rollback' = 'update',
): boolean {
  if (meta.fixedAddress === true || publishes(ports, service)) return true;
  const order = meta.order?.[kind];
  return order === undefined ? meta.stateful : order === 'stop-first';
}

/** True when `service` holds published ports in `ports` (its instances bind them: two cannot run at once). */
export function publishes(ports: ReadonlyArray<Pick<PortAssignment, 'service' | 'role'>>, service: string): boolean {
  return ports.some((p) => p.service === service && p.role === 'published');
}

/**
 * How an update (or rollback) rolls the replicas of `service`: its `update_config` (or
 * `rollback_config`) over depad's defaults, stop-first when it publishes ports (a replica's port
 * passes to its successor on the same slot).
 */
export function rollPolicy(spec: DeploymentSpec, meta: { stateful: boolean }, ports: ReadonlyArray<Pick<PortAssignment, 'service' | 'role'>>, service: string, kind: 'update' | 'rollback'): Required<RolloutPolicy> {
  const given = rolloutDefaults(spec.services[service]?.rollout?.[kind], meta.stateful);
  return publishes(ports, service) ? { ...given, order: 'stop-first' } : given;
}

/** Why `stopsFirst` says stop-first when only the file's `order` makes it so (not volumes, ports or an address); else undefined. */
export function orderReason(meta: { stateful: boolean; order?: ServicePlan['order'] }, kind: 'update' | 'rollback' = 'update'): string | undefined {
  return meta.order?.[kind] === 'stop-first' && !meta.stateful ? `its ${kind}_config says order: stop-first` : undefined;
}

/** Host port 0 for every port `spec`'s services would publish with `instances` current: for plans made only to be compared or checked. */
export function placeholderPorts(spec: DeploymentSpec, holder: InstanceHolder = {}): PortAssignment[] {
  const fixed = spec.depad.hostPorts === 'fixed';
  return Object.values(spec.services).flatMap((s) => {
    const list = replicaInstances(holder, s);
    return list.flatMap((n, i) => portsNeeded(s, n, false, fixed, list.length > 1 ? i + 1 : undefined).map(({ fixed: _fixed, ...p }) => ({ ...p, host: 0 })));
  });
}

/** `holder` with every service at the replica count `spec` asks for (`replicaInstances`): for plans made only to be compared or checked. */
export function withSpecReplicas(spec: DeploymentSpec, holder: InstanceHolder): InstanceHolder & { replicas: Record<string, number[]> } {
  const replicas: Record<string, number[]> = {};
  for (const s of Object.values(spec.services)) {
    const list = replicaInstances(holder, s);
    if (list.length !== 1 || (holder.replicas?.[s.name]?.length ?? 1) !== 1) replicas[s.name] = list;
  }
  return { ...holder, replicas };
}

/** The instance numbers a plan made only to be compared or checked gives `s`: the current ones, as many as the file asks for. */
export function replicaInstances(holder: InstanceHolder, s: ServiceSpec): number[] {
  const current = currentInstances(holder, s.name);
  const want = s.replicas ?? 1;
  const last = Math.max(0, ...current);
  return Array.from({ length: want }, (_, k) => current[k] ?? last + k - current.length + 1);
}
