/**
 * Typed readers over the located tree: each checks a node's shape, records an issue with the
 * node's position and key path when it is wrong, and returns undefined then.
 */
import type { Collector, LEntry, LNode, Pos } from './nodes.ts';
import { describe, entryPos, indexPath, keyPath } from './nodes.ts';
import { closestKey } from './suggest.ts';

/** How a map's keys are checked: the supported keys, and special messages for some others. */
export interface KeyRules {
  readonly supported: readonly string[];
  /** Key → message, for keys with a better explanation than "unknown key". */
  readonly special?: Readonly<Record<string, string>>;
}

/** The entries of a map node (null counts as an empty map); an issue and undefined otherwise. */
export function mapEntries(c: Collector, node: LNode, path: string, what = 'a map'): readonly LEntry[] | undefined {
  if (node.kind === 'map') return node.entries;
  if (node.kind === 'scalar' && node.value === null) return [];
  c.issue(path, node.pos, `expected ${what}, found ${describe(node)}`);
  return undefined;
}

/**
 * Checks a map's keys against `rules` (`x-` keys are ignored; `x-depad` only where supported)
 * and returns the supported entries by key.
 */
export function checkKeys(c: Collector, entries: readonly LEntry[], path: string, rules: KeyRules): Map<string, LEntry> {
  const out = new Map<string, LEntry>();
  const where = path === '' ? 'at the top level' : `in ${path}`;
  for (const entry of entries) {
    const { key } = entry;
    if (rules.supported.includes(key)) {
      out.set(key, entry);
    } else if (key === 'x-depad') {
      c.issue(keyPath(path, key), entry.keyPos, 'x-depad is read at the top level and in a service; move it there');
    } else if (key.startsWith('x-')) {
      continue;
    } else {
      const special = rules.special?.[key];
      c.issue(keyPath(path, key), entry.keyPos, special ?? unknownKeyMessage(c, key, where, rules));
    }
  }
  return out;
}

/**
 * "unknown key 'imgae' in services.web; did you mean 'image'?" when a known key is close; else
 * the supported keys, listed only the first time per place kind in a file (not on every line).
 */
function unknownKeyMessage(c: Collector, key: string, where: string, rules: KeyRules): string {
  const close = closestKey(key, [...rules.supported, ...Object.keys(rules.special ?? {})]);
  if (close !== undefined) return `unknown key '${key}' ${where}; did you mean '${close}'?`;
  const kind = rules.supported.join(',');
  if (c.listedKeys.has(kind)) return `unknown key '${key}' ${where} (see the supported keys listed above); remove it or fix its spelling`;
  c.listedKeys.add(kind);
  return `unknown key '${key}' ${where}; supported: ${rules.supported.join(', ')}`;
}

/** A string value (numbers allowed when `numbers`, as written), interpolated. */
export function readString(c: Collector, node: LNode, path: string, options: { numbers?: boolean; what?: string } = {}): string | undefined {
  if (node.kind === 'scalar' && (typeof node.value === 'string' || (options.numbers === true && typeof node.value === 'number'))) {
    return c.text(node, path);
  }
  c.issue(path, node.pos, `expected ${options.what ?? 'a string'}, found ${describe(node)}`);
  return undefined;
}

/** A boolean: `true`/`false`, or the strings "true"/"false" after interpolation. */
export function readBool(c: Collector, node: LNode, path: string): boolean | undefined {
  if (node.kind === 'scalar') {
    if (typeof node.value === 'boolean') return node.value;
    if (typeof node.value === 'string') {
      const text = c.text(node, path);
      if (text === undefined) return undefined;
      if (/^true$/i.test(text)) return true;
      if (/^false$/i.test(text)) return false;
    }
  }
  c.issue(path, node.pos, `expected true or false, found ${describe(node)}`);
  return undefined;
}

/** An integer ≥ `min` (numeric strings allowed after interpolation). */
export function readInt(c: Collector, node: LNode, path: string, min: number): number | undefined {
  const value = scalarNumber(c, node, path);
  if (value === null) return undefined;
  if (value === undefined || !Number.isSafeInteger(value) || value < min) {
    c.issue(path, node.pos, `expected a whole number of at least ${min}, found ${describe(node)}`);
    return undefined;
  }
  return value;
}

/** A number from a number scalar or a numeric string; null when interpolation failed (issue recorded). */
export function scalarNumber(c: Collector, node: LNode, path: string): number | null | undefined {
  if (node.kind !== 'scalar') return undefined;
  if (typeof node.value === 'number') return node.value;
  if (typeof node.value !== 'string') return undefined;
  const text = c.text(node, path);
  if (text === undefined) return null;
  return /^[+]?(\d+(\.\d*)?|\.\d+)$/.test(text.trim()) ? Number(text) : undefined;
}

/** A list of strings (numbers allowed when `numbers`); `string` alone accepted when `single`. */
export function readStringList(
  c: Collector,
  node: LNode,
  path: string,
  options: { single?: boolean; numbers?: boolean } = {},
): string[] | undefined {
  if (options.single === true && node.kind === 'scalar' && typeof node.value === 'string') {
    const value = c.text(node, path);
    return value === undefined ? undefined : [value];
  }
  if (node.kind !== 'seq') {
    c.issue(path, node.pos, `expected ${options.single === true ? 'a string or a list of strings' : 'a list of strings'}, found ${describe(node)}`);
    return undefined;
  }
  const out: string[] = [];
  let ok = true;
  node.items.forEach((item, i) => {
    const value = readString(c, item, indexPath(path, i), { numbers: options.numbers ?? false });
    if (value === undefined) ok = false;
    else out.push(value);
  });
  return ok ? out : undefined;
}

/** One `key → value` pair of a map-or-list field, with where it was written. */
export interface KeyValue {
  readonly key: string;
  readonly value: string;
  readonly path: string;
  readonly pos: Pos;
}

/**
 * A map of scalars (null → '') or a list of `KEY=VALUE` strings (`KEY` alone → ''), as compose
 * `environment` and `labels` take. Values are interpolated; keys are not.
 */
export function readKeyValues(c: Collector, node: LNode, path: string, what: string): KeyValue[] | undefined {
  if (node.kind === 'scalar' && node.value === null) return [];
  if (node.kind === 'map') {
    const out: KeyValue[] = [];
    for (const entry of node.entries) {
      const entryPath = keyPath(path, entry.key);
      const v = entry.value;
      if (v.kind !== 'scalar') {
        c.issue(entryPath, entryPos(entry), `expected a string, number or boolean for ${what} '${entry.key}', found ${describe(v)}`);
        continue;
      }
      const value = v.value === null ? '' : c.text(v, entryPath);
      if (value !== undefined) out.push({ key: entry.key, value, path: entryPath, pos: entryPos(entry) });
    }
    return out;
  }
  if (node.kind === 'seq') {
    const out: KeyValue[] = [];
    node.items.forEach((item, i) => {
      const itemPath = indexPath(path, i);
      const text = readString(c, item, itemPath, { what: `a "KEY=VALUE" string` });
      if (text === undefined) return;
      const eq = text.indexOf('=');
      out.push({ key: eq < 0 ? text : text.slice(0, eq), value: eq < 0 ? '' : text.slice(eq + 1), path: itemPath, pos: item.pos });
    });
    return out;
  }
  c.issue(path, node.pos, `expected a map or a list of "KEY=VALUE" strings for ${what}, found ${describe(node)}`);
  return undefined;
}
