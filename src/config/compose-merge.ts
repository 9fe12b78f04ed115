/**
 * Merging located trees the way compose-go's `override.MergeYaml` merges a service with the one
 * it `extends`: mappings merge key by key, sequences append (then duplicates go: volumes by
 * target, others when equal), `command`/`entrypoint`/`healthcheck.test` are replaced, and
 * `environment`, `labels`, `extra_hosts`, `sysctls`… merge by key whether written as maps or lists.
 */
import type { LEntry, LMap, LNode, LScalar } from './nodes.ts';

const REPLACED = new Set(['command', 'entrypoint']);
const BY_KEY = new Set(['environment', 'labels', 'annotations', 'sysctls', 'extra_hosts', 'dns', 'dns_opt', 'dns_search', 'tmpfs', 'env_file']);
const LIST_TO_MAP = new Set(['depends_on', 'networks']);

/** `over` merged onto `base` (a service: `base` is the extended one); `over` wins. */
export function mergeService(base: LMap, over: LMap): LMap {
  return mergeMaps(base, over, []);
}

/** An override file's top level merged over `base`, as compose merges `-f a.yaml -f b.yaml`: services as `mergeService`, other maps key by key. */
export function mergeProject(base: LMap, over: LMap): LMap {
  const entries: LEntry[] = base.entries.map((e) => {
    const o = over.entries.find((x) => x.key === e.key);
    if (o === undefined) return e;
    if (e.key === 'services' && e.value.kind === 'map' && o.value.kind === 'map') {
      const b = e.value;
      const merged: LEntry[] = b.entries.map((s) => {
        const os = o.value.kind === 'map' ? o.value.entries.find((x) => x.key === s.key) : undefined;
        return os && s.value.kind === 'map' && os.value.kind === 'map' ? { ...os, value: mergeService(s.value, os.value) } : (os ?? s);
      });
      for (const os of o.value.entries) if (!b.entries.some((s) => s.key === os.key)) merged.push(os);
      return { ...o, value: { ...o.value, entries: merged } };
    }
    return { ...o, value: e.value.kind === 'map' && o.value.kind === 'map' ? mergeMaps(e.value, o.value, ['*', '*']) : o.value };
  });
  for (const o of over.entries) if (!base.entries.some((e) => e.key === o.key)) entries.push(o);
  return { ...over, entries };
}

function mergeMaps(base: LMap, over: LMap, path: readonly string[]): LMap {
  const entries: LEntry[] = base.entries.map((e) => {
    const o = over.entries.find((x) => x.key === e.key);
    return o === undefined ? e : { ...o, value: mergeNode(e.value, o.value, [...path, e.key]) };
  });
  for (const o of over.entries) if (!base.entries.some((e) => e.key === o.key)) entries.push(o);
  return { ...over, entries };
}

function mergeNode(base: LNode, over: LNode, path: readonly string[]): LNode {
  const key = path[path.length - 1] ?? '';
  if (over.kind === 'scalar' && over.value === null) return base;
  if (path.length === 1 && REPLACED.has(key)) return over;
  if (path.length === 2 && path[0] === 'healthcheck' && key === 'test') return over;
  if (path.length === 1 && BY_KEY.has(key)) return mergeByKey(base, over, key === 'extra_hosts' ? ':' : '=');
  if (path.length === 1 && LIST_TO_MAP.has(key) && (base.kind === 'seq' || over.kind === 'seq')) return mergeNode(asMap(base), asMap(over), path);
  if (base.kind === 'map' && over.kind === 'map') return mergeMaps(base, over, path);
  if (base.kind === 'seq' && over.kind === 'seq' && path.length === 5 && path[3] === 'ipam' && key === 'config') return mergeBySubnet(base, over);
  if (base.kind === 'seq' && over.kind === 'seq') return { ...over, items: unique([...base.items, ...over.items], path.length === 1 && key === 'volumes' ? mountTarget : plain) };
  return over;
}

/** A top-level network's `ipam.config`, as compose merges it: an entry of the same `subnet` merged key by key, the others appended. */
function mergeBySubnet(base: LNode & { kind: 'seq' }, over: LNode & { kind: 'seq' }): LNode {
  const subnet = (n: LNode) => (n.kind === 'map' ? n.entries.find((e) => e.key === 'subnet')?.value : undefined);
  const same = (a: LNode, b: LNode) => {
    const x = subnet(a);
    const y = subnet(b);
    return x?.kind === 'scalar' && y?.kind === 'scalar' && x.text === y.text;
  };
  const items = base.items.map((b) => {
    const o = over.items.find((x) => same(b, x));
    return o && b.kind === 'map' && o.kind === 'map' ? mergeMaps(b, o, ['ipam-config']) : (o ?? b);
  });
  for (const o of over.items) if (!base.items.some((b) => same(b, o))) items.push(o);
  return { ...over, items };
}

/** A list of names as a map name → null (`depends_on`, `networks`). */
function asMap(node: LNode): LNode {
  if (node.kind !== 'seq') return node;
  const entries = node.items.flatMap((item): LEntry[] => (item.kind === 'scalar' && item.value !== null ? [{ key: item.text, keyPos: item.pos, value: { kind: 'scalar', value: null, text: '', pos: item.pos } }] : []));
  return { kind: 'map', entries, pos: node.pos };
}

/** Map + map: by key. Otherwise a list of `KEY=VALUE` (or `host:ip`) strings, later keys winning. */
function mergeByKey(base: LNode, over: LNode, sep: string): LNode {
  if (base.kind === 'map' && over.kind === 'map') return mergeMaps(base, over, ['*']);
  const items = new Map<string, LNode>();
  for (const node of [base, over]) {
    if (node.kind === 'map') {
      for (const e of node.entries) {
        const v = e.value;
        const text = v.kind !== 'scalar' ? undefined : v.value === null ? e.key : `${e.key}${sep}${v.text}`;
        if (text !== undefined) items.set(e.key, { kind: 'scalar', value: text, text, pos: v.pos } satisfies LScalar);
      }
    } else if (node.kind === 'seq') {
      for (const item of node.items) {
        const text = item.kind === 'scalar' ? item.text : JSON.stringify(strip(item));
        const k = item.kind === 'scalar' && sep !== '' ? (text.split(sep)[0] ?? text) : text;
        items.delete(k);
        items.set(k, item);
      }
    }
  }
  return { kind: 'seq', items: [...items.values()], pos: over.pos };
}

function plain(node: LNode): string {
  return JSON.stringify(strip(node));
}

/** A volume mount's target (`src:target[:mode]` or `target:`), for de-duplication. */
function mountTarget(node: LNode): string {
  if (node.kind === 'scalar') {
    const parts = node.text.split(':');
    return `target:${parts.length >= 2 ? parts[1] : parts[0]}`;
  }
  if (node.kind === 'map') {
    const target = node.entries.find((e) => e.key === 'target')?.value;
    if (target?.kind === 'scalar') return `target:${target.text}`;
  }
  return plain(node);
}

/** Later items replace earlier ones with the same key, at the later one's place. */
function unique(items: readonly LNode[], keyOf: (n: LNode) => string): LNode[] {
  const byKey = new Map<string, LNode>();
  for (const item of items) {
    const k = keyOf(item);
    byKey.delete(k);
    byKey.set(k, item);
  }
  return [...byKey.values()];
}

/** A node without positions, for comparing. */
function strip(node: LNode): unknown {
  if (node.kind === 'scalar') return node.value;
  if (node.kind === 'seq') return node.items.map(strip);
  return node.entries.map((e) => [e.key, strip(e.value)]);
}
