/**
 * One service of a config: checks its keys and reads each into the `ServiceSpec` shape. The
 * environment is finished later, once env_file contents are known.
 */
import { createHash } from 'node:crypto';
import { posix } from 'node:path';
import type { ServiceSpec } from './spec.ts';
import type { Collector, LEntry, LNode, Pos } from './nodes.ts';
import { describe, entryPos, indexPath, keyPath } from './nodes.ts';
import { checkKeys, mapEntries, readInt, readKeyValues, readString, readStringList } from './read.ts';
import type { DependencyRef, ServiceScope } from './service-parts.ts';
import { readDependsOn, readDuration, readHealthcheck, readMounts, readServiceNetworks } from './service-parts.ts';
import { readExpose, readPorts } from './service-ports.ts';
import { imageReferenceProblem, insideRoot, isIpLiteral, isSignal, parseRestart, splitCommand } from './values.ts';
import { compareStrings, sortedRecord } from './freeze.ts';
import { DEFAULT_SERVICE_DEPAD, readServiceDepad } from './service-depad.ts';
import { readBuild } from './build.ts';
import { ENGINE_KEYS, readServiceEngine } from './service-engine.ts';
import { readDeployKeys, replicaProblem } from './service-deploy.ts';
import { hostAccessProblem } from './host-access.ts';
import { readSecretMounts } from './secrets.ts';

/** The keys a service may have. */
export const SERVICE_KEYS = [
  'image', 'command', 'entrypoint', 'environment', 'env_file', 'ports', 'expose', 'volumes', 'networks', 'depends_on',
  'healthcheck', 'restart', 'deploy', 'labels', 'user', 'working_dir', 'tmpfs', 'cap_add', 'cap_drop', 'extra_hosts',
  'stop_grace_period', 'stop_signal', 'x-depad', 'build',
  'secrets', 'configs',
] as const;

const SPECIAL_KEYS: Readonly<Record<string, string>> = {
  post_start: 'post_start hooks are not supported yet; run the command as an x-depad workflow (x-depad.workflows) instead',
  pre_stop: 'pre_stop hooks are not supported yet; run the command as an x-depad workflow (x-depad.workflows) instead',
  pre_start: 'pre_start containers are not supported yet; run a one-shot service that this one depends on with condition: service_completed_successfully',
  provider: 'provider services run an external plugin, which depad does not do; remove the service or give it an image:',
  models: 'models (Docker Model Runner) are not supported; remove models:',
  label_file: 'label_file is not supported yet; write the labels under labels:',
};

/** An `env_file` reference: a path relative to the config file's directory, normalised. */
export interface EnvFileRef {
  readonly path: string;
  readonly required: boolean;
  readonly keyPath: string;
  readonly pos: Pos;
  /** `format: raw`: each line is `KEY=VALUE` taken as written (no quotes, escapes or comments after values). */
  readonly raw?: true;
}

/** A service as read from the file, before env_file contents are merged into its environment. */
export interface ServiceDraft {
  readonly spec: Omit<ServiceSpec, 'environment'>;
  readonly envFiles: readonly EnvFileRef[];
  /** `environment` entries in file order; they override env_file entries. */
  readonly environment: readonly (readonly [string, string])[];
  readonly dependencies: readonly DependencyRef[];
  readonly keyPos: Pos;
  /** Keys of the anonymous volumes its mounts use (top-level volumes the file did not declare). */
  readonly anonymous?: readonly string[];
}

/** The key of the anonymous volume of `service` mounted at `target`: `<service>_anon_<8 hex of the target's hash>`. */
export function anonymousVolumeName(service: string, target: string): string {
  return `${service}_anon_${createHash('sha256').update(target).digest('hex').slice(0, 8)}`;
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/** Reads the service `entry` (its key is the service name, already checked by the caller). */
export function readService(s: ServiceScope, entry: LEntry, path: string): ServiceDraft {
  const { c } = s;
  const name = entry.key;
  const entries = mapEntries(c, entry.value, path, 'a map of service settings such as image:');
  const keys = checkKeys(c, entries ?? [], path, {
    supported: [...SERVICE_KEYS, ...ENGINE_KEYS, 'scale'],
    special: SPECIAL_KEYS,
  });
  const at = (key: string) => keyPath(path, key);
  const get = (key: (typeof SERVICE_KEYS)[number]): LNode | undefined => keys.get(key)?.value;
  const spec: Mutable<Omit<ServiceSpec, 'environment'>> = {
    name,
    image: '',
    ports: [],
    expose: [],
    volumes: [],
    networks: {},
    dependsOn: {},
    resources: {},
    labels: {},
    tmpfs: [],
    capAdd: [],
    capDrop: [],
    extraHosts: [],
    depad: DEFAULT_SERVICE_DEPAD,
  };

  const image = keys.get('image');
  const build = keys.get('build');
  if (build !== undefined) {
    const b = readBuild(s, build.value, at('build'));
    if (b !== undefined) spec.build = b;
  }
  if (image === undefined && build === undefined && entries !== undefined) {
    c.issue(path, entry.keyPos, `service '${name}' has no image: give the image to run (image: nginx:1.27) or how to build it (build: ./app)`);
  } else if (image !== undefined) {
    const ref = readString(c, image.value, at('image'), { what: 'an image reference' });
    const problem = ref === undefined ? undefined : imageReferenceProblem(ref);
    if (problem !== undefined) c.issue(at('image'), entryPos(image), problem);
    else if (ref !== undefined) spec.image = ref;
  }
  for (const key of ['command', 'entrypoint'] as const) {
    const node = get(key);
    const words = node === undefined ? undefined : readCommand(s, node, at(key));
    if (words !== undefined) spec[key] = words;
  }
  const environment: [string, string][] = [];
  const envNode = get('environment');
  // `KEY` (list) or `KEY:` (null, map) takes KEY from the environment the file is read with, and is dropped when unset, as in compose.
  const inherited = new Set<string>();
  if (envNode?.kind === 'map') for (const e of envNode.entries) if (e.value.kind === 'scalar' && e.value.value === null) inherited.add(e.key);
  if (envNode?.kind === 'seq') for (const item of envNode.items) if (item.kind === 'scalar' && typeof item.value === 'string' && !item.value.includes('=')) inherited.add(item.value);
  for (const kv of envNode ? (readKeyValues(c, envNode, at('environment'), 'environment variable') ?? []) : []) {
    if (kv.key === '' || kv.key.includes('=') || /\s/.test(kv.key)) c.issue(kv.path, kv.pos, `"${kv.key}" is not a valid environment variable name`);
    else if (!inherited.has(kv.key)) environment.push([kv.key, kv.value]);
    else {
      const value = c.lookup(kv.key);
      if (value !== undefined) environment.push([kv.key, value]);
    }
  }
  const envFileNode = get('env_file');
  const envFiles = envFileNode ? readEnvFiles(s, envFileNode, at('env_file')) : [];

  const ports = get('ports');
  if (ports) spec.ports = readPorts(s, ports, at('ports'));
  const expose = get('expose');
  if (expose) spec.expose = readExpose(s, expose, at('expose'));
  const volumes = get('volumes');
  const tmpfsSink: string[] = [];
  const anonymous: string[] = [];
  if (volumes) {
    // Anonymous volumes (`- /data`) become volumes of the deployment, named after the service and the target.
    spec.volumes = readMounts({ ...s, tmpfsSink }, volumes, at('volumes')).map((m) => {
      if (m.type !== 'volume' || m.source !== '') return m;
      const key = anonymousVolumeName(name, m.target);
      if (s.volumes.has(key)) c.issue(at('volumes'), volumes.pos, `the anonymous volume for ${m.target} would be named ${key}, which the top-level volumes: declare too; rename that one`);
      anonymous.push(key);
      return { ...m, source: key };
    });
  }
  const networks = get('networks');
  const joined = networks ? readServiceNetworks(s, networks, at('networks')) : {};
  spec.networks = Object.keys(joined).length > 0 ? sortedRecord(Object.entries(joined)) : { default: { aliases: [] } };
  const depends = get('depends_on');
  const dependencies = depends ? readDependsOn(s, depends, at('depends_on')) : [];
  spec.dependsOn = sortedRecord(dependencies.map((d) => [d.service, { condition: d.condition }] as const));
  const health = get('healthcheck');
  if (health) {
    const hc = readHealthcheck(s, health, at('healthcheck'));
    if (hc !== undefined) spec.healthcheck = hc;
  }
  const restart = get('restart');
  if (restart) {
    const text = readString(c, restart, at('restart'), { what: 'a restart policy such as "unless-stopped"' });
    const parsed = text === undefined ? undefined : parseRestart(text);
    if (parsed?.ok) spec.restart = parsed.value;
    else if (parsed) c.issue(at('restart'), restart.pos, parsed.error);
  }
  const deploy = get('deploy');
  const deployed = deploy ? readDeployKeys(c, deploy, at('deploy'), spec.ports.length > 0) : undefined;
  if (deployed) spec.resources = deployed.limits;
  if (deployed?.restart) spec.restart = deployed.restart;
  if (deployed?.rollout) spec.rollout = deployed.rollout;
  const scale = keys.get('scale');
  const scaled = scale && scale.value.kind === 'scalar' && scale.value.value !== null ? readInt(c, scale.value, at('scale'), 0) : undefined;
  const replicas = deployed?.replicas;
  if (scaled !== undefined && replicas !== undefined && scaled !== replicas.value) c.issue(replicas.path, replicas.pos, `deploy.replicas (${replicas.value}) differs from scale (${scaled}); give it once`);
  const count = replicas?.value ?? scaled;
  if (count !== undefined && count !== 1) spec.replicas = count; // 0: the service runs no container until scaled
  const countAt = { path: replicas?.path ?? at('scale'), pos: replicas?.pos ?? (scale ? entryPos(scale) : entry.keyPos) };
  const engineRead = readServiceEngine(c, keys, path);
  const limits = { ...spec.resources };
  for (const [field, read] of Object.entries(engineRead.limits) as [keyof typeof limits, { value: number; path: string; pos: Pos }][]) {
    const given = limits[field];
    if (given !== undefined && given !== read.value) c.issue(read.path, read.pos, `${read.path} (${read.value}) differs from deploy.resources.limits (${given}); give it once`);
    else limits[field] = read.value;
  }
  spec.resources = limits;
  const ownNetwork = engineRead.engine?.host.NetworkMode;
  if (ownNetwork === 'none' || ownNetwork === 'host') {
    // No network of the deployment's (none, or the host's by policy): nothing to join, publish or expose (compose refuses those with it too).
    for (const key of ['networks', 'ports', 'expose'] as const) {
      const e = keys.get(key);
      if (e) c.issue(at(key), e.keyPos, `network_mode: ${ownNetwork} gives the container ${ownNetwork === 'none' ? 'no network' : "the host's network"}, so it cannot have ${key}; remove one of them`);
    }
    spec.networks = {};
  }
  const sharedNetwork = engineRead.engine?.joins?.network;
  if (sharedNetwork !== undefined) {
    // Another service's network stack: its addresses, ports and names are that service's (the engine refuses these with it).
    for (const key of ['networks', 'ports', 'expose', 'hostname', 'domainname', 'mac_address', 'dns', 'dns_search', 'dns_opt', 'extra_hosts', 'links', 'container_name'] as const) {
      const e = keys.get(key);
      if (e) c.issue(at(key), e.keyPos, `network_mode: service:${sharedNetwork} shares ${sharedNetwork}'s network stack, so ${key} belongs on ${sharedNetwork}; move it there or remove it`);
    }
    spec.networks = {};
  }
  const swap = engineRead.engine?.host.MemorySwap;
  const swapEntry = keys.get('memswap_limit');
  if (swap !== undefined && swap !== -1 && swapEntry && (limits.memoryBytes === undefined || swap < limits.memoryBytes)) {
    c.issue(at('memswap_limit'), entryPos(swapEntry), limits.memoryBytes === undefined ? 'memswap_limit needs a memory limit (mem_limit or deploy.resources.limits.memory), as the engine does' : `memswap_limit (${swap}) is memory plus swap, so it must be at least the memory limit (${limits.memoryBytes})`);
  }
  const linked = engineRead.dependencies.filter((d) => !(d.service in spec.dependsOn));
  if (linked.length > 0) spec.dependsOn = sortedRecord([...Object.entries(spec.dependsOn), ...linked.map((d) => [d.service, { condition: d.condition }] as const)]);
  if (engineRead.engine || deployed?.memoryReservation !== undefined) {
    const base = engineRead.engine ?? { container: {}, host: {}, aliases: [], links: [] };
    spec.engine = deployed?.memoryReservation === undefined ? base : { ...base, host: { MemoryReservation: deployed.memoryReservation, ...base.host } };
  }
  const labels = get('labels');
  if (labels) spec.labels = labelsOf(c, labels, at('labels'));
  const user = get('user');
  if (user) {
    const text = readString(c, user, at('user'), { numbers: true, what: 'a user such as "1000" or "app:app"' });
    if (text === '') c.issue(at('user'), user.pos, 'user must not be empty; remove the key to use the image\'s user');
    else if (text !== undefined) spec.user = text;
  }
  const workingDir = get('working_dir');
  if (workingDir) {
    const text = readString(c, workingDir, at('working_dir'));
    if (text !== undefined && !posix.isAbsolute(text)) c.issue(at('working_dir'), workingDir.pos, `working_dir must be an absolute path inside the container, found "${text}"`);
    else if (text !== undefined) spec.workingDir = text;
  }
  const tmpfs = get('tmpfs');
  if (tmpfs) {
    const list = readStringList(c, tmpfs, at('tmpfs'), { single: true }) ?? [];
    spec.tmpfs = list.filter((p, i) => {
      const good = posix.isAbsolute(p.split(':')[0] ?? '');
      const itemPath = tmpfs.kind === 'seq' ? indexPath(at('tmpfs'), i) : at('tmpfs');
      const pos = tmpfs.kind === 'seq' ? (tmpfs.items[i]?.pos ?? tmpfs.pos) : tmpfs.pos;
      if (!good) c.issue(itemPath, pos, `a tmpfs path must be absolute, such as /tmp or /run:size=64m; found "${p}"`);
      return good;
    });
  }
  spec.tmpfs = [...spec.tmpfs, ...tmpfsSink];
  for (const [key, field] of [['cap_add', 'capAdd'], ['cap_drop', 'capDrop']] as const) {
    const node = get(key);
    if (node) spec[field] = readStringList(c, node, at(key)) ?? [];
  }
  spec.capAdd.forEach((cap, i) => {
    const problem = hostAccessProblem({ key: 'cap_add', value: cap });
    const node = get('cap_add');
    if (problem !== undefined && node) c.issue(indexPath(at('cap_add'), i), node.kind === 'seq' ? (node.items[i]?.pos ?? node.pos) : node.pos, problem);
  });
  const extraHosts = get('extra_hosts');
  if (extraHosts) spec.extraHosts = readExtraHosts(s, extraHosts, at('extra_hosts'));
  const grace = get('stop_grace_period');
  if (grace) {
    const ms = readDuration(c, grace, at('stop_grace_period'));
    if (ms !== undefined) spec.stopGracePeriodMs = ms;
  }
  const signal = get('stop_signal');
  if (signal) {
    const text = readString(c, signal, at('stop_signal'), { numbers: true });
    if (text !== undefined && !isSignal(text)) c.issue(at('stop_signal'), signal.pos, `stop_signal must be a signal name such as SIGTERM or SIGINT, found "${text}"`);
    else if (text !== undefined) spec.stopSignal = text;
  }
  // After ports: a route's port is published when the service did not list it.
  const ports2 = [...spec.ports];
  spec.depad = readServiceDepad(c, get('x-depad'), at('x-depad'), ports2);
  spec.ports = ports2;
  const secretMounts = (['secrets', 'configs'] as const).flatMap((key) => {
    const node = get(key);
    return node ? readSecretMounts(c, node, at(key), key, s[key] ?? new Set()) : [];
  });
  if (secretMounts.length > 0) spec.secretMounts = secretMounts;
  if ((spec.replicas ?? 1) > 1) {
    // What several containers of one service cannot share: say why, and what to write instead.
    const why = replicaProblem(spec as ServiceSpec, engineRead.engine);
    if (why !== undefined) c.issue(countAt.path, countAt.pos, `${spec.replicas} replicas: ${why}`);
  }
  if (sharedNetwork !== undefined && spec.depad.route !== undefined) {
    c.issue(at('x-depad'), keys.get('x-depad')?.keyPos ?? entry.keyPos, `network_mode: service:${sharedNetwork} listens in ${sharedNetwork}'s network stack, so the route goes there: put x-depad.expose on ${sharedNetwork} (with the port this service listens on)`);
  }
  if (spec.engine?.host.NetworkMode === 'none' && spec.depad.route !== undefined) {
    c.issue(at('x-depad'), keys.get('x-depad')?.keyPos ?? entry.keyPos, 'network_mode: none gives the container no network, so the proxy cannot route to it; remove x-depad.expose or network_mode');
  }
  if (spec.depad.route?.kind === 'http' && !/^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/.test(name)) {
    c.issue(at('x-depad'), keys.get('x-depad')?.keyPos ?? entry.keyPos, `an HTTP route names the service in its hostname (${name}.<deployment>.<domain>), so the service name must be lowercase letters, digits and '-'; rename the service or use expose: tcp`);
  }
  return { spec, anonymous, envFiles, environment, dependencies: [...dependencies, ...engineRead.dependencies.filter((d) => !dependencies.some((x) => x.service === d.service))], keyPos: entry.keyPos };
}

function readCommand(s: ServiceScope, node: LNode, path: string): string[] | undefined {
  const { c } = s;
  if (node.kind === 'scalar' && node.value === null) return undefined;
  if (node.kind === 'scalar' && typeof node.value === 'string') {
    const text = c.text(node, path);
    if (text === undefined) return undefined;
    const words = splitCommand(text);
    if (!words.ok) c.issue(path, node.pos, words.error);
    return words.ok ? words.value : undefined;
  }
  if (node.kind === 'seq') return readStringList(c, node, path, { numbers: true });
  c.issue(path, node.pos, `expected a command string or a list of strings, found ${describe(node)}`);
  return undefined;
}

function readEnvFiles(s: ServiceScope, node: LNode, path: string): EnvFileRef[] {
  const { c } = s;
  const items: [LNode, string][] = node.kind === 'seq' ? node.items.map((item, i) => [item, indexPath(path, i)]) : [[node, path]];
  const out: EnvFileRef[] = [];
  for (const [item, itemPath] of items) {
    let pathNode = item;
    let required = true;
    let raw = false;
    let nodePath = itemPath;
    if (item.kind === 'map') {
      const keys = checkKeys(c, item.entries, itemPath, { supported: ['path', 'required', 'format'] });
      const format = keys.get('format');
      const f = format ? readString(c, format.value, keyPath(itemPath, 'format')) : undefined;
      if (f === 'raw') raw = true;
      else if (f !== undefined && format) c.issue(keyPath(itemPath, 'format'), entryPos(format), `env_file format must be raw (values taken as written), or left out; found "${f}"`);
      const p = keys.get('path');
      if (p === undefined) {
        c.issue(itemPath, item.pos, 'an env_file entry in long syntax needs path:');
        continue;
      }
      const req = keys.get('required');
      if (req && req.value.kind === 'scalar' && typeof req.value.value === 'boolean') required = req.value.value;
      else if (req) c.issue(keyPath(itemPath, 'required'), entryPos(req), `expected true or false, found ${describe(req.value)}`);
      pathNode = p.value;
      nodePath = keyPath(itemPath, 'path');
    }
    const text = readString(c, pathNode, nodePath, { what: 'a path relative to the config file' });
    if (text === undefined) continue;
    const inside = insideRoot(text);
    if (!inside.ok) {
      c.issue(nodePath, pathNode.pos, `env_file must be inside the config file's directory, given relative to it (such as "./app.env"); ${inside.error}`);
      continue;
    }
    out.push({ path: inside.value, required, keyPath: nodePath, pos: pathNode.pos, ...(raw ? { raw: true as const } : {}) });
  }
  return out;
}

/** Labels (map or `k=v` list); keys starting with `depad.` are reserved. Sorted. */
export function labelsOf(c: Collector, node: LNode, path: string): Record<string, string> {
  const out: [string, string][] = [];
  for (const kv of readKeyValues(c, node, path, 'label') ?? []) {
    if (kv.key === '') c.issue(kv.path, kv.pos, 'label keys must not be empty');
    else if (kv.key.startsWith('depad.')) c.issue(kv.path, kv.pos, `label keys starting with "depad." are reserved for depad's own labels; rename "${kv.key}"`);
    else out.push([kv.key, kv.value]);
  }
  return sortedRecord(out);
}

/** `extra_hosts`: a list of `host:ip`/`host=ip` or a map; `host:ip` entries. */
export function readExtraHosts(s: ServiceScope, node: LNode, path: string): string[] {
  const { c } = s;
  const out: string[] = [];
  const add = (host: string, ip: string, itemPath: string, pos: Pos): void => {
    // `host=ip1,ip2` (compose): one entry per address.
    if (ip.includes(',')) return ip.split(',').forEach((one) => add(host, one.trim(), itemPath, pos));
    const addr = ip.replace(/^\[(.*)\]$/, '$1');
    if (host === '' || /[\s:=]/.test(host) || !(isIpLiteral(addr) || addr === 'host-gateway')) {
      c.issue(itemPath, pos, `expected "hostname:ip" with an IP address (or host-gateway), such as "db.local:10.0.0.5"; found "${host}:${ip}"`);
    } else {
      out.push(`${host}:${addr}`);
    }
  };
  if (node.kind === 'seq') {
    node.items.forEach((item, i) => {
      const itemPath = indexPath(path, i);
      const text = readString(c, item, itemPath, { what: 'a "hostname:ip" string' });
      if (text === undefined) return;
      const sep = /[:=]/.exec(text);
      add(sep ? text.slice(0, sep.index) : text, sep ? text.slice(sep.index + 1) : '', itemPath, item.pos);
    });
    return out;
  }
  for (const entry of [...(mapEntries(c, node, path, 'a list of "hostname:ip" or a map of hostname → ip') ?? [])].sort((a, b) => compareStrings(a.key, b.key))) {
    const ips = entry.value.kind === 'seq' ? readStringList(c, entry.value, keyPath(path, entry.key)) : [readString(c, entry.value, keyPath(path, entry.key), { what: 'an IP address' })];
    for (const ip of ips ?? []) if (ip !== undefined) add(entry.key, ip, keyPath(path, entry.key), entryPos(entry));
  }
  return out;
}
