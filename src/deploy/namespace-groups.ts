/**
 * Services that share namespaces (`network_mode`, `ipc`, `pid: service:<name>`): read from a
 * rendered plan, where a joining container's mode is `container:<owner's container name>`.
 * The owner's container is replaced on update, restarted or stopped; its joiners must follow:
 *   - update: a joiner of a replaced service is replaced too, after it (diff.ts, update.ts);
 *   - stop and restart of a service include its joiners; start includes what it joins (lifecycle.ts);
 *   - the agent restarts a running joiner whose owner started after it (agent/desired.ts).
 */
import type { ContainerPlan } from '../engine/types.ts';

/** A plan as far as these rules need it. */
export interface JoinPlan {
  readonly containers: readonly Pick<ContainerPlan, 'name' | 'service' | 'body'>[];
}

/** The owner container names `c` joins (its network, IPC and PID modes of the form `container:NAME`). */
export function joinedContainers(c: Pick<ContainerPlan, 'body'>): string[] {
  const h = c.body.HostConfig;
  return [h.NetworkMode, h.IpcMode, h.PidMode].filter((m): m is string => m?.startsWith('container:') === true).map((m) => m.slice('container:'.length));
}

/** The services whose namespaces `service` joins, directly. */
export function ownersOf(plan: JoinPlan, service: string): string[] {
  const c = plan.containers.find((x) => x.service === service);
  if (c === undefined) return [];
  const names = joinedContainers(c);
  return [...new Set(plan.containers.filter((x) => names.includes(x.name)).map((x) => x.service))];
}

/** The services that join `service`'s namespaces, directly. */
export function joinersOf(plan: JoinPlan, service: string): string[] {
  return plan.containers.filter((x) => x.service !== service && ownersOf(plan, x.service).includes(service)).map((x) => x.service);
}

/** `services` with every service that joins one of them, transitively (in no particular order). */
export function withJoiners(plan: JoinPlan, services: readonly string[]): string[] {
  return closure(services, (s) => joinersOf(plan, s));
}

/** `services` with every service one of them joins, transitively (in no particular order). */
export function withOwners(plan: JoinPlan, services: readonly string[]): string[] {
  return closure(services, (s) => ownersOf(plan, s));
}

function closure(start: readonly string[], next: (s: string) => string[]): string[] {
  const out = new Set(start);
  const todo = [...start];
  for (let s = todo.pop(); s !== undefined; s = todo.pop()) {
    for (const n of next(s)) if (!out.has(n)) (out.add(n), todo.push(n));
  }
  return [...out];
}

/** How an update replaces one changed service that shares namespaces. */
export interface GroupRole {
  /** Set: it joins a replaced service, which carries it along (the update's loop skips it). */
  readonly carriedBy?: string;
  /** The changed services that join it, in `order`: started right after its new container, retired with it. */
  readonly companions: readonly string[];
  /** It joins a service that stays: its new instance shares that namespace with the old one, so it is replaced stop-first. */
  readonly joinsKept: boolean;
}

/** The role of `service` in the update that replaces `changed` (`order`: the plan's dependency order). */
export function groupRole(plan: JoinPlan & { readonly order: readonly string[] }, changed: readonly string[], service: string): GroupRole {
  const owners = withOwners(plan, [service]).filter((s) => s !== service);
  const carriedBy = plan.order.find((s) => owners.includes(s) && changed.includes(s));
  if (carriedBy !== undefined) return { carriedBy, companions: [], joinsKept: false };
  const joiners = withJoiners(plan, [service]);
  return { companions: plan.order.filter((s) => s !== service && joiners.includes(s) && changed.includes(s)), joinsKept: owners.length > 0 };
}
