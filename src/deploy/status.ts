/** Read-only views of deployments: what the store says beside what the engine reports. */
import type { ResourceLimits } from '../config/spec.ts';
import { isDepadError } from '../errors.ts';
import { LABELS, type ContainerState } from '../engine/types.ts';
import type { LogLine } from '../engine/logs.ts';
import type { DeploymentRecord, HeldService, PortAssignment, RevisionRecord, SubnetAssignment } from '../store/records.ts';
import type { OpContext } from './context.ts';
import { listInstances } from './materialize.ts';
import { assertServices } from './resolve.ts';
import { readPlan, readPlanForView } from './root-dir.ts';
import { currentInstances } from '../render/names.ts';
import { boundPorts } from '../render/routes.ts';
import { proxyStateDir } from '../home.ts';
import { followInstances } from './log-follow.ts';
import { checkSelection, isSelected, recordReplicas, replicaOf, type ReplicaSelection } from './replica-select.ts';
import { defaultHttpPort, readListening } from '../../proxy/listening.ts';

/** One instance (container) of a service. */
export interface InstanceView {
  service: string;
  /** Which of the service's replicas (1…N; containers made before replicas have none). */
  replica?: number;
  container: string;
  id: string;
  state: string;
  health: string | undefined;
  exitCode: number;
  startedAt: string | undefined;
  /** Times the engine restarted it, and the agent's own restarts (crash loops). */
  restarts: number;
  /** Set by the agent: it waits before restarting it (`backoff`) or gave up on it (`given-up`). */
  crashLoop?: { state: 'backoff' | 'given-up'; deaths: number; nextRestart?: string };
  /** Host port → container port/protocol. */
  ports: Array<{ host: number; target: number; protocol: string }>;
}

/** A service's stable endpoint through the built-in proxy. */
export interface RouteView {
  kind: 'http' | 'tcp';
  /** http: the hostnames it answers at. */
  hosts: string[];
  /** http: where clients reach it, with the proxy's HTTP port unless it is 80 (`http://web.shop.localhost:8080`). */
  urls?: string[];
  /** tcp: the proxy's stable host port. */
  port?: number;
}

/** The proxy's HTTP port per home, read once per process: where it listens (or last did), else its default. */
const proxyHttpPorts = new Map<string, Promise<number>>();

function proxyHttpPort(home: string): Promise<number> {
  let port = proxyHttpPorts.get(home);
  if (port === undefined) {
    port = readListening(proxyStateDir(home)).then((l) => l?.httpPort ?? defaultHttpPort());
    proxyHttpPorts.set(home, port);
  }
  return port;
}

/** A deployment as `ls` and `inspect` show it. */
export interface DeploymentView {
  id: string;
  name: string;
  /** running (all up), stopped (none up), partial, or a transient phase. */
  status: string;
  desired: DeploymentRecord['desired'];
  /** Services stopped on their own (`depad stop -s`): they stay down while the rest runs. */
  stoppedServices?: string[];
  revision: number;
  /** What selectors match (`class` among them). */
  labels: Record<string, string>;
  createdAt: string;
  updatedAt: string;
  rootDir: string;
  /** Per service: the current instance's ports, its route through the proxy, its instances. */
  /** Each service; `replicas`: how many current replicas it has (1 without replicas; 0: scaled to none). */
  services: Array<{ name: string; replicas: number; ports: PortAssignment[]; route?: RouteView; limits?: ResourceLimits; instances: InstanceView[] }>;
  ports: PortAssignment[];
  /** Subnets allocated for the file's `ipam` subnets: network, asked, given (absent: none). */
  subnets?: SubnetAssignment[];
  /** Through a cluster manager: the host that runs it. */
  host?: string;
  /** Services with replicas still on an older container after a failed or paused rolling update (absent: none). */
  held?: Record<string, HeldService>;
}

/** Builds the view of one deployment from its record and the engine's state (the agent's copy of it when `ctx.observed`). */
export async function viewDeployment(ctx: OpContext, record: DeploymentRecord, instances?: ContainerState[]): Promise<DeploymentView> {
  const plan = await readPlanForView(record.rootDir, record.revision).catch(() => undefined);
  const observed = instances === undefined ? ctx.observed?.containers(record.id) : undefined;
  const found = instances ?? observed?.containers ?? (await listInstances(ctx, record));
  const unknown = observed?.live === false;
  const serviceNames = plan?.order ?? [...new Set(found.map((c) => c.labels[LABELS.service] ?? '?'))].sort();
  const routed = plan?.services?.some((s) => s.route?.kind === 'http');
  const httpPort = routed ? await proxyHttpPort(ctx.home) : 80;
  const services = serviceNames.map((name) => {
    const meta = plan?.services?.find((s) => s.name === name);
    const current = currentInstances(record, name);
    const routePort = record.ports.find((p) => p.service === name && p.role === 'route')?.host;
    const route: RouteView | undefined = meta?.route
      ? {
          kind: meta.route.kind,
          hosts: meta.route.hosts,
          ...(meta.route.kind === 'http' ? { urls: meta.route.hosts.map((h) => `http://${h}${httpPort === 80 ? '' : `:${httpPort}`}`) } : {}),
          ...(routePort !== undefined ? { port: routePort } : {}),
        }
      : undefined;
    const host = plan?.containers.find((c) => c.service === name)?.body.HostConfig;
    const limits: ResourceLimits = {
      ...(host?.NanoCpus ? { cpus: host.NanoCpus / 1e9 } : {}),
      ...(host?.Memory ? { memoryBytes: host.Memory } : {}),
      ...(host?.PidsLimit ? { pids: host.PidsLimit } : {}),
    };
    return {
      name,
      replicas: current.length,
      ports: [...new Map(current.flatMap((n, i) => boundPorts(record.ports, name, n, i + 1)).map((p) => [p.host, p])).values()],
      ...(route ? { route } : {}),
      ...(Object.keys(limits).length ? { limits } : {}),
      instances: found.filter((c) => c.labels[LABELS.service] === name).map((c) => instanceView(c, unknown, ctx.observed)),
    };
  });
  const expected = plan?.containers.length ?? services.length;
  const running = found.filter((c) => c.running).length;
  const status =
    record.phase !== 'ready' ? record.phase : unknown ? 'unknown (engine unavailable)' : expected === 0 ? (record.desired === 'running' ? 'running' : 'stopped') /* every service at replicas: 0 */ : running === 0 ? 'stopped' : running >= expected && found.length >= expected ? 'running' : `partial (${running}/${expected})`;
  return {
    id: record.id,
    name: record.name,
    status,
    desired: record.desired,
    ...(record.stoppedServices?.length ? { stoppedServices: [...record.stoppedServices] } : {}),
    revision: record.revision,
    labels: record.labels ?? {},
    createdAt: record.createdAt,
    updatedAt: record.updatedAt,
    rootDir: record.rootDir,
    services,
    ports: record.ports,
    ...(record.subnets?.length ? { subnets: record.subnets } : {}),
    ...(record.held ? { held: record.held } : {}),
  };
}

/** Views of every deployment, by name. With the engine down, status says so and the rest comes from the store. */
export async function listDeploymentViews(ctx: OpContext): Promise<DeploymentView[]> {
  const records = (await ctx.store.listDeployments()).sort((a, b) => a.name.localeCompare(b.name));
  if (ctx.observed) return Promise.all(records.map((r) => viewDeployment(ctx, r)));
  let all: ContainerState[] | undefined;
  try {
    all = records.length ? await ctx.engine.listContainers({ [LABELS.deploymentId]: null }) : [];
  } catch (error) {
    if (!isDepadError(error, 'DEPAD_ENGINE_UNAVAILABLE')) throw error;
    ctx.log.warn({ engine: ctx.engine.address }, 'the Docker Engine is unavailable; showing what depad has stored');
  }
  return Promise.all(
    records.map(async (r) => {
      const view = await viewDeployment(ctx, r, all?.filter((c) => c.labels[LABELS.deploymentId] === r.id) ?? []);
      return all ? view : { ...view, status: 'unknown (engine unavailable)' };
    }),
  );
}

/** The revisions of a deployment. */
export async function listRevisions(ctx: OpContext, record: DeploymentRecord): Promise<RevisionRecord[]> {
  return ctx.store.listRevisions(record.id);
}

/** Options for `readLogs`. */
export interface LogOptions {
  services?: readonly string[];
  follow: boolean;
  tail?: number;
  timestamps?: boolean;
  signal?: AbortSignal;
  /** Only these services and replicas (replica-select.ts); checked against the deployment. */
  selection?: ReplicaSelection;
}

/** Streams the logs of a deployment's instances (optionally some services) to `onLine`. */
export async function readLogs(
  ctx: Pick<OpContext, 'engine'>,
  record: DeploymentRecord,
  options: LogOptions,
  onLine: (service: string, line: LogLine, replica: number) => void,
): Promise<void> {
  const plan = await readPlan(record.rootDir, record.revision);
  if (options.services) assertServices(record, plan.order, options.services);
  if (options.selection) checkSelection(recordReplicas(record, plan.order), options.selection);
  const selected = async () =>
    (await ctx.engine.listContainers({ [LABELS.deploymentId]: record.id })).filter(
      (c) => (!options.services || options.services.includes(c.labels[LABELS.service] ?? '')) && (!options.selection || isSelected(options.selection, c.labels[LABELS.service] ?? '', replicaOf(c.labels))),
    );
  const instances = await selected();
  const byReplica = (a: ContainerState, b: ContainerState) => replicaOf(a.labels) - replicaOf(b.labels) || a.name.localeCompare(b.name);
  const ordered = plan.order.flatMap((s) => instances.filter((c) => c.labels[LABELS.service] === s).sort(byReplica));
  // `tail` is for the instances there at the start; one that appears later is read from its first line.
  const read = (c: ContainerState, tail: number | undefined, since?: number) =>
    ctx.engine.logs(
      c.id,
      { follow: options.follow, ...(tail !== undefined ? { tail } : {}), ...(since !== undefined ? { since } : {}), timestamps: options.timestamps ?? false, ...(options.signal ? { signal: options.signal } : {}) },
      (line) => onLine(c.labels[LABELS.service] ?? '?', line, replicaOf(c.labels)),
    );
  if (!options.follow) {
    for (const c of ordered) await read(c, options.tail);
    return;
  }
  await followInstances({ list: selected, read: (c, from) => (from === 'tail' ? read(c, options.tail) : from === 'first' ? read(c, undefined) : read(c, undefined, from)) }, ordered, options.signal);
}

function instanceView(c: ContainerState, unknown: boolean, observed: OpContext['observed']): InstanceView {
  const ports = Object.entries(c.ports).flatMap(([key, hosts]) => {
    const [target, protocol] = key.split('/');
    return hosts.map((host) => ({ host, target: Number(target), protocol: protocol ?? 'tcp' }));
  });
  const agent = observed?.restarts?.(c.name);
  return {
    service: c.labels[LABELS.service] ?? '?',
    ...(c.labels[LABELS.replica] !== undefined ? { replica: Number(c.labels[LABELS.replica]) } : {}),
    container: c.name,
    id: c.id,
    state: unknown ? 'unknown' : c.status,
    // In the agent its health checks say (x-depad.health, or the container's own check as they follow it).
    health: c.running && !unknown ? (observed?.health?.(c.name) ?? c.health) : undefined,
    exitCode: c.exitCode,
    startedAt: c.startedAt,
    restarts: c.restartCount + (agent?.restarts ?? 0),
    ...(agent && agent.state !== 'running' ? { crashLoop: { state: agent.state, deaths: agent.deaths, ...(agent.nextRestart ? { nextRestart: agent.nextRestart } : {}) } } : {}),
    ports,
  };
}
