/** Keeping the proxy's routes of a deployment in line with its record. */
import { renderRoutes } from '../render/routes.ts';
import type { ServicePlan } from '../engine/types.ts';
import type { DeploymentRecord } from '../store/records.ts';
import type { OpContext } from './context.ts';
import { routedPort } from '../render/routes.ts';
import { listInstances } from './materialize.ts';
import { currentInstances } from '../render/names.ts';
import type { StoredPlan } from './root-dir.ts';

/**
 * Sends the deployment's routes to the proxy (or its snapshot when none runs). By default every
 * service takes traffic when the deployment should be running; `live` and `paused` let stop,
 * start and update say otherwise, and `record` may carry instance numbers and ports an update
 * has not committed yet.
 */
export async function publishRoutes(
  ctx: OpContext,
  record: Pick<DeploymentRecord, 'name' | 'instances' | 'replicas' | 'ports' | 'desired'>,
  services: readonly ServicePlan[],
  options: { live?: (service: string, container: string) => boolean; paused?: Record<string, number> } = {},
): Promise<void> {
  const routes = renderRoutes(services, {
    name: record.name,
    instances: record.instances,
    ...(record.replicas ? { replicas: record.replicas } : {}),
    ports: record.ports,
    live: options.live ?? (() => record.desired === 'running'),
    ...(options.paused ? { paused: options.paused } : {}),
  });
  if (routes.length === 0 && !services.some((s) => s.route)) {
    // Nothing is exposed; still clear routes an earlier revision may have had.
    await ctx.routes.removeDeployment(record.name);
    return;
  }
  await ctx.routes.setDeploymentRoutes(record.name, routes);
}

/**
 * Publishes routes from what actually runs: a service takes traffic when its current instance is
 * running, unless it is in `leaving` (about to be stopped). Then drains the leaving ones.
 */
export async function publishLive(
  ctx: OpContext,
  record: DeploymentRecord,
  plan: StoredPlan,
  leaving: readonly string[] = [],
): Promise<void> {
  const running = new Set((await listInstances(ctx, record)).filter((c) => c.running).map((c) => c.name));
  const live = (service: string, container: string) => !leaving.includes(service) && running.has(container);
  await publishRoutes(ctx, record, plan.services, { live });
  for (const service of plan.services.filter((s) => s.route && leaving.includes(s.name))) {
    const ports = currentInstances(record, service.name).map((n) => routedPort(record, service, n)).filter((p): p is number => p !== undefined);
    await Promise.all(ports.map((port) => ctx.routes.drain({ host: service.upstreamHost, port }, service.drainTimeoutMs)));
  }
}
