/**
 * Replacing one service's instance, the zero-downtime way:
 *   stateless: start new → wait ready → switch route → drain old → stop old
 *   stop-first (named volumes, or published host ports, which two instances cannot share): pause
 *   route → stop old → start new → wait ready → switch route (resumes) — new requests and
 *   connections to the route wait meanwhile instead of failing; the published ports answer
 *   nothing for that gap.
 * The old instance is only stopped here; the update removes it once every service has succeeded,
 * so `revertSwap` can bring it back.
 */
import type { ContainerPlan, ContainerState, ServicePlan } from '../engine/types.ts';
import type { DeploymentRecord, PortAssignment } from '../store/records.ts';
import { checkpoint, type OpContext } from './context.ts';
import { routedPort } from '../render/routes.ts';
import { waitReady } from './ready.ts';
import { publishRoutes } from './routing.ts';
import { waitFor } from './wait.ts';
import type { Companions } from './swap-companions.ts';

/** The routing state an update moves through: instance numbers and every port held meanwhile. */
export interface Transition {
  record: Pick<DeploymentRecord, 'name' | 'desired'>;
  instances: Record<string, number>;
  /** The current replicas of services with more than one (names.ts `currentInstances`). */
  replicas: Record<string, number[]>;
  ports: PortAssignment[];
  services: readonly ServicePlan[];
}

/** What the routes are published from while `t` is under way. */
export function routingOf(t: Transition): Pick<DeploymentRecord, 'name' | 'desired' | 'instances' | 'replicas' | 'ports'> {
  return { ...t.record, instances: t.instances, replicas: t.replicas, ports: t.ports };
}

/** One finished swap, enough to undo it. */
export interface Swap {
  service: string;
  oldInstance: number | undefined;
  old: ContainerState | undefined;
  newId: string;
  newInstance: number;
}

/** Replaces `service`'s current instance (`old`, may be absent) by a new one made from `plan`. */
export async function swapService(
  ctx: OpContext,
  t: Transition,
  plan: ContainerPlan,
  meta: ServicePlan,
  old: ContainerState | undefined,
  newInstance: number,
  timeoutMs: number,
  dependencies: ReadonlyMap<string, string>,
  /** Stop the old instance before starting the new one (default: when the service has named volumes). */
  stopFirst: boolean = meta.stateful,
  /** Services that join this one's namespaces, replaced with it (swap-companions.ts). */
  companions?: Companions,
  /** Why it goes stop-first, when not for its volumes or published ports. */
  stopFirstWhy?: string,
  /** Other services whose routes pause while it is swapped stop-first (a joiner serves its owner's route). */
  pauseAlso: readonly string[] = [],
): Promise<Swap> {
  const service = plan.service;
  const oldInstance = t.instances[service];
  const portOf = (instance: number) => routedPort(t, meta, instance);
  for (const [dep, { condition }] of Object.entries(plan.dependsOn)) {
    const depId = dependencies.get(dep);
    if (depId && condition === 'service_healthy') await waitFor(ctx, depId, dep, 'healthy', timeoutMs);
  }
  const stateful = stopFirst && old?.running === true;
  if (stateful) {
    const why = stopFirstWhy ?? (meta.stateful ? 'it has named volumes' : meta.fixedAddress ? 'its fixed address passes to the new instance' : 'its published ports pass to the new instance');
    const pause = [...(meta.route ? [service] : []), ...pauseAlso];
    if (pause.length > 0) {
      const what = pauseAlso.length === 0 ? `${service} (${why})` : `the route of ${pause.join(', ')} (${service}: ${why})`;
      ctx.progress({ step: 'pause', service, message: `pausing ${what}: new requests wait while it is swapped` });
      const until = Date.now() + meta.pauseTimeoutMs;
      await publishRoutes(ctx, routingOf(t), t.services, { paused: Object.fromEntries(pause.map((s) => [s, until])) });
    } else {
      ctx.progress({ step: 'stop-first', service, message: `replacing ${service} stop-first (${why})` });
    }
    await companions?.stopOld();
    ctx.progress({ step: 'stop', service, message: `stopping the old ${service} (${old.name})` });
    await ctx.engine.stopContainer(old.id, plan.body.StopTimeout);
  }
  ctx.progress({ step: 'start', service, message: `starting the new ${service} (${plan.name})` });
  const newId = await ctx.engine.createContainer(plan);
  try {
    checkpoint(ctx, `update:created:${service}`);
    await ctx.engine.startContainer(newId);
    await companions?.startNew();
    await waitReady(ctx, newId, meta, portOf(newInstance), timeoutMs);
    await companions?.waitNew(timeoutMs);
  } catch (error) {
    ctx.progress({ step: 'undo', service, message: `the new ${service} failed; removing it, the old one keeps serving` });
    await companions?.removeNew();
    await ctx.engine.removeContainer(newId);
    if (stateful) {
      await ctx.engine.startContainer(old.id);
      await companions?.startOld();
      await publishRoutes(ctx, routingOf(t), t.services);
    }
    throw error;
  }
  t.instances[service] = newInstance;
  companions?.switched();
  await publishRoutes(ctx, routingOf(t), t.services);
  if (meta.route) ctx.progress({ step: 'switch', service, message: `route ${service} → ${plan.name}` });
  checkpoint(ctx, `update:switched:${service}`);
  if (old?.running && !stateful) {
    const port = oldInstance === undefined ? undefined : portOf(oldInstance);
    if (port !== undefined) {
      const drained = await ctx.routes.drain({ host: meta.upstreamHost, port }, meta.drainTimeoutMs);
      ctx.progress({
        step: 'drain',
        service,
        message: drained.drained ? `drained the old ${service} in ${drained.waitedMs} ms` : `drain timed out; closed ${drained.remaining} open connections`,
      });
    }
    await companions?.stopOld();
    ctx.progress({ step: 'stop', service, message: `stopping the old ${service} (${old.name})` });
    await ctx.engine.stopContainer(old.id, plan.body.StopTimeout);
  }
  return { service, oldInstance, old, newId, newInstance };
}

/** Undoes a finished swap: the old instance back (started, routed), the new one removed. */
export async function revertSwap(ctx: OpContext, t: Transition, swap: Swap, meta: ServicePlan, timeoutMs: number): Promise<void> {
  ctx.progress({ step: 'undo', service: swap.service, message: `putting the old ${swap.service} back` });
  // A fixed address is the new instance's until it is gone: the old one cannot start beside it.
  if (meta.fixedAddress) await ctx.engine.removeContainer(swap.newId);
  if (swap.old && swap.oldInstance !== undefined) {
    await ctx.engine.startContainer(swap.old.id);
    await waitReady(ctx, swap.old.id, meta, routedPort(t, meta, swap.oldInstance), timeoutMs);
    t.instances[swap.service] = swap.oldInstance;
  } else {
    delete t.instances[swap.service];
  }
  await publishRoutes(ctx, routingOf(t), t.services);
  if (!meta.fixedAddress) await ctx.engine.removeContainer(swap.newId);
}
