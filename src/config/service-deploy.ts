/**
 * A service's `deploy:` as a single engine runs it: resources (limits; memory reservations),
 * restart_policy, replicas (1 for now), mode (replicated), update_config and rollback_config
 * (service-rollout.ts); the Swarm-only keys are accepted and have no effect, as with docker compose.
 */
import type { ResourceLimits, ServiceSpec } from './spec.ts';
import type { Collector, LNode, Pos } from './nodes.ts';
import { entryPos, keyPath } from './nodes.ts';
import { checkKeys, mapEntries, readInt, readKeyValues, readString } from './read.ts';
import { readLimits } from './service-parts.ts';
import { hostAccessProblem } from './host-access.ts';
import { parseCpus, parseMemory } from './values.ts';
import { readRollout, type RolloutPolicy } from './service-rollout.ts';

/** What `deploy:` gives a service. */
export interface DeployRead {
  readonly limits: ResourceLimits;
  /** `resources.reservations.memory` → MemoryReservation. */
  readonly memoryReservation?: number;
  /** `restart_policy` (condition, max_attempts) → the engine restart policy; wins over `restart:`. */
  readonly restart?: NonNullable<ServiceSpec['restart']>;
  /** `replicas`, with where it was written. */
  readonly replicas?: { readonly value: number; readonly path: string; readonly pos: Pos };
  /** `update_config` and `rollback_config` (service-rollout.ts). */
  readonly rollout?: { readonly update?: RolloutPolicy; readonly rollback?: RolloutPolicy };
}

const SWARM_ONLY = ['endpoint_mode', 'placement', 'labels'];

/** Reads `deploy:` (`publishes`: the service has `ports:`, which rule out a start-first order). */
export function readDeployKeys(c: Collector, node: LNode, path: string, publishes = false): DeployRead {
  const out: { -readonly [K in keyof DeployRead]: DeployRead[K] } = { limits: {} };
  const deploy = checkKeys(c, mapEntries(c, node, path) ?? [], path, { supported: ['resources', 'restart_policy', 'replicas', 'mode', 'update_config', 'rollback_config', ...SWARM_ONLY] });
  const at = (key: string) => keyPath(path, key);
  const replicas = deploy.get('replicas');
  if (replicas && !(replicas.value.kind === 'scalar' && replicas.value.value === null)) {
    const n = readInt(c, replicas.value, at('replicas'), 0);
    if (n !== undefined) out.replicas = { value: n, path: at('replicas'), pos: entryPos(replicas) };
  }
  const mode = deploy.get('mode');
  if (mode) {
    const t = readString(c, mode.value, at('mode'));
    if (t !== undefined && t !== 'replicated') c.issue(at('mode'), entryPos(mode), `deploy.mode ${t} is a Swarm mode; on one engine only replicated is meaningful (remove it)`);
  }
  const labels = deploy.get('labels');
  if (labels) readKeyValues(c, labels.value, at('labels'), 'label');
  const resources = deploy.get('resources');
  if (resources) {
    const resPath = at('resources');
    const res = checkKeys(c, mapEntries(c, resources.value, resPath) ?? [], resPath, { supported: ['limits', 'reservations'] });
    const limits = res.get('limits');
    if (limits) out.limits = readLimits(c, limits.value, keyPath(resPath, 'limits'));
    const reservations = res.get('reservations');
    if (reservations) {
      const rp = keyPath(resPath, 'reservations');
      const r = checkKeys(c, mapEntries(c, reservations.value, rp) ?? [], rp, { supported: ['cpus', 'memory', 'devices', 'generic_resources'] });
      const mem = r.get('memory');
      if (mem && mem.value.kind === 'scalar') {
        const v = mem.value.value;
        const t = typeof v === 'number' ? v : readString(c, mem.value, keyPath(rp, 'memory'));
        const parsed = t === undefined ? undefined : parseMemory(t);
        if (parsed?.ok) out.memoryReservation = parsed.value;
        else if (parsed) c.issue(keyPath(rp, 'memory'), entryPos(mem), parsed.error);
      } else if (mem) c.issue(keyPath(rp, 'memory'), mem.keyPos, 'expected a memory size such as "256m"');
      const cpus = r.get('cpus');
      if (cpus && cpus.value.kind === 'scalar') {
        const v = cpus.value.value;
        const t = typeof v === 'number' ? v : readString(c, cpus.value, keyPath(rp, 'cpus'));
        const parsed = t === undefined ? undefined : parseCpus(t);
        if (parsed && !parsed.ok) c.issue(keyPath(rp, 'cpus'), entryPos(cpus), parsed.error);
      }
      const devices = r.get('devices');
      if (devices) {
        const problem = hostAccessProblem({ key: 'deploy.resources.reservations.devices', value: true });
        if (problem !== undefined) c.issue(keyPath(rp, 'devices'), devices.keyPos, problem);
      }
    }
  }
  const rollout: { update?: RolloutPolicy; rollback?: RolloutPolicy } = {};
  for (const [key, kind] of [['update_config', 'update'], ['rollback_config', 'rollback']] as const) {
    const e = deploy.get(key);
    if (e !== undefined && !(e.value.kind === 'scalar' && e.value.value === null)) rollout[kind] = readRollout(c, e.value, at(key), kind, publishes);
  }
  if (rollout.update !== undefined || rollout.rollback !== undefined) out.rollout = rollout;
  const policy = deploy.get('restart_policy');
  if (policy) {
    const pp = at('restart_policy');
    const p = checkKeys(c, mapEntries(c, policy.value, pp) ?? [], pp, { supported: ['condition', 'delay', 'max_attempts', 'window'] });
    let name: 'no' | 'always' | 'on-failure' = 'always';
    const cond = p.get('condition');
    if (cond) {
      const t = readString(c, cond.value, keyPath(pp, 'condition'));
      if (t === 'none') name = 'no';
      else if (t === 'on-failure') name = 'on-failure';
      else if (t !== undefined && t !== 'any') c.issue(keyPath(pp, 'condition'), entryPos(cond), `condition must be none, on-failure or any; found "${t}"`);
    }
    const max = p.get('max_attempts');
    const attempts = max ? readInt(c, max.value, keyPath(pp, 'max_attempts'), 0) : undefined;
    out.restart = name === 'on-failure' && attempts !== undefined ? { policy: name, maxRetries: attempts } : { policy: name };
  }
  return out;
}

/**
 * Why a service cannot run as several replicas, or undefined when it can: host ports it publishes
 * (each is one port on the host), named volumes (they would be shared without a say), a fixed
 * address, another service's namespaces it joins.
 */
export function replicaProblem(s: Pick<ServiceSpec, 'ports' | 'volumes' | 'networks' | 'depad'>, engine: ServiceSpec['engine']): string | undefined {
  const route = s.depad.route;
  // A container port alone ("8080") gets a host port per replica; a host port the file asks for is one port.
  const asked = s.ports.filter((p) => p.published !== undefined && !(route !== undefined && p.protocol === 'tcp' && p.target === route.port));
  if (asked.length > 0) return `a host port the file asks for (ports: ${asked.map((p) => `${p.published!.from}:${p.target}`).join(', ')}) is one port, which one replica only can bind; write the container port alone ("${asked[0]!.target}": each replica gets a host port of its own), reach the replicas through the proxy (x-depad.expose, which balances over them), or run one replica`;
  const volume = s.volumes.find((m) => m.type === 'volume');
  if (volume !== undefined) return `the named volume ${volume.source} would be shared by every replica, and depad does not share a named volume between replicas (nor give each its own yet); use one replica, or keep the data in a service of its own`;
  if (Object.values(s.networks).some((n) => (n as { ipv4Address?: string }).ipv4Address !== undefined)) return 'a fixed address (ipv4_address) is one address, which one replica only can have; remove it or run one replica';
  if (engine?.joins !== undefined) return "a service that joins another one's namespaces (network_mode, ipc, pid: service:) runs as one replica; remove the replicas or the join";
  return undefined;
}
