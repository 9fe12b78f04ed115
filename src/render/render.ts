/**
 * DeploymentSpec + identity + allocated ports → the rendered docker-compose.yml and the engine
 * plan that carries it out. Pure and deterministic: the same inputs give byte-identical output.
 */
import path from 'node:path';
import { stringify } from 'yaml';
import type { DeploymentSpec, HealthcheckSpec, ServiceSpec } from '../config/spec.ts';
import type { PortAssignment } from '../store/records.ts';
import { LABELS, type ContainerPlan, type NetworkPlan, type ServicePlan, type VolumePlan } from '../engine/types.ts';
import { containerName, currentInstances, scopedName } from './names.ts';
import { startOrder } from './order.ts';
import { boundPorts } from './routes.ts';
import { applyEngineFields, applyJoins, composeEngineFields, mountOptions, selinuxBinds } from './engine-fields.ts';
import { isSecretSource, secretMountPlans } from './secrets.ts';
import { composeExternals, externalObjects, networkEngineName, volumeEngineName, type ExternalObjects } from './external.ts';
import { composeIpam, endpointAddress, networkIpam, type SubnetMap } from './ipam.ts';

/** Who the rendering is for. */
export interface RenderIdentity {
  id: string;
  name: string;
  revision: number;
  rootDir: string;
  /** service → current instance number (default 1). */
  instances?: Readonly<Record<string, number>>;
  /** service → the instance numbers of its replicas, for services with more than one (names.ts `currentInstances`). */
  replicas?: Readonly<Record<string, readonly number[]>>;
  /** Base domain of HTTP routes (`baseDomain(spec)`). */
  domain: string;
  /** The home's identity (`homeIdentity`), put on every object as `depad.home`; unset: no such label. */
  home?: string;
  /** Subnets allocated for the networks' `ipam` (the record's); a network without one keeps the file's addresses. */
  subnets?: SubnetMap;
}

/** Everything create needs: the compose text and the plan, in dependency order. */
export interface Rendered {
  compose: string;
  networks: NetworkPlan[];
  volumes: VolumePlan[];
  /** Containers in start order (dependencies first). */
  containers: ContainerPlan[];
  order: string[];
  /** Per service, in start order: route, health probe, timeouts, statefulness. */
  services: ServicePlan[];
  /** External networks and volumes the containers use (src/render/external.ts); absent: none. */
  external?: ExternalObjects;
}

/**
 * Renders a deployment. `ports` must hold a host port for every published port of the current
 * instance of every service: its published ports and its current instance's route port (route
 * ports, spares and other instances' ports are ignored).
 */
export function render(spec: DeploymentSpec, who: RenderIdentity, allPorts: readonly PortAssignment[]): Rendered {
  const ports = Object.keys(spec.services).flatMap((s) => currentInstances(who, s).flatMap((n, i) => boundPorts(allPorts, s, n, i + 1)));
  const base: Record<string, string> = { [LABELS.deployment]: who.name, [LABELS.deploymentId]: who.id, [LABELS.revision]: String(who.revision) };
  if (who.home !== undefined) base[LABELS.home] = who.home;
  const order = startOrder(spec);
  const usersOf = (pick: (s: ServiceSpec) => string[]) => (key: string) =>
    order.filter((s) => pick(spec.services[s]!).includes(key)).join(',');
  const netUsers = usersOf((s) => Object.keys(s.networks));
  const volUsers = usersOf((s) => s.volumes.flatMap((m) => (m.type === 'volume' ? [m.source] : [])));

  const networks: NetworkPlan[] = Object.values(spec.networks).filter((n) => n.external === undefined).map((n) => ({
    name: scopedName(who.name, n.name),
    key: n.name,
    driver: n.driver,
    internal: n.internal,
    options: { ...n.driverOpts },
    labels: sorted({ ...n.labels, ...base, [LABELS.network]: n.name, [LABELS.service]: netUsers(n.name) }),
    ...(n.ipam ? { ipam: networkIpam(n, who.subnets) } : {}),
  }));
  const volumes: VolumePlan[] = Object.values(spec.volumes).filter((v) => v.external === undefined).map((v) => ({
    name: scopedName(who.name, v.name),
    key: v.name,
    driver: v.driver,
    options: { ...v.driverOpts },
    labels: sorted({ ...v.labels, ...base, [LABELS.volume]: v.name, [LABELS.service]: volUsers(v.name) }),
  }));
  // One container per replica, in replica order (`depad.replica` 1…N), each with its own instance number and ports.
  const containers = order.flatMap((name) => currentInstances(who, name).map((n, i) => containerPlan(spec, spec.services[name]!, who, base, boundPorts(ports, name, n, i + 1), n, i + 1)));
  const firsts = containers.filter((c, i) => containers.findIndex((x) => x.service === c.service) === i);

  const composeDoc = {
    services: Object.fromEntries(firsts.map((c) => [c.service, composeService(spec.services[c.service]!, c, who, ports, spec.depad.hostIp, currentInstances(who, c.service).length)])),
    networks: Object.fromEntries(
      networks.map((n) => [n.key, { name: n.name, driver: n.driver, internal: n.internal, driver_opts: n.options, labels: n.labels, ...(n.ipam ? { ipam: composeIpam(n.ipam) } : {}) }]),
    ),
    volumes: Object.fromEntries(volumes.map((v) => [v.key, { name: v.name, driver: v.driver, driver_opts: v.options, labels: v.labels }])),
  };
  // A service at replicas: 0 runs no container; compose still lists it.
  for (const name of order) if (!(name in composeDoc.services)) composeDoc.services[name] = { image: spec.services[name]!.image, scale: 0 };
  Object.assign(composeDoc.networks, composeExternals(spec.networks));
  Object.assign(composeDoc.volumes, composeExternals(spec.volumes));
  const header =
    `# Rendered by depad for deployment ${who.name} (${who.id}), revision ${who.revision}.\n` +
    `# depad owns this file: change the deployment's config and run depad update instead.\n`;
  // YAML 1.1 rules, as docker-compose (PyYAML) reads them: 'no', 'on', '1:30' and the like get quoted.
  const compose = header + stringify(composeDoc, { version: '1.1', sortMapEntries: false, lineWidth: 0, aliasDuplicateObjects: false });
  const services = order.map((name) => servicePlan(spec, spec.services[name]!, who));
  const external = externalObjects(spec);
  return { compose, networks, volumes, containers, order, services, ...(external ? { external } : {}) };
}

/**
 * The engine restart policy of a service: the file's `restart:`, else `unless-stopped` (a reboot or
 * an engine restart brings it back even without the agent; `depad stop` stops it for good), except
 * for a one-shot service, one that another service waits to complete (`service_completed_successfully`):
 * it runs once, so `no`.
 */
export function restartPolicy(spec: DeploymentSpec, s: ServiceSpec): NonNullable<ServiceSpec['restart']> {
  if (s.restart) return s.restart;
  return isOneShot(spec, s.name) ? { policy: 'no' } : { policy: 'unless-stopped' };
}

/** True when another service waits for `name` to complete successfully (it is a job, not a server). */
export function isOneShot(spec: DeploymentSpec, name: string): boolean {
  return Object.values(spec.services).some((other) => other.dependsOn[name]?.condition === 'service_completed_successfully');
}

function engineRestart(r: NonNullable<ServiceSpec['restart']>): { Name: string; MaximumRetryCount?: number } {
  return r.maxRetries === undefined ? { Name: r.policy } : { Name: r.policy, MaximumRetryCount: r.maxRetries };
}

function servicePlan(spec: DeploymentSpec, s: ServiceSpec, who: RenderIdentity): ServicePlan {
  const ip = spec.depad.hostIp;
  const out: ServicePlan = {
    name: s.name,
    upstreamHost: ip === '0.0.0.0' ? '127.0.0.1' : ip === '::' ? '::1' : ip,
    drainTimeoutMs: s.depad.drainTimeoutMs,
    pauseTimeoutMs: s.depad.pauseTimeoutMs,
    stateful: s.volumes.some((m) => m.type === 'volume'),
    ...(s.replicas !== undefined && s.replicas !== 1 ? { replicas: s.replicas } : {}),
    ...(s.restart ? { restartGiven: true } : {}),
    ...(isOneShot(spec, s.name) ? { oneShot: true } : {}),
    ...(Object.values(s.networks).some((n) => n.ipv4Address !== undefined) ? { fixedAddress: true as const } : {}),
    ...(s.rollout?.update?.order || s.rollout?.rollback?.order
      ? { order: { ...(s.rollout.update?.order ? { update: s.rollout.update.order } : {}), ...(s.rollout.rollback?.order ? { rollback: s.rollout.rollback.order } : {}) } }
      : {}),
  };
  const route = s.depad.route;
  if (route) {
    const hosts = route.kind === 'http' ? [`${s.name}.${who.name}.${who.domain}`, ...route.hostnames] : [];
    out.route = { kind: route.kind, port: route.port, hosts, ...(route.https ? { https: route.https } : {}), ...(route.affinity ? { affinity: route.affinity } : {}) };
  }
  if (s.depad.health) out.health = s.depad.health.kind === 'command' ? { kind: 'command', command: [...s.depad.health.command] } : { ...s.depad.health };
  if (s.depad.monitor) out.monitor = { ...s.depad.monitor };
  return out;
}

function containerPlan(
  spec: DeploymentSpec,
  s: ServiceSpec,
  who: RenderIdentity,
  base: Record<string, string>,
  ports: readonly PortAssignment[],
  instance: number,
  replica: number,
): ContainerPlan {
  const mine = ports.filter((p) => p.service === s.name);
  const portBindings: ContainerPlan['body']['HostConfig']['PortBindings'] = {};
  const exposed: Record<string, Record<string, never>> = {};
  for (const p of s.ports) {
    const assigned = mine.find((a) => a.target === p.target && a.protocol === p.protocol);
    if (!assigned) throw new Error(`render: no host port for ${s.name} ${p.target}/${p.protocol}`);
    const key = `${p.target}/${p.protocol}`;
    exposed[key] = {};
    (portBindings[key] ??= []).push({ HostIp: p.hostIp ?? spec.depad.hostIp, HostPort: String(assigned.host) });
  }
  for (const e of s.expose) exposed[`${e.target}/${e.protocol}`] = {};
  const env = { DEPAD_DEPLOYMENT: who.name, DEPAD_DEPLOYMENT_ID: who.id, DEPAD_SERVICE: s.name, ...s.environment };
  const body: ContainerPlan['body'] = {
    Image: s.image,
    Env: Object.keys(env).sort().map((k) => `${k}=${env[k as keyof typeof env]}`),
    Labels: sorted({ ...s.labels, ...base, [LABELS.service]: s.name, [LABELS.instance]: String(instance), [LABELS.replica]: String(replica) }),
    ExposedPorts: sorted(exposed),
    HostConfig: {
      PortBindings: sorted(portBindings),
      Mounts: s.volumes.filter((m) => m.selinux === undefined).map((m) => ({
        Type: m.type,
        Source: m.type === 'volume' ? volumeEngineName(spec, who.name, m.source) : m.onHost ? m.source : path.join(who.rootDir, m.source),
        Target: m.target,
        ReadOnly: m.readOnly,
        ...mountOptions(m),
      })),
      Tmpfs: Object.fromEntries(s.tmpfs.map((t) => splitOnce(t, ':'))),
      RestartPolicy: engineRestart(restartPolicy(spec, s)),
      CapAdd: [...s.capAdd],
      CapDrop: [...s.capDrop],
      ExtraHosts: [...s.extraHosts],
      NetworkMode: networkEngineName(spec, who.name, Object.keys(s.networks)[0] ?? 'default'),
    },
  };
  if (s.command) body.Cmd = [...s.command];
  if (s.entrypoint) body.Entrypoint = [...s.entrypoint];
  if (s.user !== undefined) body.User = s.user;
  if (s.workingDir !== undefined) body.WorkingDir = s.workingDir;
  if (s.stopSignal !== undefined) body.StopSignal = s.stopSignal;
  if (s.stopGracePeriodMs !== undefined) body.StopTimeout = Math.ceil(s.stopGracePeriodMs / 1000);
  if (s.healthcheck === 'disabled') body.Healthcheck = { Test: ['NONE'] };
  else if (s.healthcheck) body.Healthcheck = engineHealthcheck(s.healthcheck);
  if (s.resources.cpus !== undefined) body.HostConfig.NanoCpus = Math.round(s.resources.cpus * 1e9);
  if (s.resources.memoryBytes !== undefined) body.HostConfig.Memory = s.resources.memoryBytes;
  if (s.resources.pids !== undefined) body.HostConfig.PidsLimit = s.resources.pids;
  const secrets = secretMountPlans(spec, s, who.rootDir);
  for (const m of secrets) body.HostConfig.Mounts.push({ Type: 'bind', Source: m.source, Target: m.target, ReadOnly: true });
  const plan: ContainerPlan = {
    name: containerName(who.name, s.name, instance),
    service: s.name,
    body,
    endpoints: Object.entries(s.networks).map(([net, { aliases, ipv4Address }]) => ({
      network: networkEngineName(spec, who.name, net),
      aliases: [...new Set([s.name, ...aliases])],
      ...(ipv4Address !== undefined ? { ipv4Address: endpointAddress(spec.networks[net], ipv4Address, who.subnets)! } : {}),
    })),
    dependsOn: Object.fromEntries(Object.entries(s.dependsOn).map(([k, v]) => [k, { condition: v.condition }])),
    ...(secrets.length > 0 ? { secrets: Object.fromEntries(secrets.map((m) => [m.label, m.file])) } : {}),
  };
  const binds = selinuxBinds(s, (m) => (m.type === 'volume' ? volumeEngineName(spec, who.name, m.source) : m.onHost ? m.source : path.join(who.rootDir, m.source)));
  if (binds.length > 0) plan.body.HostConfig.Binds = binds;
  applyEngineFields(spec, s, plan);
  applyJoins(s, plan, (service) => containerName(who.name, service, currentInstances(who, service)[0] ?? 1));
  return plan;
}

function composeService(s: ServiceSpec, c: ContainerPlan, who: RenderIdentity, ports: readonly PortAssignment[], hostIp: string, replicas: number) {
  // Several replicas: compose names them itself (and would refuse one container_name for all).
  const out: Record<string, unknown> = replicas > 1 ? { image: s.image, scale: replicas } : { container_name: c.name, image: s.image };
  if (s.entrypoint) out.entrypoint = [...s.entrypoint];
  if (s.command) out.command = [...s.command];
  out.environment = Object.fromEntries(c.body.Env.map((e) => splitOnce(e, '=')));
  const mine = ports.filter((p) => p.service === s.name);
  if (s.ports.length) {
    out.ports = s.ports.map((p) => {
      const host = mine.find((a) => a.target === p.target && a.protocol === p.protocol)!.host;
      const ip = p.hostIp ?? hostIp;
      return `${ip.includes(':') ? `[${ip}]` : ip}:${host}:${p.target}/${p.protocol}`;
    });
  }
  if (s.expose.length) out.expose = s.expose.map((e) => `${e.target}/${e.protocol}`);
  if (s.volumes.length) {
    out.volumes = s.volumes.map((m) => ({
      type: m.type,
      source: m.type === 'volume' ? m.source : m.onHost ? m.source : path.join(who.rootDir, m.source),
      target: m.target,
      read_only: m.readOnly,
    }));
  }
  const secretBinds = c.body.HostConfig.Mounts.filter((m) => isSecretSource(m.Source)).map((m) => ({ type: 'bind', source: m.Source, target: m.Target, read_only: true }));
  if (secretBinds.length) out.volumes = [...((out.volumes as unknown[] | undefined) ?? []), ...secretBinds];
  if (s.engine?.joins?.network === undefined) out.networks = Object.fromEntries(c.endpoints.map((e, i) => [Object.keys(s.networks)[i]!, { aliases: e.aliases, ...(e.ipv4Address ? { ipv4_address: e.ipv4Address } : {}) }]));
  if (Object.keys(s.dependsOn).length) out.depends_on = Object.fromEntries(Object.entries(s.dependsOn).map(([k, v]) => [k, { condition: v.condition }]));
  if (s.healthcheck === 'disabled') out.healthcheck = { disable: true };
  else if (s.healthcheck) out.healthcheck = composeHealthcheck(s.healthcheck);
  const restart = c.body.HostConfig.RestartPolicy;
  out.restart = restart.MaximumRetryCount === undefined ? restart.Name : `${restart.Name}:${restart.MaximumRetryCount}`;
  const limits: Record<string, string> = {};
  if (s.resources.cpus !== undefined) limits.cpus = String(s.resources.cpus);
  if (s.resources.memoryBytes !== undefined) limits.memory = `${s.resources.memoryBytes}b`;
  if (Object.keys(limits).length) out.deploy = { resources: { limits } };
  if (s.resources.pids !== undefined) out.pids_limit = s.resources.pids;
  out.labels = c.body.Labels;
  if (s.user !== undefined) out.user = s.user;
  if (s.workingDir !== undefined) out.working_dir = s.workingDir;
  if (s.tmpfs.length) out.tmpfs = [...s.tmpfs];
  if (s.capAdd.length) out.cap_add = [...s.capAdd];
  if (s.capDrop.length) out.cap_drop = [...s.capDrop];
  if (s.extraHosts.length) out.extra_hosts = [...s.extraHosts];
  if (s.stopGracePeriodMs !== undefined) out.stop_grace_period = duration(s.stopGracePeriodMs);
  if (s.stopSignal !== undefined) out.stop_signal = s.stopSignal;
  Object.assign(out, composeEngineFields(s));
  return out;
}

function engineHealthcheck(h: HealthcheckSpec): NonNullable<ContainerPlan['body']['Healthcheck']> {
  const out: NonNullable<ContainerPlan['body']['Healthcheck']> = { Test: [...h.test] };
  if (h.intervalMs !== undefined) out.Interval = h.intervalMs * 1e6;
  if (h.timeoutMs !== undefined) out.Timeout = h.timeoutMs * 1e6;
  if (h.retries !== undefined) out.Retries = h.retries;
  if (h.startPeriodMs !== undefined) out.StartPeriod = h.startPeriodMs * 1e6;
  return out;
}

function composeHealthcheck(h: HealthcheckSpec): Record<string, unknown> {
  const out: Record<string, unknown> = { test: [...h.test] };
  if (h.intervalMs !== undefined) out.interval = duration(h.intervalMs);
  if (h.timeoutMs !== undefined) out.timeout = duration(h.timeoutMs);
  if (h.retries !== undefined) out.retries = h.retries;
  if (h.startPeriodMs !== undefined) out.start_period = duration(h.startPeriodMs);
  return out;
}

/** Milliseconds in compose's duration syntax. */
function duration(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`;
}

function splitOnce(s: string, sep: string): [string, string] {
  const i = s.indexOf(sep);
  return i < 0 ? [s, ''] : [s.slice(0, i), s.slice(i + 1)];
}

function sorted<V>(record: Record<string, V>): Record<string, V> {
  return Object.fromEntries(Object.keys(record).sort().map((k) => [k, record[k]!]));
}

