/**
 * The manager's placement call: what a deployment needs, and which host gets it. The choice
 * itself is placement.ts's (`place`); this file turns the manager's hosts and placements into
 * its input and its answer into a host or DEPAD_NO_HOST.
 */
import type { DeploymentSpec } from '../config/spec.ts';
import { DepadError } from '../errors.ts';
import type { HostRegistry } from './hosts.ts';
import type { Placements } from './placements.ts';

/** What a deployment reserves on its host when nothing says: per container. */
const DEFAULT_NEED = { cpus: 0.25, memoryBytes: 256 * 1024 * 1024 };

/** A deployment's need: its x-depad.resources budget, else its services' limits × replicas, else the default per container. */
export function needOf(spec: DeploymentSpec): { cpus: number; memoryBytes: number } {
  const services = Object.values(spec.services);
  const sum = (key: 'cpus' | 'memoryBytes') => services.reduce((n, s) => n + (s.resources[key] ?? DEFAULT_NEED[key]) * (s.replicas ?? 1), 0);
  return { cpus: spec.depad.resources?.cpus ?? sum('cpus'), memoryBytes: spec.depad.resources?.memoryBytes ?? sum('memoryBytes') };
}

/** What placing a deployment needs to know of it. */
export interface PlaceAsk {
  name: string;
  labels: Record<string, string>;
  spec: DeploymentSpec;
  /** Only this host (create --host). */
  host?: string;
}

/** The chosen host, the need it reserves, and every candidate with its score or the reason it was left out. */
export function choosePlacement(deps: { hosts: HostRegistry; placements: Placements }, ask: PlaceAsk): { host: string; need: { cpus: number; memoryBytes: number }; result: { chosen?: string; candidates: { host: string; score?: number; excluded?: string }[] } } {
  const need = needOf(ask.spec);
  const candidates = deps.hosts.list().map((h) => {
    const state = deps.hosts.stateOf(h);
    const reserved = deps.placements.reservedOn(h.name);
    const freeCpus = h.capacity.cpus - reserved.cpus;
    const freeMemory = h.capacity.memoryBytes - reserved.memoryBytes;
    const excluded = ask.host !== undefined && ask.host !== h.name ? `not ${ask.host} (--host)` : state !== 'ready' ? state : need.cpus > freeCpus ? `needs ${need.cpus} CPUs, ${freeCpus} of ${h.capacity.cpus} free` : need.memoryBytes > freeMemory ? `needs ${need.memoryBytes} bytes of memory, ${freeMemory} free` : undefined;
    const score = excluded === undefined ? 1 - Math.max((reserved.cpus + need.cpus) / h.capacity.cpus, (reserved.memoryBytes + need.memoryBytes) / h.capacity.memoryBytes) : undefined;
    return { host: h.name, ...(score === undefined ? {} : { score }), ...(excluded === undefined ? {} : { excluded }) };
  });
  const best = candidates.filter((c) => c.score !== undefined).sort((a, b) => b.score! - a.score! || a.host.localeCompare(b.host))[0];
  if (!best) {
    throw new DepadError('DEPAD_NO_HOST', `no host can run ${ask.name}: ${candidates.map((c) => `${c.host}: ${c.excluded}`).join('; ') || 'the cluster has no host'}`, { hint: 'add a host (depad agent --join …), free capacity, or relax x-depad.placement' });
  }
  return { host: best.host, need, result: { chosen: best.host, candidates } };
}
