/**
 * Readers for the structured service keys: volumes, networks, depends_on, healthcheck and deploy
 * (ports and expose: service-ports.ts).
 */
import { posix } from 'node:path';
import type { DependsCondition, HealthcheckSpec, MountSpec, ResourceLimits } from './spec.ts';
import type { Collector, LNode, Pos } from './nodes.ts';
import { describe, entryPos, indexPath, keyPath } from './nodes.ts';
import { checkKeys, mapEntries, readBool, readInt, readString, readStringList } from './read.ts';
import { ENDPOINT_IGNORED, ENDPOINT_SPECIAL } from './network-keys.ts';
import { parseShortOptions, readLongOptions, readTmpfsMount } from './mount-options.ts';
import { checkHostMount, type HostPolicy } from './host-access.ts';
import { insideRoot, parseCpus, parseDuration, parseMemory } from './values.ts';

/** What service readers need besides the node: the collector and the declared top-level names. */
export interface ServiceScope {
  readonly c: Collector;
  readonly networks: ReadonlySet<string>;
  readonly volumes: ReadonlySet<string>;
  /** Where long-syntax `type: tmpfs` mounts go (as `tmpfs:` entries, `path:size=…,mode=…`); unset: they are refused. */
  readonly tmpfsSink?: string[];
  /** The host's policy for host-reaching keys and bind mounts (src/config/host-access.ts). */
  readonly policy: HostPolicy;
  /** Names defined under the top-level `secrets:` and `configs:`. */
  readonly secrets?: ReadonlySet<string>;
  readonly configs?: ReadonlySet<string>;
  /** The config file's directory: a relative bind source that leaves it (`../backend`) is a host path resolved against it; unset: refused. */
  readonly configDir?: string;
}

/** A `depends_on` entry, kept with its location for the cross-service checks. */
export interface DependencyRef {
  readonly service: string;
  readonly condition: DependsCondition;
  readonly path: string;
  readonly pos: Pos;
  /** `required: false`: the dependency may be absent from the file (then it is dropped with a warning). */
  readonly optional?: true;
}

const BIND_OUTSIDE = "bind mounts must stay inside the deployment's root directory: use a path relative to the config file, such as \"./data\"";

/** `volumes`: named volumes declared at top level and bind mounts inside the deployment root. */
export function readMounts(s: ServiceScope, node: LNode, path: string): MountSpec[] {
  const { c } = s;
  if (node.kind !== 'seq') {
    c.issue(path, node.pos, `expected a list of mounts such as "data:/var/lib/data" or "./conf:/etc/app:ro", found ${describe(node)}`);
    return [];
  }
  const out: MountSpec[] = [];
  const targets = new Set<string>();
  node.items.forEach((item, i) => {
    const itemPath = indexPath(path, i);
    const mount = item.kind === 'map' ? readLongMount(s, item, itemPath) : readShortMount(s, item, itemPath);
    if (mount === undefined) return;
    if (targets.has(mount.target)) c.issue(itemPath, item.pos, `two mounts have the target ${mount.target}; each target may be mounted once`);
    else out.push(mount);
    targets.add(mount.target);
  });
  return out;
}

function readShortMount(s: ServiceScope, item: LNode, path: string): MountSpec | undefined {
  const { c } = s;
  const text = readString(c, item, path, { what: 'a mount such as "data:/var/lib/data"' });
  if (text === undefined) return undefined;
  const parts = text.split(':');
  // `/data` or `/data:ro`: an anonymous volume (source ''), made per deployment (see anonymousVolumes).
  if ((parts.length === 1 || (parts.length === 2 && parseShortOptions(parts[1] ?? '').ok)) && (parts[0] ?? '').startsWith('/')) {
    const options = parseShortOptions(parts[1] ?? 'rw');
    const mount = mountOf(s, '', parts[0] ?? '', options.ok && options.readOnly, path, item.pos, path, item.pos, 'volume');
    return mount === undefined || !options.ok ? mount : { ...mount, ...options.options };
  }
  if (parts.length === 1) {
    c.issue(path, item.pos, `expected SOURCE:TARGET[:ro], such as "data:/var/lib/data", found "${text}"`);
    return undefined;
  }
  if (parts.length > 3) {
    c.issue(path, item.pos, `expected SOURCE:TARGET[:ro], such as "data:/var/lib/data", found "${text}"`);
    return undefined;
  }
  const [source = '', target = '', mode] = parts;
  const options = mode === undefined ? { ok: true as const, readOnly: false, options: {} } : parseShortOptions(mode);
  if (!options.ok) {
    c.issue(path, item.pos, options.error);
    return undefined;
  }
  const mount = mountOf(s, source, target, options.readOnly, path, item.pos, path, item.pos, undefined);
  return mount === undefined ? undefined : { ...mount, ...options.options };
}

function readLongMount(s: ServiceScope, item: LNode, path: string): MountSpec | undefined {
  const { c } = s;
  const keys = checkKeys(c, mapEntries(c, item, path) ?? [], path, { supported: ['type', 'source', 'target', 'read_only', 'bind', 'volume', 'tmpfs', 'consistency'] });
  const typeEntry = keys.get('type');
  if (typeEntry === undefined) {
    c.issue(path, item.pos, 'a mount in long syntax needs type: volume or type: bind');
    return undefined;
  }
  const type = readString(c, typeEntry.value, keyPath(path, 'type'));
  if (type === undefined) return undefined;
  if (type === 'tmpfs' && s.tmpfsSink) {
    readTmpfsMount(s.c, keys, path, item.pos, s.tmpfsSink);
    return undefined;
  }
  if (type !== 'volume' && type !== 'bind') {
    const extra = type === 'tmpfs' ? '; use the service key tmpfs: for tmpfs mounts' : '';
    c.issue(keyPath(path, 'type'), entryPos(typeEntry), `mount type must be volume or bind, found "${type}"${extra}`);
    return undefined;
  }
  const sourceEntry = keys.get('source');
  const targetEntry = keys.get('target');
  if (targetEntry === undefined) {
    c.issue(path, item.pos, 'a mount needs target: the absolute path inside the container');
    return undefined;
  }
  if (sourceEntry === undefined && type === 'bind') {
    c.issue(path, item.pos, 'a bind mount needs source: a path relative to the config file, such as "./data"');
    return undefined;
  }
  const source = sourceEntry === undefined ? '' : readString(c, sourceEntry.value, keyPath(path, 'source'));
  const target = readString(c, targetEntry.value, keyPath(path, 'target'));
  const roEntry = keys.get('read_only');
  const readOnly = roEntry ? readBool(c, roEntry.value, keyPath(path, 'read_only')) : false;
  const options = readLongOptions(c, keys, path, type);
  if (source === undefined || target === undefined || readOnly === undefined || options === undefined) return undefined;
  const mount = mountOf(s, source, target, readOnly, keyPath(path, 'source'), sourceEntry ? entryPos(sourceEntry) : item.pos, keyPath(path, 'target'), entryPos(targetEntry), type);
  return mount === undefined ? undefined : { ...mount, ...options };
}

function mountOf(
  s: ServiceScope,
  source: string,
  target: string,
  readOnly: boolean,
  sourcePath: string,
  sourcePos: Pos,
  targetPath: string,
  targetPos: Pos,
  type: 'volume' | 'bind' | undefined,
): MountSpec | undefined {
  const { c } = s;
  let ok = true;
  if (!posix.isAbsolute(target)) {
    c.issue(targetPath, targetPos, `mount target must be an absolute path inside the container, such as /data; found "${target}"`);
    ok = false;
  }
  const looksLikePath = source.startsWith('.') || source.startsWith('/') || source.startsWith('~') || source.includes('/');
  if (type === 'bind' || (type === undefined && looksLikePath)) {
    const inside = insideRoot(source);
    if (!inside.ok && (posix.isAbsolute(source) || source.startsWith('~'))) {
      const onHost = checkHostMount(c, s.policy, source, readOnly, sourcePath, sourcePos);
      return ok && onHost !== undefined ? { type: 'bind', source: onHost, target: posix.normalize(target), readOnly, onHost: true } : undefined;
    }
    if (!inside.ok && s.configDir !== undefined && source !== '' && (type === 'bind' || source.startsWith('.'))) {
      // `../backend`: a path on the host outside the deployment's files, like an absolute one.
      const onHost = checkHostMount(c, s.policy, posix.resolve(s.configDir, source), readOnly, sourcePath, sourcePos, source);
      return ok && onHost !== undefined ? { type: 'bind', source: onHost, target: posix.normalize(target), readOnly, onHost: true, outside: source } : undefined;
    }
    if (!inside.ok) {
      c.issue(sourcePath, sourcePos, `${BIND_OUTSIDE}; ${inside.error}`);
      return undefined;
    }
    if (type === undefined && !source.startsWith('.')) {
      c.issue(sourcePath, sourcePos, `a bind-mount source must start with "./", e.g. "./${inside.value}"`);
      return undefined;
    }
    return ok ? { type: 'bind', source: inside.value, target: posix.normalize(target), readOnly } : undefined;
  }
  if (source === '') return ok ? { type: 'volume', source: '', target: posix.normalize(target), readOnly } : undefined;
  if (!s.volumes.has(source)) {
    c.issue(sourcePath, sourcePos, `volume '${source}' is not declared; add it under the top-level volumes: key (bind mounts start with "./")`);
    return undefined;
  }
  return ok ? { type: 'volume', source, target: posix.normalize(target), readOnly } : undefined;
}

/** `networks`: a list of names or a map name → null | {aliases}; each declared at top level or `default`. */
export function readServiceNetworks(s: ServiceScope, node: LNode, path: string): Record<string, { aliases: string[]; ipv4Address?: string }> {
  const { c } = s;
  const out: Record<string, { aliases: string[]; ipv4Address?: string }> = {};
  const use = (name: string, aliases: string[], itemPath: string, pos: Pos, ipv4Address?: string) => {
    if (name !== 'default' && !s.networks.has(name)) {
      c.issue(itemPath, pos, `network '${name}' is not declared; add it under the top-level networks: key`);
      return;
    }
    out[name] = ipv4Address === undefined ? { aliases } : { aliases, ipv4Address };
  };
  if (node.kind === 'seq') {
    node.items.forEach((item, i) => {
      const itemPath = indexPath(path, i);
      const name = readString(c, item, itemPath, { what: 'a network name' });
      if (name !== undefined) use(name, [], itemPath, item.pos);
    });
    return out;
  }
  const entries = mapEntries(c, node, path, 'a list of network names or a map of them');
  for (const entry of entries ?? []) {
    const entryPath = keyPath(path, entry.key);
    const keys = checkKeys(c, mapEntries(c, entry.value, entryPath) ?? [], entryPath, { supported: ['aliases', 'ipv4_address', ...ENDPOINT_IGNORED], special: ENDPOINT_SPECIAL });
    const aliasEntry = keys.get('aliases');
    const aliases = aliasEntry ? readStringList(c, aliasEntry.value, keyPath(entryPath, 'aliases')) : [];
    const addressEntry = keys.get('ipv4_address');
    const ipv4Address = addressEntry ? readString(c, addressEntry.value, keyPath(entryPath, 'ipv4_address'), { what: 'an IPv4 address' })?.trim() : undefined;
    if (aliases !== undefined) use(entry.key, aliases, entryPath, entry.keyPos, ipv4Address);
  }
  return out;
}

const CONDITIONS: readonly DependsCondition[] = ['service_started', 'service_healthy', 'service_completed_successfully'];

/** `depends_on`: a list of service names or a map name → {condition, required: true}. */
export function readDependsOn(s: ServiceScope, node: LNode, path: string): DependencyRef[] {
  const { c } = s;
  const out: DependencyRef[] = [];
  if (node.kind === 'seq') {
    node.items.forEach((item, i) => {
      const itemPath = indexPath(path, i);
      const name = readString(c, item, itemPath, { what: 'a service name' });
      if (name !== undefined) out.push({ service: name, condition: 'service_started', path: itemPath, pos: item.pos });
    });
    return out;
  }
  for (const entry of mapEntries(c, node, path, 'a list of service names or a map of them') ?? []) {
    const entryPath = keyPath(path, entry.key);
    const keys = checkKeys(c, mapEntries(c, entry.value, entryPath) ?? [], entryPath, { supported: ['condition', 'required', 'restart'] });
    const restartEntry = keys.get('restart');
    if (restartEntry) readBool(c, restartEntry.value, keyPath(entryPath, 'restart'));
    let condition: DependsCondition = 'service_started';
    const condEntry = keys.get('condition');
    if (condEntry) {
      const text = readString(c, condEntry.value, keyPath(entryPath, 'condition'));
      if (text === undefined) continue;
      const found = CONDITIONS.find((x) => x === text);
      if (found === undefined) {
        c.issue(keyPath(entryPath, 'condition'), entryPos(condEntry), `condition must be ${CONDITIONS.join(', ')}; found "${text}"`);
        continue;
      }
      condition = found;
    }
    const reqEntry = keys.get('required');
    if (reqEntry) {
      const required = readBool(c, reqEntry.value, keyPath(entryPath, 'required'));
      if (required === false) {
        out.push({ service: entry.key, condition, path: entryPath, pos: entry.keyPos, optional: true });
        continue;
      }
    }
    out.push({ service: entry.key, condition, path: entryPath, pos: entry.keyPos });
  }
  return out;
}

/** `healthcheck`: test, interval, timeout, start_period, retries, or disable: true. */
export function readHealthcheck(s: ServiceScope, node: LNode, path: string): HealthcheckSpec | 'disabled' | undefined {
  const { c } = s;
  const entries = mapEntries(c, node, path);
  if (entries === undefined) return undefined;
  const keys = checkKeys(c, entries, path, { supported: ['test', 'interval', 'timeout', 'start_period', 'retries', 'disable', 'start_interval'] });
  const disableEntry = keys.get('disable');
  const testEntry = keys.get('test');
  if (disableEntry && readBool(c, disableEntry.value, keyPath(path, 'disable')) === true) {
    if (testEntry) c.issue(keyPath(path, 'test'), testEntry.keyPos, 'healthcheck has both disable: true and a test; remove one of them');
    return 'disabled';
  }
  // No test: the image's own test with these timings (an empty Test inherits it), as compose does.
  const test = testEntry === undefined ? [] : readHealthTest(c, testEntry.value, keyPath(path, 'test'));
  // start_interval: Engine API 1.41 has no StartInterval; it is checked and not sent (see README).
  const startInterval = keys.get('start_interval');
  if (startInterval) readDuration(c, startInterval.value, keyPath(path, 'start_interval'));
  const spec: { -readonly [K in keyof HealthcheckSpec]: HealthcheckSpec[K] } = { test: test ?? [] };
  const durations = [['interval', 'intervalMs'], ['timeout', 'timeoutMs'], ['start_period', 'startPeriodMs']] as const;
  for (const [key, field] of durations) {
    const entry = keys.get(key);
    if (entry === undefined) continue;
    const ms = readDuration(c, entry.value, keyPath(path, key));
    if (ms !== undefined) spec[field] = ms;
  }
  const retries = keys.get('retries');
  if (retries) {
    const n = readInt(c, retries.value, keyPath(path, 'retries'), 0);
    if (n !== undefined) spec.retries = n;
  }
  return test === undefined ? undefined : spec;
}

function readHealthTest(c: Collector, node: LNode, path: string): string[] | undefined {
  if (node.kind === 'scalar' && typeof node.value === 'string') {
    const text = c.text(node, path);
    return text === undefined ? undefined : ['CMD-SHELL', text];
  }
  const list = readStringList(c, node, path, { numbers: true });
  if (list === undefined) return undefined;
  const [head, ...rest] = list;
  const ok = (head === 'CMD' && rest.length >= 1) || (head === 'CMD-SHELL' && rest.length === 1) || (head === 'NONE' && rest.length === 0);
  if (!ok) {
    c.issue(path, node.pos, 'a healthcheck test list is ["CMD", program, args…], ["CMD-SHELL", "command"] or ["NONE"]');
    return undefined;
  }
  return list;
}

/** A duration string such as `30s` → milliseconds. */
export function readDuration(c: Collector, node: LNode, path: string): number | undefined {
  if (node.kind === 'scalar' && typeof node.value === 'number') {
    c.issue(path, node.pos, `expected a duration with a unit, such as "${node.text}s", found the number ${node.text}`);
    return undefined;
  }
  const text = readString(c, node, path, { what: 'a duration such as "30s"' });
  if (text === undefined) return undefined;
  const parsed = parseDuration(text);
  if (!parsed.ok) c.issue(path, node.pos, parsed.error);
  return parsed.ok ? parsed.value : undefined;
}

/** A map of `cpus`, `memory`, `pids` (a service's `deploy.resources.limits`, a deployment's `x-depad.resources`). */
export function readLimits(c: Collector, node: LNode, limPath: string): ResourceLimits {
  const limits: { -readonly [K in keyof ResourceLimits]: ResourceLimits[K] } = {};
  const lim = checkKeys(c, mapEntries(c, node, limPath) ?? [], limPath, { supported: ['cpus', 'memory', 'pids'] });
  const scalarOf = (key: string): [string | number, Pos] | undefined => {
    const entry = lim.get(key);
    if (entry === undefined) return undefined;
    const v = entry.value;
    if (v.kind === 'scalar' && typeof v.value === 'number') return [v.value, v.pos];
    const text = readString(c, v, keyPath(limPath, key), { what: key === 'cpus' ? 'a number of CPUs' : 'a memory size such as "512m"' });
    return text === undefined ? undefined : [text, v.pos];
  };
  const cpus = scalarOf('cpus');
  if (cpus) {
    const parsed = parseCpus(cpus[0]);
    if (parsed.ok) limits.cpus = parsed.value;
    else c.issue(keyPath(limPath, 'cpus'), cpus[1], parsed.error);
  }
  const memory = scalarOf('memory');
  if (memory) {
    const parsed = parseMemory(memory[0]);
    if (parsed.ok) limits.memoryBytes = parsed.value;
    else c.issue(keyPath(limPath, 'memory'), memory[1], parsed.error);
  }
  const pids = lim.get('pids');
  if (pids) {
    const n = readInt(c, pids.value, keyPath(limPath, 'pids'), 1);
    if (n !== undefined) limits.pids = n;
  }
  return limits;
}
