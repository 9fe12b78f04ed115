/**
 * What an update would change, per service: compares the rendered container plans of two
 * revisions, ignoring what differs between instances anyway (name, host ports, revision and
 * instance labels). Environment values are never shown, only the names of changed variables.
 */
import { LABELS, type ContainerPlan, type ServicePlan } from '../engine/types.ts';
import { isSecretSource } from '../render/secrets.ts';
import type { StoredPlan } from './root-dir.ts';
import type { DeploymentSpec } from '../config/spec.ts';
import { COMPOSE_KEY_OF } from '../render/engine-fields.ts';
import { ownersOf } from './namespace-groups.ts';

/** One service's change. */
export interface ServiceChange {
  service: string;
  /** `changed` needs a new instance; `routing` changes only the proxy route or update settings. */
  kind: 'added' | 'removed' | 'changed' | 'routing' | 'unchanged';
  details: string[];
  /** Set when its replica count changes; `only`: nothing else of its containers does (a scale: the replicas that stay are kept). */
  replicas?: { from: number; to: number; only: boolean };
}

/** The whole difference between two plans. */
export interface PlanDiff {
  services: ServiceChange[];
  networks: { added: string[]; removed: string[] };
  volumes: { added: string[]; removed: string[] };
  /** True when nothing at all differs. */
  empty: boolean;
}

/** Image IDs by service, to notice a tag that now points at another image. */
export type ImageIds = Readonly<Record<string, string | undefined>>;

/** Compares the current plan with a candidate one. */
export function diffPlans(current: StoredPlan, next: StoredPlan, currentImages: ImageIds, nextImages: ImageIds): PlanDiff {
  const services: ServiceChange[] = [];
  const names = [...new Set([...next.order, ...current.order])];
  for (const service of names) {
    const b = next.containers.find((c) => c.service === service);
    // Replicas held on an older container by a rolling update (roll-holds.ts) differ from the others: any that differs counts.
    const olds = current.containers.filter((c) => c.service === service);
    const differing = b ? olds.filter((c) => containerDetails(c, b).length > 0) : [];
    const a = differing[0] ?? olds[0];
    const count = (plan: StoredPlan) => plan.containers.filter((c) => c.service === service).length;
    if (!current.order.includes(service)) services.push({ service, kind: 'added', details: [b ? `image ${b.body.Image}` : 'replicas: 0'] });
    else if (!next.order.includes(service)) services.push({ service, kind: 'removed', details: [] });
    else if (!a || !b) {
      // One side runs no container (replicas: 0): a scale, from or to nothing; there is nothing to compare.
      const from = count(current);
      const to = count(next);
      const meta = metaDetails(current.services.find((s) => s.name === service), next.services.find((s) => s.name === service));
      const scaled = from !== to ? { replicas: { from, to, only: true } } : {};
      services.push({ service, kind: from !== to ? 'changed' : meta.length ? 'routing' : 'unchanged', details: [...(from !== to ? [`replicas ${from} → ${to}`] : []), ...meta], ...scaled });
    } else {
      const details = containerDetails(a, b);
      if (differing.length > 0 && differing.length < olds.length) details.unshift(`${differing.length} of ${olds.length} replicas still run an older container (their rolling update failed): the service rolls again`);
      const ia = currentImages[service];
      const ib = nextImages[service];
      if (a.body.Image === b.body.Image && ia && ib && ia !== ib) details.unshift(`image ${b.body.Image} now points at ${short(ib)} (was ${short(ia)})`);
      // Only the replica count changes: a scale (the replicas that stay are kept).
      const from = count(current);
      const to = count(next);
      const scaled = from !== to ? { from, to, only: details.length === 0 } : undefined;
      if (scaled) details.push(`replicas ${from} → ${to}${scaled.only ? ' (the others stay)' : ''}`);
      const meta = metaDetails(current.services.find((s) => s.name === service), next.services.find((s) => s.name === service));
      services.push({ service, kind: details.length ? 'changed' : meta.length ? 'routing' : 'unchanged', details: [...details, ...meta], ...(scaled ? { replicas: scaled } : {}) });
    }
  }
  // A service that joins a replaced service's namespaces is replaced with it (namespace-groups.ts).
  for (let grew = true; grew; ) {
    grew = false;
    for (const change of services) {
      if (change.kind !== 'unchanged' && change.kind !== 'routing') continue;
      const owner = ownersOf(next, change.service).find((o) => services.some((x) => x.service === o && (x.kind === 'changed' || x.kind === 'added')));
      if (owner === undefined) continue;
      change.kind = 'changed';
      change.details.unshift(`replaced with ${owner}, whose namespaces it shares`);
      grew = true;
    }
  }
  const keys = (plan: StoredPlan, kind: 'networks' | 'volumes') => plan[kind].map((x) => x.key);
  const delta = (kind: 'networks' | 'volumes') => ({
    added: keys(next, kind).filter((k) => !keys(current, kind).includes(k)),
    removed: keys(current, kind).filter((k) => !keys(next, kind).includes(k)),
  });
  const networks = delta('networks');
  const volumes = delta('volumes');
  const empty =
    services.every((s) => s.kind === 'unchanged') && !networks.added.length && !networks.removed.length && !volumes.added.length && !volumes.removed.length;
  return { services, networks, volumes, empty };
}

/**
 * The comparable form of a container plan: instance-specific fields dropped, and the home label
 * (instances made before depad labelled its home lack it; that alone is no change).
 */
function comparable(c: ContainerPlan): Record<string, unknown> {
  const { [LABELS.revision]: _r, [LABELS.instance]: _i, [LABELS.replica]: _p, [LABELS.home]: _h, ...labels } = c.body.Labels;
  const { PortBindings, ...host } = c.body.HostConfig;
  return {
    image: c.body.Image,
    command: c.body.Cmd,
    entrypoint: c.body.Entrypoint,
    ports: Object.keys(PortBindings).sort(),
    exposed: Object.keys(c.body.ExposedPorts).sort(),
    user: c.body.User,
    working_dir: c.body.WorkingDir,
    stop_signal: c.body.StopSignal,
    stop_grace_period: c.body.StopTimeout,
    healthcheck: c.body.Healthcheck,
    mounts: host.Mounts.filter((m) => !isSecretSource(m.Source)),
    tmpfs: host.Tmpfs,
    restart: host.RestartPolicy,
    cpus: host.NanoCpus,
    memory: host.Memory,
    pids: host.PidsLimit,
    cap_add: host.CapAdd,
    cap_drop: host.CapDrop,
    extra_hosts: host.ExtraHosts,
    networks: c.endpoints,
    depends_on: c.dependsOn,
    labels,
    platform: c.platform,
    ...engineFields(c),
  };
}

const KNOWN_BODY = new Set(['Image', 'Cmd', 'Entrypoint', 'Env', 'Labels', 'ExposedPorts', 'User', 'WorkingDir', 'StopSignal', 'StopTimeout', 'Healthcheck', 'HostConfig']);
const KNOWN_HOST = new Set(['PortBindings', 'Mounts', 'Tmpfs', 'RestartPolicy', 'NanoCpus', 'Memory', 'PidsLimit', 'CapAdd', 'CapDrop', 'ExtraHosts', 'NetworkMode']);

/** The other Engine API fields of a plan (from compose keys such as shm_size, ulimits, logging), by field name. */
function engineFields(c: ContainerPlan): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const body = c.body as unknown as Record<string, unknown>;
  const host = c.body.HostConfig as unknown as Record<string, unknown>;
  for (const key of Object.keys(body)) if (!KNOWN_BODY.has(key)) out[COMPOSE_KEY_OF[key] ?? key] = body[key];
  for (const key of Object.keys(host)) {
    if (KNOWN_HOST.has(key)) continue;
    const name = COMPOSE_KEY_OF[key] ?? key;
    // Several fields make one key (blkio_config): compared together.
    out[name] = name === 'blkio_config' ? { ...(out[name] as object | undefined), [key]: host[key] } : host[key];
  }
  return out;
}

function containerDetails(a: ContainerPlan, b: ContainerPlan): string[] {
  const ca = comparable(a);
  const cb = comparable(b);
  const out: string[] = [];
  for (const key of [...new Set([...Object.keys(cb), ...Object.keys(ca)])]) {
    if (JSON.stringify(ca[key]) === JSON.stringify(cb[key])) continue;
    if (key === 'image') out.push(`image ${String(ca.image)} → ${String(cb.image)}`);
    else if (key === 'command' || key === 'entrypoint' || key === 'ports') out.push(`${key} ${JSON.stringify(ca[key] ?? null)} → ${JSON.stringify(cb[key] ?? null)}`);
    else out.push(`${key} changed`);
  }
  const env = (c: ContainerPlan) => new Map(c.body.Env.map((e) => [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)]));
  const ea = env(a);
  const eb = env(b);
  const added = [...eb.keys()].filter((k) => !ea.has(k));
  const removed = [...ea.keys()].filter((k) => !eb.has(k));
  const changed = [...eb.keys()].filter((k) => ea.has(k) && ea.get(k) !== eb.get(k));
  if (added.length) out.push(`environment added: ${added.join(', ')}`);
  if (removed.length) out.push(`environment removed: ${removed.join(', ')}`);
  if (changed.length) out.push(`environment changed: ${changed.join(', ')}`);
  // Secrets and configs by name only: never their values (nor the digests).
  const sa = a.secrets ?? {};
  const sb = b.secrets ?? {};
  for (const k of Object.keys(sb)) if (!(k in sa)) out.push(`${k} added`);
  for (const k of Object.keys(sa)) if (!(k in sb)) out.push(`${k} removed`);
  for (const k of Object.keys(sb)) if (k in sa && sa[k] !== sb[k]) out.push(`${k} changed`);
  return out;
}

function metaDetails(a: ServicePlan | undefined, b: ServicePlan | undefined): string[] {
  if (!a || !b) return [];
  const out: string[] = [];
  if (JSON.stringify(a.route) !== JSON.stringify(b.route)) out.push(`route ${describeRoute(a)} → ${describeRoute(b)}`);
  if (JSON.stringify(a.health) !== JSON.stringify(b.health)) out.push('health probe changed');
  if (a.drainTimeoutMs !== b.drainTimeoutMs || a.pauseTimeoutMs !== b.pauseTimeoutMs) out.push('drain or pause timeout changed');
  if (a.upstreamHost !== b.upstreamHost) out.push('host_ip changed');
  return out;
}

function describeRoute(s: ServicePlan): string {
  if (!s.route) return 'none';
  return s.route.kind === 'http' ? `http ${s.route.hosts.join(' ')} → :${s.route.port}${s.route.https ? ` (https: ${s.route.https})` : ''}${s.route.affinity ? ` (affinity: ${s.route.affinity})` : ''}` : `tcp → :${s.route.port}`;
}

function short(id: string): string {
  return id.replace(/^sha256:/, '').slice(0, 12);
}

/** The services an update starts new instances of (changed or added), and those it removes. */
export function serviceChanges(diff: PlanDiff): { changed: string[]; removed: string[] } {
  return {
    changed: diff.services.filter((s) => s.kind === 'changed' || s.kind === 'added').map((s) => s.service),
    removed: diff.services.filter((s) => s.kind === 'removed').map((s) => s.service),
  };
}

/**
 * `diff` with the services that run no container on either side (replicas: 0) marked changed when
 * their config differs between `before` and `after` (the plans hold no container to compare): the
 * update records it, so that a later scale starts what the file now says.
 */
export function withIdleChanges(diff: PlanDiff, current: StoredPlan, next: StoredPlan, before: DeploymentSpec, after: DeploymentSpec): PlanDiff {
  const runsNone = (plan: StoredPlan, service: string) => plan.order.includes(service) && !plan.containers.some((c) => c.service === service);
  const comparable = (spec: DeploymentSpec, service: string) => JSON.stringify(spec.services[service] ?? null);
  const services = diff.services.map((s) => {
    if ((s.kind !== 'unchanged' && s.kind !== 'routing') || !runsNone(current, s.service) || !runsNone(next, s.service)) return s;
    if (comparable(before, s.service) === comparable(after, s.service)) return s;
    return { ...s, kind: 'changed' as const, details: ['its config changed; it runs no container (replicas: 0), so a scale starts the new one', ...s.details] };
  });
  return services.some((s, i) => s !== diff.services[i]) ? { ...diff, services, empty: false } : diff;
}

/**
 * `diff` with the services whose `deploy.update_config` or `rollback_config` differs between
 * `before` and `after` (nothing a container or the proxy holds) marked `routing`: the update
 * records a revision with the new settings and starts nothing, so the next roll follows them.
 */
export function withRolloutChanges(diff: PlanDiff, before: DeploymentSpec, after: DeploymentSpec): PlanDiff {
  const rollout = (spec: DeploymentSpec, service: string) => JSON.stringify(spec.services[service]?.rollout ?? null);
  const services = diff.services.map((s) => {
    if (s.kind === 'added' || s.kind === 'removed' || before.services[s.service] === undefined || rollout(before, s.service) === rollout(after, s.service)) return s;
    return { ...s, kind: s.kind === 'unchanged' ? ('routing' as const) : s.kind, details: [...s.details, 'update_config or rollback_config changed (the next roll follows it)'] };
  });
  return services.some((s, i) => s !== diff.services[i]) ? { ...diff, services, empty: false } : diff;
}

/** True when some service runs no container in both plans (withIdleChanges has something to compare). */
export function hasIdleServices(current: StoredPlan, next: StoredPlan): boolean {
  return next.order.some((s) => current.order.includes(s) && !current.containers.some((c) => c.service === s) && !next.containers.some((c) => c.service === s));
}
