/**
 * Pure rules over routes, shared by the proxy process and the CLI's offline client: validating a
 * deployment's routes as received (from JSON), checking them against the other deployments'
 * routes, and computing the next snapshot. Nothing here does I/O; the results are new values.
 */
import { DepadError } from '../src/errors.ts';
import type { Route, RouteSnapshot, Upstream } from './types.ts';

/** A snapshot with no routes, the state before the first change. */
export const EMPTY_SNAPSHOT: RouteSnapshot = Object.freeze({ version: 0, routes: Object.freeze([]) as unknown as Route[] });

/** Deployment names as depad accepts them (the same pattern as src/deploy/resolve.ts, kept here so the proxy loads nothing of depad's state code). */
const DEPLOYMENT_NAME = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;
/** A hostname: labels of letters, digits, `-` and `_`, dot separated (lowercased first). */
export const HOSTNAME = /^(?=.{1,253}$)[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?)*\.?$/;

function bad(message: string): DepadError {
  return new DepadError('DEPAD_USAGE', message);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isPort(value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= 1 && value <= 65535;
}

/** Throws DEPAD_NAME_INVALID unless `name` is a valid deployment name. */
export function assertDeploymentName(name: string): void {
  if (!DEPLOYMENT_NAME.test(name)) throw new DepadError('DEPAD_NAME_INVALID', `invalid deployment name ${JSON.stringify(name)}`);
}

/** Lowercases a Host header value and strips its port (`Example.com:8080` → `example.com`, `[::1]:80` → `[::1]`). */
export function normalizeHost(value: string): string {
  let host = value;
  if (host.charCodeAt(0) === 91 /* [ */) {
    const end = host.indexOf(']');
    host = end === -1 ? host : host.slice(0, end + 1);
  } else {
    const colon = host.indexOf(':');
    if (colon !== -1) host = host.slice(0, colon);
  }
  return host.toLowerCase();
}

function parseUpstream(value: unknown, where: string): Upstream {
  if (!isRecord(value)) throw bad(`${where}: an upstream must be an object {host, port, instance}`);
  const { host, port, instance } = value;
  if (typeof host !== 'string' || host === '') throw bad(`${where}.host: must be a non-empty string`);
  if (!isPort(port)) throw bad(`${where}.port: must be an integer from 1 to 65535`);
  if (instance !== undefined && typeof instance !== 'string') throw bad(`${where}.instance: must be a string`);
  return { host, port, instance: instance ?? '' };
}

/** Validates one route as received; returns a clean copy (hosts lowercased, unknown fields dropped). */
export function parseRoute(value: unknown, where: string): Route {
  if (!isRecord(value)) throw bad(`${where}: a route must be an object`);
  const { id, deployment, service, kind, hosts, listenPort, upstreams, pausedUntil, https, affinity } = value;
  if (typeof id !== 'string' || id === '') throw bad(`${where}.id: must be a non-empty string`);
  if (typeof deployment !== 'string') throw bad(`${where}.deployment: must be a string`);
  if (typeof service !== 'string' || service === '') throw bad(`${where}.service: must be a non-empty string`);
  if (kind !== 'http' && kind !== 'tcp') throw bad(`${where}.kind: must be "http" or "tcp"`);
  const hostList = hosts ?? [];
  if (!Array.isArray(hostList) || !hostList.every((h): h is string => typeof h === 'string')) {
    throw bad(`${where}.hosts: must be an array of strings`);
  }
  if (!Array.isArray(upstreams)) throw bad(`${where}.upstreams: must be an array`);
  if (pausedUntil !== undefined && (typeof pausedUntil !== 'number' || !Number.isFinite(pausedUntil))) {
    throw bad(`${where}.pausedUntil: must be a number (ms since epoch)`);
  }
  const route: Route = {
    id,
    deployment,
    service,
    kind,
    hosts: [],
    upstreams: upstreams.map((u, i) => parseUpstream(u, `${where}.upstreams[${i}]`)),
  };
  if (https !== undefined) {
    if (https !== 'redirect' && https !== 'off') throw bad(`${where}.https: must be "redirect" or "off"`);
    if (kind !== 'http') throw bad(`${where}.https: only http routes are served over HTTPS`);
    route.https = https;
  }
  if (affinity !== undefined) {
    if (affinity !== 'cookie') throw bad(`${where}.affinity: must be "cookie"`);
    if (kind !== 'http') throw bad(`${where}.affinity: only http routes have cookie affinity`);
    route.affinity = affinity;
  }
  if (kind === 'http') {
    if (listenPort !== undefined) throw bad(`${where}.listenPort: only tcp routes have a listen port`);
    if (hostList.length === 0) throw bad(`${where}.hosts: an http route needs at least one host`);
    for (const h of hostList) {
      const host = h.toLowerCase();
      if (!HOSTNAME.test(host)) throw bad(`${where}.hosts: ${JSON.stringify(h)} is not a hostname (no scheme, port or path)`);
      if (!route.hosts.includes(host)) route.hosts.push(host);
    }
  } else {
    if (hostList.length > 0) throw bad(`${where}.hosts: a tcp route is matched by its listen port, not by host`);
    if (!isPort(listenPort)) throw bad(`${where}.listenPort: must be an integer from 1 to 65535`);
    route.listenPort = listenPort;
  }
  if (pausedUntil !== undefined) route.pausedUntil = pausedUntil;
  return route;
}

/**
 * Validates the body of `PUT /deployments/:name` (`{ routes: Route[] }`): every route well
 * formed, belonging to `name`, ids unique, no host or listen port used twice. Throws DEPAD_USAGE.
 */
export function parseDeploymentRoutes(name: string, body: unknown): Route[] {
  assertDeploymentName(name);
  if (!isRecord(body) || !Array.isArray(body.routes)) throw bad('the body must be {"routes": [...]}');
  const routes = body.routes.map((r, i) => parseRoute(r, `routes[${i}]`));
  const ids = new Set<string>();
  const hosts = new Set<string>();
  const ports = new Set<number>();
  for (const [i, route] of routes.entries()) {
    if (route.deployment !== name) {
      throw bad(`routes[${i}].deployment: ${JSON.stringify(route.deployment)} does not match the deployment ${JSON.stringify(name)}`);
    }
    if (ids.has(route.id)) throw bad(`routes[${i}].id: ${JSON.stringify(route.id)} is used twice`);
    ids.add(route.id);
    for (const host of route.hosts) {
      if (hosts.has(host)) throw bad(`routes[${i}].hosts: ${host} is used by two routes`);
      hosts.add(host);
    }
    if (route.listenPort !== undefined) {
      if (ports.has(route.listenPort)) throw bad(`routes[${i}].listenPort: ${route.listenPort} is used by two routes`);
      ports.add(route.listenPort);
    }
  }
  return routes;
}

/**
 * The snapshot after replacing every route of deployment `name` with `routes` (already parsed).
 * Throws DEPAD_NAME_TAKEN (409) when a host, or DEPAD_PORT_IN_USE (409) when a listen port, or
 * DEPAD_NAME_TAKEN when a route id, belongs to another deployment's route.
 */
export function replaceDeployment(current: RouteSnapshot, name: string, routes: readonly Route[]): RouteSnapshot {
  const others = current.routes.filter((r) => r.deployment !== name);
  const hostOwner = new Map<string, Route>();
  const portOwner = new Map<number, Route>();
  const idOwner = new Map<string, Route>();
  for (const r of others) {
    for (const h of r.hosts) hostOwner.set(h, r);
    if (r.listenPort !== undefined) portOwner.set(r.listenPort, r);
    idOwner.set(r.id, r);
  }
  for (const route of routes) {
    const byId = idOwner.get(route.id);
    if (byId) {
      throw new DepadError('DEPAD_NAME_TAKEN', `route id ${route.id} belongs to deployment ${byId.deployment}`, {
        details: { id: route.id, deployment: byId.deployment },
      });
    }
    for (const host of route.hosts) {
      const owner = hostOwner.get(host);
      if (owner) {
        throw new DepadError('DEPAD_NAME_TAKEN', `host ${host} is already routed to deployment ${owner.deployment} (${owner.id})`, {
          hint: 'choose another host name, or remove it from the other deployment first',
          details: { host, deployment: owner.deployment, route: owner.id },
        });
      }
    }
    if (route.listenPort !== undefined) {
      const owner = portOwner.get(route.listenPort);
      if (owner) {
        throw new DepadError('DEPAD_PORT_IN_USE', `listen port ${route.listenPort} is already used by deployment ${owner.deployment} (${owner.id})`, {
          details: { port: route.listenPort, deployment: owner.deployment, route: owner.id },
        });
      }
    }
  }
  return { version: current.version + 1, routes: [...others, ...routes] };
}

/** The snapshot without deployment `name`'s routes (the same version + 1 even if it had none). */
export function removeDeployment(current: RouteSnapshot, name: string): RouteSnapshot {
  return { version: current.version + 1, routes: current.routes.filter((r) => r.deployment !== name) };
}

/** Validates a whole snapshot (as loaded from disk); throws DEPAD_USAGE on the first problem. */
export function parseSnapshot(value: unknown): RouteSnapshot {
  if (!isRecord(value) || !Array.isArray(value.routes)) throw bad('a snapshot must be {"version": n, "routes": [...]}');
  const { version } = value;
  if (typeof version !== 'number' || !Number.isInteger(version) || version < 0) throw bad('snapshot version must be a non-negative integer');
  let snapshot: RouteSnapshot = { version: 0, routes: [] };
  const byDeployment = new Map<string, unknown[]>();
  for (const r of value.routes) {
    const deployment = isRecord(r) && typeof r.deployment === 'string' ? r.deployment : '';
    byDeployment.set(deployment, [...(byDeployment.get(deployment) ?? []), r]);
  }
  for (const [name, routes] of byDeployment) {
    snapshot = replaceDeployment(snapshot, name, parseDeploymentRoutes(name, { routes }));
  }
  return { version, routes: snapshot.routes };
}
