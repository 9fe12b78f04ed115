/**
 * What a deployment needs of a host, for placement: CPUs, memory and host ports, from its spec.
 * Pure (no engine, no network).
 */
import type { DeploymentSpec, ServiceSpec } from '../config/spec.ts';
import { bytesText, cpusText, limitsTotal } from '../config/budget.ts';
import { DepadError } from '../errors.ts';
import { rollingSurge } from '../config/service-rollout.ts';
import { portsNeeded } from '../deploy/port-plan.ts';
import type { PlacementRequest } from './placement.ts';

/**
 * What a service without a limit counts for, per replica: 0.25 CPU and 256 MiB. About what a small
 * web app or database idles at; a host of 4 CPUs and 8 GiB then takes 16 and 32 such services, and
 * nothing on it is capped, so give `deploy.resources.limits` (or an `x-depad.resources` budget)
 * where placement must be exact.
 */
export const DEFAULT_SERVICE_NEED = Object.freeze({ cpus: 0.25, memoryBytes: 256 * 1024 * 1024 });

/** Where a need figure came from: the `x-depad.resources` budget, the services' limits, the default, or limits for some services and the default for others. */
export type NeedBasis = 'budget' | 'limits' | 'default' | 'limits+default';

/** A deployment's need, with where each figure came from. */
export interface DeploymentNeed {
  /** CPUs (0.25 steps are usual; any non-negative number). */
  readonly cpus: number;
  readonly memoryBytes: number;
  /** Host ports it takes at create: each published port per replica, and a tcp route's stable port. */
  readonly ports: number;
  readonly basis: { readonly cpus: NeedBasis; readonly memory: NeedBasis };
}

/**
 * A deployment's need, per resource: its `x-depad.resources` budget when it sets that resource;
 * else the sum of its services' `deploy.resources.limits` × replicas, plus the largest start-first
 * rolling batch (as the budget counts, src/config/budget.ts), with `DEFAULT_SERVICE_NEED` per replica
 * for a service without that limit. A budget without memory takes the services' memory, and so on.
 */
export function needOf(spec: Pick<DeploymentSpec, 'services' | 'depad'>): DeploymentNeed {
  const services = Object.values(spec.services).map((s) => ({ name: s.name, limits: s.resources, replicas: s.replicas ?? 1, surge: rollingSurge(s) }));
  const budget = spec.depad.resources;
  const cpus = budget?.cpus !== undefined ? { n: budget.cpus, basis: 'budget' as const } : summed(services, (l) => l.cpus, DEFAULT_SERVICE_NEED.cpus);
  const memory = budget?.memoryBytes !== undefined ? { n: budget.memoryBytes, basis: 'budget' as const } : summed(services, (l) => l.memoryBytes, DEFAULT_SERVICE_NEED.memoryBytes);
  return { cpus: round3(cpus.n), memoryBytes: Math.round(memory.n), ports: portsOf(Object.values(spec.services)), basis: { cpus: cpus.basis, memory: memory.basis } };
}

function summed<S extends { name: string; limits: ServiceSpec['resources']; replicas: number; surge: number }>(services: readonly S[], of: (l: ServiceSpec['resources']) => number | undefined, fallback: number): { n: number; basis: NeedBasis } {
  const limited = services.filter((s) => of(s.limits) !== undefined).length;
  const basis: NeedBasis = services.length === 0 || limited === services.length ? 'limits' : limited === 0 ? 'default' : 'limits+default';
  return { n: limitsTotal(services, (l) => of(l) ?? fallback).total, basis };
}

function portsOf(services: readonly ServiceSpec[]): number {
  return services.reduce((sum, s) => sum + portsNeeded(s, 1, false).length * (s.replicas ?? 1) + (s.depad.route?.kind === 'tcp' ? 1 : 0), 0);
}

function round3(n: number): number {
  return Math.round(n * 1000) / 1000;
}

/**
 * The placement request of deployment `name` made from `spec`: its need (`needOf`), labels (the
 * file's, then `labels` given at create, as `deploymentLabels` merges them), `class` from them,
 * the file's `x-depad.placement`, and `host` (`create --on-host NAME`) when given.
 */
export function placementRequest(name: string, spec: Pick<DeploymentSpec, 'services' | 'depad'>, options: { labels?: Readonly<Record<string, string>>; host?: string } = {}): PlacementRequest {
  const labels = { ...spec.depad.labels, ...options.labels };
  const need = needOf(spec);
  const placement = spec.depad.placement;
  return {
    name,
    ...(labels.class === undefined ? {} : { class: labels.class }),
    labels,
    need: { cpus: need.cpus, memoryBytes: need.memoryBytes, ports: need.ports },
    constraints: (placement?.constraints ?? []).map((k) => ({ label: k.label, op: k.op, value: k.value })),
    ...(placement?.spread === undefined ? {} : { spread: placement.spread }),
    ...(options.host === undefined ? {} : { host: options.host }),
  };
}

/** What a deployment may grow to on its host: the host's capacity less what everything else there reserves (Placements.roomOf). */
export interface HostRoom {
  readonly host: string;
  readonly cpus: number;
  readonly memoryBytes: number;
}

/**
 * DEPAD_NO_HOST when deployment `name` would need more of its host than `room` leaves: a
 * resource it needs more of than before (`before`: its current need) and more of than the room.
 * A change that needs no more than before always passes (a host overcommitted by an earlier
 * `--capacity` change must still take a scale down). Pure.
 */
export function assertRoom(name: string, before: Pick<DeploymentNeed, 'cpus' | 'memoryBytes'>, after: Pick<DeploymentNeed, 'cpus' | 'memoryBytes'>, room: HostRoom | undefined): void {
  if (room === undefined) return;
  const over: string[] = [];
  if (after.cpus > before.cpus && round3(after.cpus) > round3(room.cpus)) over.push(`${cpusText(after.cpus)} (${before.cpus} now), ${round3(room.cpus)} available to it`);
  if (after.memoryBytes > before.memoryBytes && after.memoryBytes > room.memoryBytes) over.push(`${bytesText(after.memoryBytes)} of memory (${bytesText(before.memoryBytes)} now), ${bytesText(room.memoryBytes)} available to it`);
  if (over.length === 0) return;
  throw new DepadError('DEPAD_NO_HOST', `host ${room.host} has no room for this change of ${name}: it would need ${over.join('; ')}`, {
    hint: `the need counts every replica and the largest start-first rolling batch beside them (order: stop-first counts none); fewer replicas or lower limits (or an x-depad.resources budget), or make room on ${room.host} (depad ls --on-host ${room.host}); a deployment does not move between hosts; nothing was changed`,
    details: { host: room.host, need: { cpus: after.cpus, memoryBytes: after.memoryBytes }, room: { cpus: room.cpus, memoryBytes: room.memoryBytes } },
  });
}
