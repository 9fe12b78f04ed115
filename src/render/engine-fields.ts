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

/** The compose keys of the engine part, for the rendered docker-compose.yml (names as compose writes them). */
export function composeEngineFields(s: ServiceSpec): Record<string, unknown> {
  const e = s.engine;
  if (e === undefined) return {};
  const out: Record<string, unknown> = {};
  const c = e.container;
  const h = e.host;
  const put = (key: string, value: unknown) => {
    if (value !== undefined) out[key] = value;
  };
  put('hostname', c.Hostname);
  put('domainname', c.Domainname);
  put('tty', c.Tty);
  put('stdin_open', c.OpenStdin);
  put('mac_address', c.MacAddress);
  put('platform', e.platform);
  put('init', h.Init);
  put('read_only', h.ReadonlyRootfs);
  put('shm_size', h.ShmSize === undefined ? undefined : `${h.ShmSize}b`);
  put('ulimits', h.Ulimits === undefined ? undefined : Object.fromEntries(h.Ulimits.map((u) => [u.Name, { soft: u.Soft, hard: u.Hard }])));
  put('sysctls', h.Sysctls);
  put('memswap_limit', h.MemorySwap);
  put('mem_reservation', h.MemoryReservation === undefined ? undefined : `${h.MemoryReservation}b`);
  put('mem_swappiness', h.MemorySwappiness);
  put('cpu_shares', h.CpuShares);
  put('cpu_quota', h.CpuQuota);
  put('cpu_period', h.CpuPeriod);
  put('cpu_rt_period', h.CpuRealtimePeriod);
  put('cpu_rt_runtime', h.CpuRealtimeRuntime);
  put('cpuset', h.CpusetCpus);
  put('oom_score_adj', h.OomScoreAdj);
  put('oom_kill_disable', h.OomKillDisable);
  put('logging', h.LogConfig === undefined ? undefined : { driver: h.LogConfig.Type, options: h.LogConfig.Config });
  put('dns', h.Dns);
  put('dns_search', h.DnsSearch);
  put('dns_opt', h.DnsOptions);
  put('group_add', h.GroupAdd);
  put('storage_opt', h.StorageOpt);
  put('security_opt', h.SecurityOpt);
  put('ipc', e.joins?.ipc === undefined ? h.IpcMode : `service:${e.joins.ipc}`);
  put('pid', e.joins?.pid === undefined ? undefined : `service:${e.joins.pid}`);
  put('network_mode', e.joins?.network === undefined ? h.NetworkMode : `service:${e.joins.network}`);
  put('runtime', h.Runtime);
  put('privileged', h.Privileged);
  put('devices', h.Devices?.map((d) => `${d.PathOnHost}:${d.PathInContainer}:${d.CgroupPermissions}`));
  if (e.joins?.pid === undefined) put('pid', h.PidMode);
  put('userns_mode', h.UsernsMode);
  put('cgroup', h.CgroupnsMode);
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
  Hostname: 'hostname', Domainname: 'domainname', Tty: 'tty', OpenStdin: 'stdin_open', MacAddress: 'mac_address',
  Init: 'init', ReadonlyRootfs: 'read_only', ShmSize: 'shm_size', Ulimits: 'ulimits', Sysctls: 'sysctls', MemorySwap: 'memswap_limit',
  MemoryReservation: 'mem_reservation', MemorySwappiness: 'mem_swappiness', CpuShares: 'cpu_shares', CpuQuota: 'cpu_quota',
  CpuPeriod: 'cpu_period', CpuRealtimePeriod: 'cpu_rt_period', CpuRealtimeRuntime: 'cpu_rt_runtime', CpusetCpus: 'cpuset',
  OomScoreAdj: 'oom_score_adj', OomKillDisable: 'oom_kill_disable', LogConfig: 'logging', Dns: 'dns', DnsSearch: 'dns_search',
  DnsOptions: 'dns_opt', GroupAdd: 'group_add', StorageOpt: 'storage_opt', SecurityOpt: 'security_opt', IpcMode: 'ipc',
  CgroupnsMode: 'cgroup', Runtime: 'runtime', BlkioWeight: 'blkio_config', BlkioWeightDevice: 'blkio_config',
  BlkioDeviceReadBps: 'blkio_config', BlkioDeviceWriteBps: 'blkio_config', BlkioDeviceReadIOps: 'blkio_config',
  BlkioDeviceWriteIOps: 'blkio_config', Binds: 'volumes',
};
