/**
 * Merges a service's `engine` part (the compose keys that map onto Engine API fields) into its
 * container plan: one place, so render.ts stays as it was and diff sees the fields in the body.
 */
import type { DeploymentSpec, MountSpec, ServiceSpec } from '../config/spec.ts';
import type { ContainerPlan } from '../engine/types.ts';

/** Adds the engine fields, `platform`, and the aliases from `container_name` and other services' `links` to `plan`. */
export function applyEngineFields(spec: DeploymentSpec, s: ServiceSpec, plan: ContainerPlan): void {
  const e = s.engine;
  if (e !== undefined) {
    Object.assign(plan.body, structuredClone(e.container));
    Object.assign(plan.body.HostConfig, structuredClone(e.host));
    if (e.platform !== undefined) plan.platform = e.platform;
  }
  const linked = Object.values(spec.services).flatMap((other) => (other.engine?.links ?? []).filter((l) => l.service === s.name).map((l) => l.alias));
  const extra = [...(e?.aliases ?? []), ...linked];
  if (extra.length === 0) return;
  for (const endpoint of plan.endpoints) endpoint.aliases = [...new Set([...endpoint.aliases, ...extra])];
}

/**
 * `network_mode`, `ipc`, `pid: service:<name>`: the container joins the current container of that
 * service (`containerOf` names it), and has no networks or ports of its own.
 */
export function applyJoins(s: ServiceSpec, plan: ContainerPlan, containerOf: (service: string) => string): void {
  const joins = s.engine?.joins;
  if (joins === undefined) return;
  const h = plan.body.HostConfig;
  if (joins.network !== undefined) {
    h.NetworkMode = `container:${containerOf(joins.network)}`;
    h.PortBindings = {};
    plan.body.ExposedPorts = {};
    plan.endpoints = [];
  }
  if (joins.ipc !== undefined) h.IpcMode = `container:${containerOf(joins.ipc)}`;
  if (joins.pid !== undefined) h.PidMode = `container:${containerOf(joins.pid)}`;
}

/** Engine fields written under their compose key as they are (or through `to`): one table for the rendered file and `diff`. */
const PLAIN: ReadonlyArray<readonly [part: 'container' | 'host', field: string, key: string, to?: (v: never) => unknown]> = [
  ['container', 'Hostname', 'hostname'], ['container', 'Domainname', 'domainname'], ['container', 'Tty', 'tty'],
  ['container', 'OpenStdin', 'stdin_open'], ['container', 'MacAddress', 'mac_address'],
  ['host', 'Init', 'init'], ['host', 'ReadonlyRootfs', 'read_only'], ['host', 'ShmSize', 'shm_size', (n: number) => `${n}b`],
  ['host', 'Ulimits', 'ulimits', (u: Array<{ Name: string; Soft: number; Hard: number }>) => Object.fromEntries(u.map((x) => [x.Name, { soft: x.Soft, hard: x.Hard }]))],
  ['host', 'Sysctls', 'sysctls'], ['host', 'MemorySwap', 'memswap_limit'], ['host', 'MemoryReservation', 'mem_reservation', (n: number) => `${n}b`],
  ['host', 'MemorySwappiness', 'mem_swappiness'], ['host', 'CpuShares', 'cpu_shares'], ['host', 'CpuQuota', 'cpu_quota'],
  ['host', 'CpuPeriod', 'cpu_period'], ['host', 'CpuRealtimePeriod', 'cpu_rt_period'], ['host', 'CpuRealtimeRuntime', 'cpu_rt_runtime'],
  ['host', 'CpusetCpus', 'cpuset'], ['host', 'OomScoreAdj', 'oom_score_adj'], ['host', 'OomKillDisable', 'oom_kill_disable'],
  ['host', 'LogConfig', 'logging', (l: { Type: string; Config: Record<string, string> }) => ({ driver: l.Type, options: l.Config })],
  ['host', 'Dns', 'dns'], ['host', 'DnsSearch', 'dns_search'], ['host', 'DnsOptions', 'dns_opt'], ['host', 'GroupAdd', 'group_add'],
  ['host', 'StorageOpt', 'storage_opt'], ['host', 'SecurityOpt', 'security_opt'], ['host', 'Runtime', 'runtime'], ['host', 'Privileged', 'privileged'],
  ['host', 'Devices', 'devices', (d: Array<{ PathOnHost: string; PathInContainer: string; CgroupPermissions: string }>) => d.map((x) => `${x.PathOnHost}:${x.PathInContainer}:${x.CgroupPermissions}`)],
  ['host', 'UsernsMode', 'userns_mode'], ['host', 'CgroupnsMode', 'cgroup'],
];

/** The compose keys of the engine part, for the rendered docker-compose.yml (names as compose writes them). */
export function composeEngineFields(s: ServiceSpec): Record<string, unknown> {
  const e = s.engine;
  if (e === undefined) return {};
  const out: Record<string, unknown> = {};
  const h = e.host;
  const put = (key: string, value: unknown) => {
    if (value !== undefined) out[key] = value;
  };
  for (const [part, field, key, to] of PLAIN) {
    const value = (e[part] as Record<string, unknown>)[field];
    put(key, value === undefined || to === undefined ? value : to(value as never));
  }
  put('platform', e.platform);
  put('ipc', e.joins?.ipc === undefined ? h.IpcMode : `service:${e.joins.ipc}`);
  put('pid', e.joins?.pid === undefined ? h.PidMode : `service:${e.joins.pid}`);
  put('network_mode', e.joins?.network === undefined ? h.NetworkMode : `service:${e.joins.network}`);
  const blkio: Record<string, unknown> = {};
  const rates = (list: ReadonlyArray<{ Path: string; Rate: number }> | undefined) => list?.map((d) => ({ path: d.Path, rate: d.Rate }));
  for (const [key, value] of [
    ['weight', h.BlkioWeight],
    ['weight_device', h.BlkioWeightDevice?.map((d) => ({ path: d.Path, weight: d.Weight }))],
    ['device_read_bps', rates(h.BlkioDeviceReadBps)],
    ['device_write_bps', rates(h.BlkioDeviceWriteBps)],
    ['device_read_iops', rates(h.BlkioDeviceReadIOps)],
    ['device_write_iops', rates(h.BlkioDeviceWriteIOps)],
  ] as const) if (value !== undefined) blkio[key] = value;
  if (Object.keys(blkio).length > 0) out.blkio_config = blkio;
  put('pull_policy', e.pullPolicy);
  return out;
}

/** The Mounts options of a mount (`bind.propagation`, `volume.nocopy`). */
export function mountOptions(m: MountSpec): { BindOptions?: { Propagation: string }; VolumeOptions?: { NoCopy: boolean } } {
  if (m.type === 'bind' && m.propagation !== undefined) return { BindOptions: { Propagation: m.propagation } };
  if (m.type === 'volume' && m.noCopy === true) return { VolumeOptions: { NoCopy: true } };
  return {};
}

/** Mounts with an SELinux relabel (`:z`/`:Z`), in the Binds syntax (`source:target:ro,z`): Mounts in API 1.41 cannot relabel. */
export function selinuxBinds(s: ServiceSpec, source: (m: MountSpec) => string): string[] {
  return s.volumes
    .filter((m) => m.selinux !== undefined)
    .map((m) => {
      const opts = [m.readOnly ? 'ro' : 'rw', m.selinux!, ...(m.propagation === undefined ? [] : [m.propagation]), ...(m.noCopy === true ? ['nocopy'] : [])];
      return `${source(m)}:${m.target}:${opts.join(',')}`;
    });
}

/** Compose key of each engine field (for `diff`: "shm_size changed"). */
export const COMPOSE_KEY_OF: Readonly<Record<string, string>> = {
  ...Object.fromEntries(PLAIN.map(([, field, key]) => [field, key])),
  IpcMode: 'ipc', PidMode: 'pid', BlkioWeight: 'blkio_config', BlkioWeightDevice: 'blkio_config', BlkioDeviceReadBps: 'blkio_config',
  BlkioDeviceWriteBps: 'blkio_config', BlkioDeviceReadIOps: 'blkio_config', BlkioDeviceWriteIOps: 'blkio_config', Binds: 'volumes',
};
