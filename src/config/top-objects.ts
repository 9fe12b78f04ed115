/**
 * The top-level `networks:` and `volumes:` of a compose file: names checked, each entry read into
 * a NetworkSpec or VolumeSpec (fixed names mapped to depad's own, with a warning).
 */
import type { NetworkSpec, VolumeSpec } from './spec.ts';
import { sortedRecord } from './freeze.ts';
import { Collector, keyPath } from './nodes.ts';
import type { LEntry, LNode } from './nodes.ts';
import { checkKeys, mapEntries, readBool, readString } from './read.ts';
import { labelsOf } from './service.ts';
import { NETWORK_IGNORED, NETWORK_SPECIAL } from './network-keys.ts';
import { topObjectNameProblem } from './top-level.ts';
import { readExternal } from './external.ts';
import { readIpam } from './ipam.ts';

/** Declared top-level objects: every declared name (for reference checks) and the valid specs. */
export interface TopObjects<T> {
  readonly declared: Record<string, true>;
  readonly valid: Record<string, T>;
}

/** Reads top-level `networks:` or `volumes:`: each name checked, each entry read by `read`. */
export function readTopObjects<T>(
  c: Collector,
  entry: LEntry | undefined,
  key: 'networks' | 'volumes',
  read: (c: Collector, name: string, node: LNode, path: string) => T | undefined,
): TopObjects<T> {
  const declared: Record<string, true> = {};
  const valid: [string, T][] = [];
  if (entry === undefined) return { declared, valid: {} };
  for (const e of mapEntries(c, entry.value, key, `a map of ${key.slice(0, -1)} name → settings`) ?? []) {
    const path = keyPath(key, e.key);
    declared[e.key] = true;
    const problem = topObjectNameProblem(e.key, key === 'networks' ? 'network' : 'volume');
    if (problem !== undefined) c.issue(path, e.keyPos, problem);
    const spec = read(c, e.key, e.value, path);
    if (spec !== undefined && problem === undefined) valid.push([e.key, spec]);
  }
  return { declared, valid: sortedRecord(valid) };
}

function stringMap(c: Collector, node: LNode | undefined, path: string): Record<string, string> {
  const out: [string, string][] = [];
  if (node === undefined) return {};
  for (const e of mapEntries(c, node, path) ?? []) {
    const v = e.value;
    const value = v.kind === 'scalar' && v.value !== null ? readString(c, v, keyPath(path, e.key), { numbers: true }) : v.kind === 'scalar' ? '' : undefined;
    if (value !== undefined) out.push([e.key, value]);
    else if (v.kind !== 'scalar') c.issue(keyPath(path, e.key), e.keyPos, 'expected a string value');
  }
  return sortedRecord(out);
}

/** `name:` of a network or volume: mapped to depad's own name for the deployment (two deployments of one file would share it), with a warning. */
function fixedNameWarning(c: Collector, keys: Map<string, LEntry>, path: string, what: 'network' | 'volume'): void {
  const entry = keys.get('name');
  if (entry === undefined) return;
  const given = entry.value.kind === 'scalar' ? String(entry.value.value) : '?';
  c.warning(keyPath(path, 'name'), entry.keyPos, `the ${what} keeps depad's name for this deployment (depad-<deployment>_${path.split('.').pop()}), not ${given}: a fixed name would be shared by every deployment of this file`);
}

/** One top-level network. */
export function readNetwork(c: Collector, name: string, node: LNode, path: string): NetworkSpec | undefined {
  const keys = checkKeys(c, mapEntries(c, node, path) ?? [], path, {
    supported: ['driver', 'internal', 'driver_opts', 'labels', 'name', 'external', 'ipam', ...NETWORK_IGNORED],
    special: { ...NETWORK_SPECIAL },
  });
  const external = readExternal(c, keys, name, path, 'network');
  if (external !== undefined) return external === false ? undefined : { name, driver: 'bridge', internal: false, driverOpts: {}, labels: {}, external };
  fixedNameWarning(c, keys, path, 'network');
  const driverEntry = keys.get('driver');
  const driver = driverEntry ? readString(c, driverEntry.value, keyPath(path, 'driver')) : 'bridge';
  const internalEntry = keys.get('internal');
  const internal = internalEntry ? readBool(c, internalEntry.value, keyPath(path, 'internal')) : false;
  const driverOpts = stringMap(c, keys.get('driver_opts')?.value, keyPath(path, 'driver_opts'));
  const labelsNode = keys.get('labels')?.value;
  const labels = labelsNode ? labelsOf(c, labelsNode, keyPath(path, 'labels')) : {};
  const ipamEntry = keys.get('ipam');
  const ipam = ipamEntry ? readIpam(c, ipamEntry.value, keyPath(path, 'ipam')) : undefined;
  if (driver === undefined || internal === undefined) return undefined;
  return { name, driver: driver || 'bridge', internal, driverOpts, labels, ...(ipam ? { ipam } : {}) };
}

/** One top-level volume. */
export function readVolume(c: Collector, name: string, node: LNode, path: string): VolumeSpec | undefined {
  const keys = checkKeys(c, mapEntries(c, node, path) ?? [], path, {
    supported: ['driver', 'driver_opts', 'labels', 'name', 'external'],
  });
  const external = readExternal(c, keys, name, path, 'volume');
  if (external !== undefined) return external === false ? undefined : { name, driver: 'local', driverOpts: {}, labels: {}, external };
  fixedNameWarning(c, keys, path, 'volume');
  const driverEntry = keys.get('driver');
  const driver = driverEntry ? readString(c, driverEntry.value, keyPath(path, 'driver')) : 'local';
  const driverOpts = stringMap(c, keys.get('driver_opts')?.value, keyPath(path, 'driver_opts'));
  const labelsNode = keys.get('labels')?.value;
  const labels = labelsNode ? labelsOf(c, labelsNode, keyPath(path, 'labels')) : {};
  if (driver === undefined) return undefined;
  return { name, driver: driver || 'local', driverOpts, labels };
}
