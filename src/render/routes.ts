/** The proxy routes of a deployment, from its stored plan: one per service it exposes. */
import type { DeploymentSpec } from '../config/spec.ts';
import type { Route } from '../../proxy/types.ts';
import type { ServicePlan } from '../engine/types.ts';
import type { PortAssignment } from '../store/records.ts';
import { containerName, currentInstances, type InstanceHolder } from './names.ts';

/** What routes depend on besides the plan. */
export interface RouteContext extends InstanceHolder {
  name: string;
  instances: Readonly<Record<string, number>>;
  ports: readonly PortAssignment[];
  /** Whether `service`'s current instance `container` takes traffic (the others get no upstream: 503 when none does, or held while paused). */
  live: (service: string, container: string) => boolean;
  /** service → pause deadline (ms since epoch) for services being swapped. */
  paused?: Readonly<Record<string, number>>;
}

/** The base domain for a deployment: its config's, else DEPAD_BASE_DOMAIN, else `localhost`. */
export function baseDomain(spec: DeploymentSpec, env: NodeJS.ProcessEnv = process.env): string {
  return spec.depad.domain ?? env.DEPAD_BASE_DOMAIN ?? 'localhost';
}

/** Renders the routes; deterministic, in the plan's service order. */
export function renderRoutes(services: readonly ServicePlan[], ctx: RouteContext): Route[] {
  const routes: Route[] = [];
  for (const service of services) {
    if (!service.route) continue;
    // Every current replica that is live is an upstream of the route.
    const upstreams = currentInstances(ctx, service.name).flatMap((instance) => {
      const port = routedPort(ctx, service, instance);
      const container = containerName(ctx.name, service.name, instance);
      return port !== undefined && ctx.live(service.name, container) ? [{ host: service.upstreamHost, port, instance: container }] : [];
    });
    const paused = ctx.paused?.[service.name];
    const base = {
      id: `${ctx.name}/${service.name}`,
      deployment: ctx.name,
      service: service.name,
      kind: service.route.kind,
      upstreams,
      ...(paused ? { pausedUntil: paused } : {}),
    };
    const listen = ctx.ports.find((p) => p.service === service.name && p.role === 'route');
    routes.push(service.route.kind === 'http' ? { ...base, hosts: service.route.hosts, ...(service.route.https ? { https: service.route.https } : {}), ...(service.route.affinity ? { affinity: service.route.affinity } : {}) } : { ...base, hosts: [], ...(listen ? { listenPort: listen.host } : {}) });
  }
  return routes;
}

/**
 * The host port published for the routed container port of `service`'s instance `instance`
 * (default: its current instance), or undefined when the service has no route or port.
 */
export function routedPort(
  holder: { ports: readonly PortAssignment[] } & InstanceHolder,
  service: ServicePlan,
  instance: number = currentInstances(holder, service.name)[0] ?? 1,
): number | undefined {
  const target = service.route?.port;
  if (target === undefined) return undefined;
  const mine = holder.ports.filter((p) => p.service === service.name && p.target === target);
  // A route whose port is fixed by the file (x-depad.host_ports: fixed) forwards to that published port.
  return (mine.find((p) => p.role === 'instance' && p.instance === instance) ?? mine.find((p) => p.role === 'published'))?.host;
}

/** The ports `service`'s instance `instance` (its replica `replica`, default 1) binds: that replica's published ports and that instance's own. */
export function boundPorts<P extends Pick<PortAssignment, 'service' | 'role' | 'instance' | 'replica'>>(ports: readonly P[], service: string, instance: number | undefined, replica = 1): P[] {
  return ports.filter((p) => p.service === service && ((p.role === 'published' && (p.replica ?? 1) === replica) || (p.role === 'instance' && p.instance === instance)));
}
