/**
 * The compose service keys that map one to one onto Engine API container fields (hostname,
 * init, shm_size, ulimits, sysctls, logging, dns…), the namespace keys (ipc, pid, uts,
 * network_mode…), and those that reach the host (refused through host-access.ts). Read into the
 * `engine` part of a ServiceSpec; render merges it into the container body.
 */
import type { ResourceLimits, ServiceEngine } from './spec.ts';
import type { ContainerFields, HostConfigFields } from '../engine/create-fields.ts';
import type { Collector, LEntry, LNode, Pos } from './nodes.ts';
import { describe, entryPos, indexPath, keyPath } from './nodes.ts';
import { readBool, readKeyValues, readString, readStringList, scalarNumber } from './read.ts';
import { hostAccessProblem } from './host-access.ts';
import { readBlkio, readLogging, readUlimits } from './service-engine-maps.ts';
import { parseBytes, parseCpus, parseMemory } from './values.ts';
import type { DependencyRef } from './service-parts.ts';

/** The service keys read here. */
export const ENGINE_KEYS = [
  'hostname', 'domainname', 'init', 'read_only', 'shm_size', 'ulimits', 'sysctls', 'pids_limit', 'mem_limit', 'memswap_limit',
  'mem_reservation', 'mem_swappiness', 'cpus', 'cpu_shares', 'cpu_quota', 'cpu_period', 'cpu_rt_period', 'cpu_rt_runtime', 'cpuset',
  'oom_score_adj', 'oom_kill_disable', 'logging', 'platform', 'pull_policy', 'stdin_open', 'tty', 'dns', 'dns_search', 'dns_opt',
  'group_add', 'storage_opt', 'security_opt', 'ipc', 'pid', 'uts', 'userns_mode', 'cgroup', 'cgroup_parent', 'network_mode',
  'privileged', 'devices', 'device_cgroup_rules', 'gpus', 'use_api_socket', 'runtime', 'isolation', 'blkio_config', 'mac_address',
  'container_name', 'links', 'external_links', 'volumes_from', 'annotations', 'develop', 'attach', 'credential_spec', 'cpu_count',
  'cpu_percent', 'pull_refresh_after',
] as const;

/** Namespaced sysctls (the engine runs them inside the container's namespaces only). */
const NAMESPACED_SYSCTL = /^(net\..+|kernel\.(msgmax|msgmnb|msgmni|sem|shmall|shmmax|shmmni|shm_rmid_forced)|fs\.mqueue\..+)$/;
const HOSTNAME = /^[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?(\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*$/;
const CONTAINER_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]+$/;

/** What the engine keys of one service give: the engine part, limits (checked against deploy's), links as dependencies. */
export interface EngineRead {
  readonly engine?: ServiceEngine;
  /** `cpus`, `mem_limit`, `pids_limit`, with where each was written. */
  readonly limits: { readonly [K in keyof ResourceLimits]?: { readonly value: number; readonly path: string; readonly pos: Pos } };
  /** `links` targets: each an implicit `depends_on` (service_started). */
  readonly dependencies: readonly DependencyRef[];
}

type Mut<T> = { -readonly [K in keyof T]: T[K] };

/** Reads the engine keys of a service (`keys`: its checked entries by key). */
export function readServiceEngine(c: Collector, keys: ReadonlyMap<string, LEntry>, path: string): EngineRead {
  const container: Mut<ContainerFields> = {};
  const host: Mut<HostConfigFields> = {};
  const engine: { platform?: string; pullPolicy?: ServiceEngine['pullPolicy']; aliases: string[]; links: { service: string; alias: string }[]; joins: { network?: string; ipc?: string; pid?: string } } = { aliases: [], links: [], joins: {} };
  const limits: Mut<EngineRead['limits']> = {};
  const dependencies: DependencyRef[] = [];
  const at = (key: string) => keyPath(path, key);
  const each = (key: string, read: (node: LNode, p: string, entry: LEntry) => void) => {
    const entry = keys.get(key);
    if (entry !== undefined && !(entry.value.kind === 'scalar' && entry.value.value === null)) read(entry.value, at(key), entry);
  };
  const refuse = (key: string, message: string) => each(key, (_n, p, e) => c.issue(p, e.keyPos, message));
  const host1 = (key: string, value: string | true, p: string, pos: Pos) => {
    const problem = hostAccessProblem({ key, value });
    if (problem !== undefined) c.issue(p, pos, problem);
    return problem === undefined;
  };

  for (const [key, field] of [['init', 'Init'], ['read_only', 'ReadonlyRootfs'], ['oom_kill_disable', 'OomKillDisable']] as const) {
    each(key, (n, p) => { const b = readBool(c, n, p); if (b !== undefined) host[field] = b; });
  }
  for (const [key, field] of [['stdin_open', 'OpenStdin'], ['tty', 'Tty']] as const) {
    each(key, (n, p) => { const b = readBool(c, n, p); if (b !== undefined) container[field] = b; });
  }
  for (const key of ['hostname', 'domainname'] as const) {
    each(key, (n, p) => {
      const text = readString(c, n, p, { what: 'a host name' });
      if (text === '') return; // empty after interpolation (`${HOST:-}`): unset, as in compose
      if (text !== undefined && !HOSTNAME.test(text)) c.issue(p, n.pos, `${key} must be a DNS name (letters, digits, '-' and '.'), found "${text}"`);
      else if (text !== undefined) container[key === 'hostname' ? 'Hostname' : 'Domainname'] = text;
    });
  }
  each('mac_address', (n, p) => {
    const text = readString(c, n, p, { what: 'a MAC address' });
    if (text === '') return;
    if (text !== undefined && !/^([0-9a-fA-F]{2}:){5}[0-9a-fA-F]{2}$/.test(text)) c.issue(p, n.pos, `mac_address must look like 02:42:ac:11:00:02, found "${text}"`);
    else if (text !== undefined) container.MacAddress = text;
  });
  for (const [key, field] of [['cpuset', 'CpusetCpus'], ['runtime', 'Runtime']] as const) {
    each(key, (n, p) => { const t = readString(c, n, p, { numbers: true }); if (t !== undefined && t !== '') host[field] = t; });
  }
  each('platform', (n, p) => {
    const t = readString(c, n, p, { what: 'a platform such as linux/amd64' });
    if (t === '') return;
    if (t !== undefined && !/^[a-z0-9]+(\/[a-z0-9_]+(\/[a-z0-9]+)?)?$/.test(t)) c.issue(p, n.pos, `platform must be os[/arch[/variant]], such as linux/amd64, found "${t}"`);
    else if (t !== undefined) engine.platform = t;
  });
  each('pull_policy', (n, p) => {
    const t = readString(c, n, p, { what: 'a pull policy' });
    if (t === undefined || t === '') return;
    if (t === 'always' || t === 'never') engine.pullPolicy = t;
    else if (['missing', 'if_not_present', 'build', 'daily', 'weekly', 'refresh'].includes(t) || /^every_\d+[smhdw]+$/.test(t)) engine.pullPolicy = 'missing';
    else c.issue(p, n.pos, `pull_policy must be always, never, missing, if_not_present, build, daily, weekly or every_<duration>; found "${t}"`);
  });
  const bytes = (n: LNode, p: string, min: number, memory = true): number | undefined => {
    if (n.kind === 'scalar' && typeof n.value === 'number') {
      if (Number.isSafeInteger(n.value) && n.value >= min) return n.value;
      c.issue(p, n.pos, `expected a size such as "512m" or a whole number of bytes, found ${describe(n)}`);
      return undefined;
    }
    const t = readString(c, n, p, { what: 'a size such as "512m"' });
    if (t === undefined) return undefined;
    if (min < 0 && t.trim() === '-1') return -1;
    if (!memory) {
      const b = parseBytes(t);
      if (b === undefined) c.issue(p, n.pos, `expected a size such as "64m" or "1g" (units b, k, m, g), found "${t}"`);
      return b;
    }
    const parsed = parseMemory(t);
    if (!parsed.ok) c.issue(p, n.pos, parsed.error);
    return parsed.ok ? parsed.value : undefined;
  };
  each('shm_size', (n, p) => { const v = bytes(n, p, 0, false); if (v !== undefined) host.ShmSize = v; });
  each('mem_reservation', (n, p) => { const v = bytes(n, p, 0); if (v !== undefined) host.MemoryReservation = v; });
  each('memswap_limit', (n, p) => { const v = bytes(n, p, -1); if (v !== undefined && v !== 0) host.MemorySwap = v; });
  each('mem_limit', (n, p, e) => { const v = bytes(n, p, 0); if (v !== undefined) limits.memoryBytes = { value: v, path: p, pos: entryPos(e) }; });
  each('cpus', (n, p, e) => {
    const v = n.kind === 'scalar' && typeof n.value === 'number' ? n.value : readString(c, n, p, { what: 'a number of CPUs' });
    if (v === undefined) return;
    const parsed = parseCpus(v);
    if (parsed.ok) limits.cpus = { value: parsed.value, path: p, pos: entryPos(e) };
    else c.issue(p, n.pos, parsed.error);
  });
  const int = (n: LNode, p: string, min: number, max: number): number | undefined => {
    const v = scalarNumber(c, n, p);
    if (v === null) return undefined;
    if (v === undefined || !Number.isSafeInteger(v) || v < min || v > max) {
      c.issue(p, n.pos, `expected a whole number from ${min} to ${max}, found ${describe(n)}`);
      return undefined;
    }
    return v;
  };
  const BIG = Number.MAX_SAFE_INTEGER;
  // -1 and 0: no limit (the engine's default), as compose sends them.
  each('pids_limit', (n, p, e) => { const v = int(n, p, -1, BIG); if (v !== undefined && v > 0) limits.pids = { value: v, path: p, pos: entryPos(e) }; });
  each('mem_swappiness', (n, p) => { const v = int(n, p, 0, 100); if (v !== undefined) host.MemorySwappiness = v; });
  each('oom_score_adj', (n, p) => { const v = int(n, p, -1000, 1000); if (v !== undefined) host.OomScoreAdj = v; });
  for (const [key, field, min] of [['cpu_shares', 'CpuShares', 0], ['cpu_quota', 'CpuQuota', -1], ['cpu_period', 'CpuPeriod', 0], ['cpu_rt_period', 'CpuRealtimePeriod', 0], ['cpu_rt_runtime', 'CpuRealtimeRuntime', -1]] as const) {
    each(key, (n, p) => { const v = int(n, p, min, BIG); if (v !== undefined) host[field] = v; });
  }
  for (const [key, field] of [['dns', 'Dns'], ['dns_search', 'DnsSearch'], ['dns_opt', 'DnsOptions'], ['group_add', 'GroupAdd']] as const) {
    each(key, (n, p) => { const list = readStringList(c, n, p, { single: key !== 'dns_opt', numbers: key === 'group_add' }); if (list) host[field] = list; });
  }
  each('storage_opt', (n, p) => {
    const out: Record<string, string> = {};
    for (const kv of readKeyValues(c, n, p, 'storage option') ?? []) out[kv.key] = kv.value;
    host.StorageOpt = out;
  });
  each('sysctls', (n, p) => {
    const out: Record<string, string> = {};
    for (const kv of readKeyValues(c, n, p, 'sysctl') ?? []) {
      if (NAMESPACED_SYSCTL.test(kv.key)) out[kv.key] = kv.value;
      else c.issue(kv.path, kv.pos, `sysctl ${kv.key} is not namespaced: setting it would change the host's kernel for every deployment; only net.*, kernel.msg*, kernel.sem, kernel.shm* and fs.mqueue.* can be set per container`);
    }
    host.Sysctls = out;
  });
  each('security_opt', (n, p) => {
    const list = readStringList(c, n, p) ?? [];
    const ok = list.filter((opt, i) => {
      const ip = n.kind === 'seq' ? indexPath(p, i) : p;
      const pos = n.kind === 'seq' ? (n.items[i]?.pos ?? n.pos) : n.pos;
      if (!host1('security_opt', opt, ip, pos)) return false;
      if (/^seccomp[:=]/.test(opt) && !/[:=](unconfined|builtin)$/.test(opt)) {
        c.issue(ip, pos, `a seccomp profile file is not supported yet (depad would have to read and send it); remove "${opt}" to use the engine's default profile`);
        return false;
      }
      return true;
    });
    host.SecurityOpt = ok;
  });
  each('ulimits', (n, p) => { const u = readUlimits(c, n, p); if (u) host.Ulimits = u; });
  each('logging', (n, p) => { const l = readLogging(c, n, p); if (l) host.LogConfig = l; });
  each('blkio_config', (n, p) => Object.assign(host, readBlkio(c, n, p)));

  // Namespaces: private ones are fine, the host's reach it (by policy), another service's of this deployment are joined.
  const namespace = (key: 'ipc' | 'pid' | 'uts' | 'userns_mode' | 'cgroup' | 'network_mode', allowed: readonly string[]) =>
    each(key, (n, p, e) => {
      const t = readString(c, n, p);
      if (t === undefined || t === '') return;
      if (t === 'host') {
        // Allowed by the host's policy: the host's namespace.
        if (host1(key, t, p, entryPos(e)) && key !== 'uts' && key !== 'cgroup') host[({ ipc: 'IpcMode', pid: 'PidMode', userns_mode: 'UsernsMode', network_mode: 'NetworkMode' } as const)[key]] = 'host';
      }
      else if (t.startsWith('service:') && (key === 'network_mode' || key === 'ipc' || key === 'pid')) {
        // Another service's namespace: render names its current container; the update replaces both together (netns-groups.ts).
        const target = t.slice('service:'.length);
        if (target === '') c.issue(p, entryPos(e), `${key}: service: needs a service name, e.g. service:db`);
        else {
          engine.joins[key === 'network_mode' ? 'network' : key] = target;
          dependencies.push({ service: target, condition: 'service_started', path: p, pos: entryPos(e) });
        }
      }
      else if (t.startsWith('service:')) c.issue(p, entryPos(e), `${key}: ${t}: the engine shares only the network, IPC and PID namespaces of another container; remove ${key}`);
      else if (t.startsWith('container:')) c.issue(p, entryPos(e), `${key}: ${t} names a container outside the deployment, which would break the isolation between deployments; remove it`);
      else if (key === 'network_mode' && t === 'none') host.NetworkMode = 'none';
      else if (key === 'network_mode') c.issue(p, entryPos(e), `network_mode: ${t} is not supported: a deployment's services join its own networks, which keeps deployments apart; use networks: instead`);
      else if (!allowed.includes(t)) c.issue(p, entryPos(e), `${key} must be ${allowed.length > 0 ? `${allowed.join(', ')} (or host, which reaches the host)` : 'host (which reaches the host) or left out'}, found "${t}"`);
      else if (key === 'ipc') host.IpcMode = t;
      else if (key === 'cgroup') host.CgroupnsMode = t;
    });
  namespace('ipc', ['private', 'shareable', 'none']);
  namespace('pid', []);
  namespace('uts', []);
  namespace('userns_mode', []);
  namespace('cgroup', ['private']);
  namespace('network_mode', []);

  each('privileged', (n, p, e) => { if (readBool(c, n, p) === true && host1('privileged', true, p, entryPos(e))) host.Privileged = true; });
  each('use_api_socket', (n, p, e) => { if (readBool(c, n, p) === true) host1('use_api_socket', true, p, entryPos(e)); });
  for (const key of ['devices', 'device_cgroup_rules', 'gpus'] as const) {
    each(key, (n, p, e) => {
      if (n.kind === 'seq' && n.items.length === 0) return;
      const first = n.kind === 'seq' ? n.items[0] : n;
      const allowed = host1(key, first?.kind === 'scalar' ? first.text : key, p, entryPos(e));
      if (allowed && key === 'devices') {
        host.Devices = (readStringList(c, n, p) ?? []).map((d) => {
          const [from = '', to = from, perms = 'rwm'] = d.split(':');
          return { PathOnHost: from, PathInContainer: to, CgroupPermissions: perms };
        });
      }
    });
  }
  each('cgroup_parent', (n, p, e) => { const t = readString(c, n, p); if (t) host1('cgroup_parent', t, p, entryPos(e)); });
  refuse('external_links', 'external_links reach containers outside the deployment, which would break the isolation between deployments; add that service to this file, or reach it by a host address');
  refuse('volumes_from', 'volumes_from is not supported: it would follow one container of the other service, which depad replaces on updates; mount the same named volume in both services instead');
  refuse('credential_spec', 'credential_spec is for Windows containers; remove it');
  refuse('cpu_count', 'cpu_count is for Windows containers; use cpus: instead');
  refuse('cpu_percent', 'cpu_percent is for Windows containers; use cpus: instead');
  each('isolation', (n, p) => {
    const t = readString(c, n, p);
    if (t !== undefined && t !== 'default') c.issue(p, n.pos, `isolation "${t}" is for Windows containers; on Linux only "default" is valid`);
  });
  each('attach', (n, p) => void readBool(c, n, p));
  each('annotations', (n, p, e) => {
    if (readKeyValues(c, n, p, 'annotation') !== undefined) c.warning(p, e.keyPos, 'annotations do not reach Docker Engine 20.10 (API 1.41 has no annotations); they are ignored');
  });

  each('container_name', (n, p, e) => {
    const t = readString(c, n, p, { what: 'a container name' });
    if (t === undefined) return;
    if (!CONTAINER_NAME.test(t)) c.issue(p, n.pos, `container_name must be letters, digits, '_', '.' and '-', starting with a letter or digit; found "${t}"`);
    else {
      engine.aliases.push(t);
      c.warning(p, entryPos(e), `container_name ${t}: the container keeps depad's name (two deployments of this file would clash); ${t} is a network alias of the service in the deployment's networks instead`);
    }
  });
  each('links', (n, p) => {
    for (const [i, text] of (readStringList(c, n, p) ?? []).entries()) {
      const ip = indexPath(p, i);
      const pos = n.kind === 'seq' ? (n.items[i]?.pos ?? n.pos) : n.pos;
      const [service = '', alias = service, more] = text.split(':');
      if (service === '' || alias === '' || more !== undefined) {
        c.issue(ip, pos, `expected SERVICE or SERVICE:ALIAS, found "${text}"`);
        continue;
      }
      dependencies.push({ service, condition: 'service_started', path: ip, pos });
      if (alias !== service) {
        engine.links.push({ service, alias });
        c.warning(ip, pos, `links ${text}: ${alias} becomes a network alias of ${service} in the deployment's networks (every service there can use it)`);
      }
    }
  });

  const { joins, ...rest } = engine;
  const joined = Object.keys(joins).length > 0;
  const used = Object.keys(container).length > 0 || Object.keys(host).length > 0 || engine.platform !== undefined || engine.pullPolicy !== undefined || engine.aliases.length > 0 || engine.links.length > 0 || joined;
  return used ? { engine: { container, host, ...rest, ...(joined ? { joins } : {}) }, limits, dependencies } : { limits, dependencies };
}
