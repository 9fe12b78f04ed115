/**
 * Checks a create or an update makes before it makes anything (before images are checked and
 * ports registered): the hostnames it would route are not another deployment's, and (create) no
 * engine object already has one of its names. Without them a clash was found only when routes
 * were published, after every service had started and passed its health checks. Host ports are
 * checked where they are reserved (port-assign.ts), also before anything is made.
 */
import type { DeploymentSpec } from '../config/spec.ts';
import { ConfigError, DepadError } from '../errors.ts';
import { LABELS } from '../engine/types.ts';
import type { SourcePosition } from '../errors.ts';
import { render } from '../render/render.ts';
import type { Rendered, RenderIdentity } from '../render/render.ts';
import { baseDomain } from '../render/routes.ts';
import type { OpContext } from './context.ts';
import { placeholderPorts, withSpecReplicas } from './port-plan.ts';
import { readPlanForView } from './root-dir.ts';

/** Who routes a hostname (`host`: the cluster host that runs it; a peer table names no deployment). */
export interface RouteOwner {
  deployment?: string;
  service?: string;
  host?: string;
}

/**
 * Fails with DEPAD_NAME_TAKEN, naming the other deployment and where the file asks for the
 * hostname, when deployment `name` under `spec` would route a hostname that another deployment
 * of this home routes (by its current revision's plan, or in the proxy's route table); with
 * DEPAD_CONFIG_INVALID when two of its own services ask for the same one.
 */
export async function assertRoutesFree(ctx: OpContext, name: string, spec: DeploymentSpec, options: { peers?: boolean } = {}): Promise<void> {
  if (routedHosts(spec, name).length === 0) return;
  assertHostsUnowned(name, spec, await routedElsewhere(ctx, name, options.peers !== false));
}

/**
 * The check of `assertRoutesFree` against a given table of hostname owners (the cluster manager's,
 * from its hosts' heartbeats): DEPAD_NAME_TAKEN naming the owner (and its host), or
 * DEPAD_CONFIG_INVALID when two of the spec's own services ask for one hostname.
 */
export function assertHostsUnowned(name: string, spec: DeploymentSpec, owners: ReadonlyMap<string, RouteOwner>): void {
  const wanted = routedHosts(spec, name);
  const mine = new Map<string, string>();
  for (const w of wanted) {
    const first = mine.get(w.host);
    if (first !== undefined && first !== w.service) {
      throw new ConfigError(spec.file, [{ ...where(spec, w), message: `host ${w.host} is routed by services ${first} and ${w.service}: one host, one service` }]);
    }
    mine.set(w.host, w.service);
  }
  for (const w of wanted) {
    const owner = owners.get(w.host);
    if (owner === undefined || owner.deployment === name) continue;
    const at = where(spec, w);
    const who = owner.deployment === undefined ? 'a deployment' : `deployment ${owner.deployment}`;
    const whose = `${who}${owner.service === undefined ? '' : ` (service ${owner.service})`}${owner.host === undefined ? '' : ` on host ${owner.host}`}`;
    const place = at.line > 0 ? `${at.file}:${at.line}:${at.column} ${at.path}` : `${spec.file} (as stored with the revision) ${at.path}`;
    throw new DepadError('DEPAD_NAME_TAKEN', `${place}: host ${w.host} is already routed to ${whose}`, {
      hint: `choose another hostname, or take it off ${owner.deployment ?? 'that deployment'} first (depad update ${owner.deployment ?? '…'} -f …${owner.deployment === undefined && owner.host !== undefined ? `; which deployment: depad ls --on-host ${owner.host} through the cluster manager` : ''}); nothing was made`,
      details: { host: w.host, ...(owner.deployment === undefined ? {} : { deployment: owner.deployment }), ...(owner.service === undefined ? {} : { service: owner.service }), ...(owner.host === undefined ? {} : { clusterHost: owner.host }) },
    });
  }
}

/**
 * Fails with DEPAD_ENGINE_CONFLICT when a network, volume or container the create would make
 * exists already and is not its own (a volume kept by `destroy --keep-volumes` for this name is).
 */
export async function assertEngineNamesFree(ctx: OpContext, name: string, plan: Pick<Rendered, 'networks' | 'volumes' | 'containers'>): Promise<void> {
  const taken = (what: string, object: string, remove: string) =>
    new DepadError('DEPAD_ENGINE_CONFLICT', `${what} ${object} exists and does not belong to a deployment ${name} of this home`, {
      hint: `if it is left from a deployment this home no longer knows, depad doctor --fix removes it; else remove it (${remove}) or choose another name; nothing was made`,
    });
  for (const n of plan.networks) if ((await ctx.engine.listNetworks({}, n.name)).length > 0) throw taken('network', n.name, `docker network rm ${n.name}`);
  for (const v of plan.volumes) {
    const labels = await ctx.engine.volumeLabels(v.name);
    if (labels !== undefined && labels[LABELS.deployment] !== name) throw taken('volume', v.name, `docker volume rm ${v.name}`);
  }
  for (const c of plan.containers) if ((await ctx.engine.inspectContainer(c.name)) !== undefined) throw taken('container', c.name, `docker rm ${c.name}`);
}

/** A hostname the spec routes, the service and the key that asks for it. */
interface Wanted {
  host: string;
  service: string;
  path: string;
}

/** The plan deployment `name` would have under `spec`, with host port 0 for every published port (names, routes). */
export function placeholderPlan(spec: DeploymentSpec, who: Omit<RenderIdentity, 'domain' | 'revision'>): Rendered {
  const holder = withSpecReplicas(spec, who);
  return render(spec, { ...who, ...holder, revision: 1, domain: baseDomain(spec) }, placeholderPorts(spec, holder));
}

/** The hostnames deployment `name` would route under `spec`, sorted, once each. */
export function routedHostnames(spec: DeploymentSpec, name: string): string[] {
  return [...new Set(routedHosts(spec, name).map((w) => w.host))].sort();
}

/** Every hostname deployment `name` would route under `spec` (as render makes them). */
function routedHosts(spec: DeploymentSpec, name: string): Wanted[] {
  const plan = placeholderPlan(spec, { id: '0'.repeat(32), name, rootDir: '/' });
  return plan.services.flatMap((s) =>
    (s.route?.hosts ?? []).map((host) => {
      const i = spec.services[s.name]?.depad.route?.hostnames.indexOf(host) ?? -1;
      return { host, service: s.name, path: `services.${s.name}.x-depad.${i >= 0 ? 'hostnames' : 'expose'}` };
    }),
  );
}

/** Where the file asks for `w.host`: the hostnames entry that names it, else the key; line 0 when unknown (a stored revision). */
function where(spec: DeploymentSpec, w: Wanted): SourcePosition & { path: string } {
  const lines = spec.source.split('\n');
  if (w.path.endsWith('.hostnames')) {
    for (let i = 0; ; i++) {
      const pos = spec.positions.get(`${w.path}[${i}]`);
      if (pos === undefined) break;
      const text = (lines[pos.line - 1] ?? '').slice(pos.column - 1).replace(/^["']/, '').toLowerCase();
      if (text.startsWith(w.host)) return { ...pos, path: `${w.path}[${i}]` };
    }
  }
  const pos = spec.positions.get(w.path) ?? spec.positions.get(`services.${w.service}`);
  return pos ? { ...pos, path: w.path } : { file: spec.file, line: 0, column: 0, path: w.path };
}

/** Hostnames routed by deployments of this home other than `name`: their plans, the proxy's table and (`peers`) its peer table. */
async function routedElsewhere(ctx: OpContext, name: string, peers: boolean): Promise<Map<string, RouteOwner>> {
  const owners = new Map<string, RouteOwner>();
  for (const record of await ctx.store.listDeployments()) {
    if (record.name === name) continue;
    const plan = await readPlanForView(record.rootDir, record.revision).catch(() => undefined);
    for (const s of plan?.services ?? []) for (const host of s.route?.hosts ?? []) owners.set(host, { deployment: record.name, service: s.name });
  }
  try {
    for (const r of (await ctx.routes.routes?.())?.routes ?? []) {
      if (r.deployment === name) continue;
      for (const host of r.hosts) if (!owners.has(host)) owners.set(host, { deployment: r.deployment, service: r.service });
    }
    // In a cluster, another host's hostnames are taken too: every host's proxy serves them all (cluster/peers.ts).
    if (peers) for (const [host, peer] of Object.entries((await ctx.routes.peerRoutes?.()) ?? {})) if (!owners.has(host)) owners.set(host, { host: peer });
  } catch (error) {
    ctx.log.debug({ error: (error as Error).message }, 'the route table could not be read for the hostname check; publishing the routes checks again');
  }
  return owners;
}
