/** Readers for the structured engine keys: `ulimits`, `logging`, `blkio_config`. */
import type { HostConfigFields } from '../engine/create-fields.ts';
import type { Collector, LNode } from './nodes.ts';
import { describe, entryPos, indexPath, keyPath } from './nodes.ts';
import { checkKeys, mapEntries, readString, scalarNumber } from './read.ts';
import { parseBytes } from './values.ts';


type Ulimit = { Name: string; Soft: number; Hard: number };

/** `ulimits`: name → number (soft = hard) or `{soft, hard}`; `-1` is unlimited. */
export function readUlimits(c: Collector, node: LNode, path: string): Ulimit[] | undefined {
  const entries = mapEntries(c, node, path, 'a map of limit name → number or {soft, hard}');
  if (entries === undefined) return undefined;
  const out: Ulimit[] = [];
  const num = (n: LNode, p: string): number | undefined => {
    const v = n.kind === 'scalar' && typeof n.value === 'number' ? n.value : scalarNumber(c, n, p);
    if (v === null) return undefined;
    if (v !== undefined && Number.isSafeInteger(v) && v >= -1) return v;
    c.issue(p, n.pos, `expected a whole number (-1 for unlimited), found ${describe(n)}`);
    return undefined;
  };
  for (const entry of entries) {
    const p = keyPath(path, entry.key);
    if (!/^[a-z]+$/.test(entry.key)) {
      c.issue(p, entry.keyPos, `ulimit names are lowercase letters such as nofile or nproc, found "${entry.key}"`);
      continue;
    }
    if (entry.value.kind === 'map') {
      const keys = checkKeys(c, entry.value.entries, p, { supported: ['soft', 'hard'] });
      const soft = keys.get('soft');
      const hard = keys.get('hard');
      if (soft === undefined || hard === undefined) {
        c.issue(p, entry.keyPos, `ulimit ${entry.key} needs both soft: and hard:`);
        continue;
      }
      const s = num(soft.value, keyPath(p, 'soft'));
      const h = num(hard.value, keyPath(p, 'hard'));
      if (s === undefined || h === undefined) continue;
      if (h !== -1 && (s === -1 || s > h)) c.issue(p, entry.keyPos, `ulimit ${entry.key}: soft (${s}) must not be above hard (${h})`);
      else out.push({ Name: entry.key, Soft: s, Hard: h });
    } else {
      const v = num(entry.value, p);
      if (v !== undefined) out.push({ Name: entry.key, Soft: v, Hard: v });
    }
  }
  return out.sort((a, b) => (a.Name < b.Name ? -1 : a.Name > b.Name ? 1 : 0));
}

/** `logging`: `driver` and `options` (values stringified; null dropped). */
export function readLogging(c: Collector, node: LNode, path: string): HostConfigFields['LogConfig'] | undefined {
  const keys = checkKeys(c, mapEntries(c, node, path) ?? [], path, { supported: ['driver', 'options'] });
  const driverEntry = keys.get('driver');
  const driver = driverEntry ? readString(c, driverEntry.value, keyPath(path, 'driver'), { what: 'a log driver such as json-file' }) : '';
  if (driver === undefined) return undefined;
  const config: Record<string, string> = {};
  const options = keys.get('options');
  for (const entry of options ? (mapEntries(c, options.value, keyPath(path, 'options')) ?? []) : []) {
    const v = entry.value;
    const p = keyPath(keyPath(path, 'options'), entry.key);
    if (v.kind !== 'scalar') c.issue(p, entryPos(entry), `expected a string or number, found ${describe(v)}`);
    else if (v.value !== null) {
      const t = c.text(v, p);
      if (t !== undefined) config[entry.key] = t;
    }
  }
  return { Type: driver, Config: config };
}

const RATES = [
  ['device_read_bps', 'BlkioDeviceReadBps', true],
  ['device_write_bps', 'BlkioDeviceWriteBps', true],
  ['device_read_iops', 'BlkioDeviceReadIOps', false],
  ['device_write_iops', 'BlkioDeviceWriteIOps', false],
] as const;

/** `blkio_config`: `weight`, `weight_device`, and the read/write bps and iops throttles. */
export function readBlkio(c: Collector, node: LNode, path: string): Partial<HostConfigFields> {
  const out: Partial<HostConfigFields> = {};
  const keys = checkKeys(c, mapEntries(c, node, path) ?? [], path, { supported: ['weight', 'weight_device', ...RATES.map((r) => r[0])] });
  const weight = (n: LNode, p: string): number | undefined => {
    const v = scalarNumber(c, n, p);
    if (v !== null && v !== undefined && Number.isInteger(v) && v >= 10 && v <= 1000) return v;
    if (v !== null) c.issue(p, n.pos, `expected a weight from 10 to 1000, found ${describe(n)}`);
    return undefined;
  };
  const w = keys.get('weight');
  if (w) {
    const v = weight(w.value, keyPath(path, 'weight'));
    if (v !== undefined) out.BlkioWeight = v;
  }
  const devices = (key: string, value: (n: LNode, p: string) => number | undefined, field: 'weight' | 'rate') => {
    const entry = keys.get(key);
    if (!entry) return undefined;
    const p = keyPath(path, key);
    if (entry.value.kind !== 'seq') {
      c.issue(p, entry.keyPos, `expected a list of {path, ${field}}, found ${describe(entry.value)}`);
      return undefined;
    }
    const list: { Path: string; n: number }[] = [];
    entry.value.items.forEach((item, i) => {
      const ip = indexPath(p, i);
      const k = checkKeys(c, mapEntries(c, item, ip) ?? [], ip, { supported: ['path', field] });
      const dev = k.get('path');
      const val = k.get(field);
      if (!dev || !val) return c.issue(ip, item.pos, `each entry needs path: and ${field}:`);
      const d = readString(c, dev.value, keyPath(ip, 'path'), { what: 'a device path such as /dev/sda' });
      const n = value(val.value, keyPath(ip, field));
      if (d !== undefined && n !== undefined) list.push({ Path: d, n });
    });
    return list;
  };
  const wd = devices('weight_device', weight, 'weight');
  if (wd) out.BlkioWeightDevice = wd.map((d) => ({ Path: d.Path, Weight: d.n }));
  for (const [key, field, isBytes] of RATES) {
    const rate = (n: LNode, p: string): number | undefined => {
      const v = scalarNumber(c, n, p);
      if (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0) return v;
      if (isBytes && n.kind === 'scalar' && typeof n.value === 'string') {
        const t = c.text(n, p);
        const parsed = t === undefined ? undefined : parseBytes(t);
        if (parsed !== undefined) return parsed;
      }
      if (v !== null) c.issue(p, n.pos, `expected ${isBytes ? 'a rate such as "20mb" or a number of bytes' : 'a whole number of operations'} per second, found ${describe(n)}`);
      return undefined;
    };
    const list = devices(key, rate, 'rate');
    if (list) out[field] = list.map((d) => ({ Path: d.Path, Rate: d.n }));
  }
  return out;
}
