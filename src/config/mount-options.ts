/** Mount options of service `volumes`: the short syntax's `:ro,z,nocopy` list and the long syntax's `bind:`/`volume:` maps. */
import type { MountOptions } from './spec.ts';
import type { Collector, LEntry, Pos } from './nodes.ts';
import { entryPos, keyPath } from './nodes.ts';
import { checkKeys, mapEntries, readBool, readString } from './read.ts';
import { parseBytes } from './values.ts';

const PROPAGATION = ['rprivate', 'private', 'rshared', 'shared', 'rslave', 'slave'];
/** Docker Desktop's consistency hints: accepted, no effect on Linux (compose ignores them too). */
const CONSISTENCY = ['cached', 'delegated', 'consistent', 'default'];

type Mut = { -readonly [K in keyof MountOptions]: MountOptions[K] };

/** The short syntax's options (`ro`, `rw`, `z`, `Z`, `nocopy`, a propagation, a consistency): read-only and the rest, or the error. */
export function parseShortOptions(text: string): { ok: true; readOnly: boolean; options: MountOptions } | { ok: false; error: string } {
  const options: Mut = {};
  let readOnly = false;
  for (const opt of text.split(',')) {
    if (opt === 'ro' || opt === 'rw') readOnly = opt === 'ro';
    else if (opt === 'z' || opt === 'Z') options.selinux = opt;
    else if (opt === 'nocopy') options.noCopy = true;
    else if (PROPAGATION.includes(opt)) options.propagation = opt;
    else if (!CONSISTENCY.includes(opt)) return { ok: false, error: `mount option "${opt}" is not one of ro, rw, z, Z, nocopy, ${PROPAGATION.join(', ')}, cached, delegated, consistent` };
  }
  return { ok: true, readOnly, options };
}

/** The long syntax's `bind:`, `volume:` and `consistency` entries of one mount. */
export function readLongOptions(c: Collector, keys: ReadonlyMap<string, LEntry>, path: string, type: 'bind' | 'volume'): MountOptions | undefined {
  const options: Mut = {};
  let ok = true;
  const consistency = keys.get('consistency');
  if (consistency) readString(c, consistency.value, keyPath(path, 'consistency'));
  const other = type === 'bind' ? 'volume' : 'bind';
  const wrong = keys.get(other);
  if (wrong) {
    c.issue(keyPath(path, other), wrong.keyPos, `${other}: options are for type: ${other} mounts; this one is type: ${type}`);
    ok = false;
  }
  const sub = keys.get(type);
  if (sub) {
    const p = keyPath(path, type);
    const supported = type === 'bind' ? ['propagation', 'create_host_path', 'selinux', 'recursive'] : ['nocopy', 'subpath', 'labels'];
    const k = checkKeys(c, mapEntries(c, sub.value, p) ?? [], p, { supported });
    const propagation = k.get('propagation');
    if (propagation) {
      const t = readString(c, propagation.value, keyPath(p, 'propagation'));
      if (t !== undefined && !PROPAGATION.includes(t)) {
        c.issue(keyPath(p, 'propagation'), entryPos(propagation), `propagation must be one of ${PROPAGATION.join(', ')}, found "${t}"`);
        ok = false;
      } else if (t !== undefined) options.propagation = t;
    }
    const selinux = k.get('selinux');
    if (selinux) {
      const t = readString(c, selinux.value, keyPath(p, 'selinux'));
      if (t === 'z' || t === 'Z') options.selinux = t;
      else if (t !== undefined) {
        c.issue(keyPath(p, 'selinux'), entryPos(selinux), `selinux must be z or Z, found "${t}"`);
        ok = false;
      }
    }
    const create = k.get('create_host_path');
    if (create) readBool(c, create.value, keyPath(p, 'create_host_path'));
    const recursive = k.get('recursive');
    if (recursive) {
      const t = readString(c, recursive.value, keyPath(p, 'recursive'));
      if (t !== undefined && t !== 'enabled') {
        c.issue(keyPath(p, 'recursive'), entryPos(recursive), `recursive: ${t} needs Engine API 1.44; Docker Engine 20.10 mounts recursively (enabled) only`);
        ok = false;
      }
    }
    const nocopy = k.get('nocopy');
    if (nocopy && readBool(c, nocopy.value, keyPath(p, 'nocopy')) === true) options.noCopy = true;
    const subpath = k.get('subpath');
    if (subpath) {
      c.issue(keyPath(p, 'subpath'), subpath.keyPos, 'volume.subpath needs Engine API 1.45; Docker Engine 20.10 cannot mount part of a volume: mount the volume and point the program at the subdirectory');
      ok = false;
    }
    const labels = k.get('labels');
    if (labels) c.warning(keyPath(p, 'labels'), labels.keyPos, 'volume.labels of a mount are not applied: depad creates the volume from the top-level volumes: entry; put the labels there');
  }
  return ok ? options : undefined;
}

/** A long-syntax `type: tmpfs` mount (`target`, `tmpfs.size`, `tmpfs.mode`), added to `sink` as a `tmpfs:` entry. */
export function readTmpfsMount(c: Collector, keys: ReadonlyMap<string, LEntry>, path: string, pos: Pos, sink: string[]): void {
  const target = keys.get('target');
  const t = target ? readString(c, target.value, keyPath(path, 'target')) : undefined;
  if (target === undefined) c.issue(path, pos, 'a tmpfs mount needs target: the absolute path inside the container');
  if (t === undefined) return;
  if (!t.startsWith('/')) return c.issue(keyPath(path, 'target'), entryPos(target!), `mount target must be an absolute path inside the container, such as /tmp; found "${t}"`);
  for (const key of ['source', 'bind', 'volume']) {
    const e = keys.get(key);
    if (e) return c.issue(keyPath(path, key), e.keyPos, `a tmpfs mount has no ${key}; remove it`);
  }
  const opts: string[] = [];
  const sub = keys.get('tmpfs');
  if (sub) {
    const p = keyPath(path, 'tmpfs');
    const k = checkKeys(c, mapEntries(c, sub.value, p) ?? [], p, { supported: ['size', 'mode'] });
    const size = k.get('size');
    if (size) {
      const v = size.value.kind === 'scalar' && typeof size.value.value === 'number' ? size.value.value : parseBytes(readString(c, size.value, keyPath(p, 'size')) ?? '');
      if (v === undefined || !Number.isSafeInteger(v)) return c.issue(keyPath(p, 'size'), entryPos(size), 'expected a size such as "64m" or a number of bytes');
      opts.push(`size=${v}`);
    }
    const mode = k.get('mode');
    if (mode) {
      const v = mode.value.kind === 'scalar' && typeof mode.value.value === 'number' ? mode.value.text : readString(c, mode.value, keyPath(p, 'mode'));
      if (v === undefined || !/^0?[0-7]{3,4}$/.test(v)) return c.issue(keyPath(p, 'mode'), entryPos(mode), 'expected an octal file mode such as 1777');
      opts.push(`mode=${v}`);
    }
  }
  const ro = keys.get('read_only');
  if (ro && readBool(c, ro.value, keyPath(path, 'read_only')) === true) opts.push('ro');
  sink.push(opts.length > 0 ? `${t}:${opts.join(',')}` : t);
}
