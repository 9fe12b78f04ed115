/**
 * Files that make one compose project: top-level `include` (short and long syntax) and service
 * `extends` (same file, or `file:` + `service:`), resolved on the located tree before validation.
 * Pure: the texts of the other files are given (`referencedFiles` says which to read).
 */
import path from 'node:path';
import { interpolate } from './interpolate.ts';
import { parseEnvText } from './env.ts';
import { mergeProject, mergeService } from './compose-merge.ts';
import { Collector, describe, indexPath, keyPath } from './nodes.ts';
import type { LEntry, LMap, LNode, LScalar } from './nodes.ts';
import { parseYamlTree } from './yaml-tree.ts';

/** What composing needs: the texts of other files (absolute path → text) and the variables. */
export interface ComposeInputs {
  readonly files: Readonly<Record<string, string>>;
  readonly env: Readonly<Record<string, string>>;
}

/** The composed top level, and every other file it read (absolute paths). */
export interface Composed {
  readonly root: LMap;
  readonly used: readonly string[];
}

const MERGED_TOP = ['services', 'networks', 'volumes', 'secrets', 'configs'];

/** Resolves `include` and `extends` in `root` (the tree of `file`, absolute). Issues go to `c`. */
export function composeProject(c: Collector, root: LMap, file: string, inputs: ComposeInputs): Composed {
  const used = new Set<string>();
  const out = composeFile(c, root, file, inputs, used, [file]);
  return { root: out, used: [...used].sort() };
}

function composeFile(c: Collector, root: LMap, file: string, inputs: ComposeInputs, used: Set<string>, chain: readonly string[]): LMap {
  let entries = root.entries.filter((e) => e.key !== 'include');
  const include = root.entries.find((e) => e.key === 'include');
  for (const item of include ? includeItems(c, include, file, inputs.env) : []) {
    if (chain.includes(item.file)) {
      c.issue(item.path, item.pos, `include cycle: ${[...chain, item.file].map((f) => path.basename(f)).join(' -> ')}; remove one of these includes`);
      continue;
    }
    const text = Object.hasOwn(inputs.files, item.file) ? inputs.files[item.file] : undefined;
    if (text === undefined) {
      c.issue(item.path, item.pos, `included file ${item.file} is missing or unreadable; fix the path or remove it from include`);
      continue;
    }
    used.add(item.file);
    let env = inputs.env;
    for (const envFile of item.envFiles) {
      const envText = Object.hasOwn(inputs.files, envFile) ? inputs.files[envFile] : undefined;
      if (envText === undefined) {
        c.issue(item.path, item.pos, `env_file ${envFile} of this include is missing or unreadable; create it or fix the path`);
        continue;
      }
      used.add(envFile);
      const parsed = parseEnvText(envText, envFile);
      for (const issue of parsed.issues) c.issues.push(issue);
      env = { ...parsed.values, ...env };
    }
    let tree = composeFile(c, parseYamlTree(text, c, item.file), item.file, { ...inputs, env }, used, [...chain, item.file]);
    for (const override of item.overrides) {
      const overText = Object.hasOwn(inputs.files, override) ? inputs.files[override] : undefined;
      if (overText === undefined) {
        c.issue(item.path, item.pos, `included file ${override} is missing or unreadable; fix the path or remove it from include`);
        continue;
      }
      used.add(override);
      tree = mergeProject(tree, composeFile(c, parseYamlTree(overText, c, override), override, { ...inputs, env }, used, [...chain, override]));
    }
    if (env !== inputs.env) tree = interpolateTree(c, tree, env) as LMap;
    const prefix = path.relative(path.dirname(file), item.projectDir).split(path.sep).join('/');
    entries = mergeIncluded(c, entries, rebaseTop(tree, prefix), item);
  }
  return resolveExtends(c, { ...root, entries }, file, inputs, used);
}

interface IncludeItem {
  readonly file: string;
  /** The other files of a `path:` list, merged over `file` as compose merges override files. */
  readonly overrides: readonly string[];
  readonly projectDir: string;
  readonly envFiles: readonly string[];
  readonly path: string;
  readonly pos: LNode['pos'];
}

function text(c: Collector, node: LNode, p: string, env: Readonly<Record<string, string>>): string | undefined {
  if (node.kind !== 'scalar' || typeof node.value !== 'string') {
    c.issue(p, node.pos, `expected a path, found ${describe(node)}`);
    return undefined;
  }
  const r = interpolate(node.value, (n) => (Object.hasOwn(env, n) ? env[n] : undefined));
  if (!r.ok) c.issue(p, node.pos, r.message);
  return r.ok ? r.value : undefined;
}

function includeItems(c: Collector, include: LEntry, file: string, env: Readonly<Record<string, string>>): IncludeItem[] {
  const dir = path.dirname(file);
  const node = include.value;
  if (node.kind !== 'seq') {
    c.issue('include', include.keyPos, `expected a list of files to include (paths, or maps with path, project_directory, env_file), found ${describe(node)}`);
    return [];
  }
  const out: IncludeItem[] = [];
  node.items.forEach((item, i) => {
    const p = indexPath('include', i);
    if (item.kind !== 'map') {
      const f = text(c, item, p, env);
      if (f !== undefined) out.push({ file: path.resolve(dir, f), overrides: [], projectDir: path.dirname(path.resolve(dir, f)), envFiles: [], path: p, pos: item.pos });
      return;
    }
    const get = (k: string) => item.entries.find((e) => e.key === k);
    for (const e of item.entries) if (!['path', 'project_directory', 'env_file'].includes(e.key)) c.issue(keyPath(p, e.key), e.keyPos, `unknown key '${e.key}' in an include; supported: path, project_directory, env_file`);
    const list = (k: string): string[] => {
      const v = get(k)?.value;
      if (v === undefined) return [];
      const items = v.kind === 'seq' ? v.items : [v];
      return items.flatMap((x, j) => {
        const t = text(c, x, v.kind === 'seq' ? indexPath(keyPath(p, k), j) : keyPath(p, k), env);
        return t === undefined ? [] : [path.resolve(dir, t)];
      });
    };
    const files = list('path');
    if (files.length === 0 && get('path') === undefined) c.issue(p, item.pos, 'an include needs path: (the file to include)');
    const pd = get('project_directory');
    const pdText = pd === undefined ? undefined : text(c, pd.value, keyPath(p, 'project_directory'), env);
    const envFiles = list('env_file');
    const [first, ...overrides] = files;
    if (first !== undefined) out.push({ file: first, overrides, projectDir: pdText === undefined ? path.dirname(first) : path.resolve(dir, pdText), envFiles, path: p, pos: item.pos });
  });
  return out;
}

/** Adds an included file's top-level objects; a name given in both is an issue, as in compose. */
function mergeIncluded(c: Collector, entries: LEntry[], included: LMap, item: IncludeItem): LEntry[] {
  const out = [...entries];
  for (const key of MERGED_TOP) {
    const add = included.entries.find((e) => e.key === key);
    if (add?.value.kind !== 'map') continue;
    const at = out.findIndex((e) => e.key === key);
    const mine = at >= 0 ? out[at]! : undefined;
    const have = mine?.value.kind === 'map' ? mine.value.entries : [];
    const merged = [...have];
    for (const e of add.value.entries) {
      if (have.some((h) => h.key === e.key)) c.issue(keyPath(key, e.key), item.pos, `${key.slice(0, -1)} '${e.key}' is defined both here and in the included file ${item.file}; rename one or remove it`);
      else merged.push(e);
    }
    const entry: LEntry = { key, keyPos: mine?.keyPos ?? add.keyPos, value: { kind: 'map', entries: merged, pos: mine?.value.pos ?? add.value.pos } };
    if (at >= 0) out[at] = entry;
    else out.push(entry);
  }
  return out;
}

/** Resolves every service's `extends` in `root` (the tree of `file`). */
function resolveExtends(c: Collector, root: LMap, file: string, inputs: ComposeInputs, used: Set<string>): LMap {
  const servicesEntry = root.entries.find((e) => e.key === 'services');
  if (servicesEntry?.value.kind !== 'map') return root;
  const services = servicesEntry.value;
  const done = new Map<string, LMap>();
  const resolveIn = (svcs: LMap, f: string, name: string, stack: readonly string[], cache: Map<string, LMap>): LMap | undefined => {
    const hit = cache.get(name);
    if (hit) return hit;
    const entry = svcs.entries.find((e) => e.key === name);
    if (entry?.value.kind !== 'map') return undefined;
    const ext = entry.value.entries.find((e) => e.key === 'extends');
    if (!ext) return entry.value;
    const p = keyPath(keyPath('services', name), 'extends');
    const own: LMap = { ...entry.value, entries: entry.value.entries.filter((e) => e.key !== 'extends') };
    let ref: string | undefined;
    let from: string | undefined;
    if (ext.value.kind === 'map') {
      for (const e of ext.value.entries) if (e.key !== 'service' && e.key !== 'file') c.issue(keyPath(p, e.key), e.keyPos, `unknown key '${e.key}' in extends; supported: service, file`);
      const s = ext.value.entries.find((e) => e.key === 'service');
      const fl = ext.value.entries.find((e) => e.key === 'file');
      if (s === undefined) c.issue(p, ext.keyPos, 'extends needs service: (the service to extend)');
      ref = s === undefined ? undefined : text(c, s.value, keyPath(p, 'service'), inputs.env);
      const ft = fl === undefined ? undefined : text(c, fl.value, keyPath(p, 'file'), inputs.env);
      from = ft === undefined ? undefined : path.resolve(path.dirname(f), ft);
    } else {
      ref = text(c, ext.value, p, inputs.env);
    }
    if (ref === undefined) return own;
    const id = `${from ?? f}#${ref}`;
    if (stack.includes(id)) {
      c.issue(p, ext.keyPos, `extends cycle: ${[...stack, id].map((s) => s.split('#')[1]).join(' -> ')}; remove one of these extends`);
      return own;
    }
    let base: LMap | undefined;
    if (from === undefined) {
      base = resolveIn(svcs, f, ref, [...stack, id], cache);
      if (base === undefined) c.issue(p, ext.value.pos, `extends names service '${ref}', which is not a service in ${path.basename(f)}; services: ${svcs.entries.map((e) => e.key).join(', ')}`);
    } else {
      const t = Object.hasOwn(inputs.files, from) ? inputs.files[from] : undefined;
      if (t === undefined) {
        c.issue(p, ext.value.pos, `extends.file ${from} is missing or unreadable; fix the path`);
        return own;
      }
      used.add(from);
      const other = parseYamlTree(t, c, from).entries.find((e) => e.key === 'services')?.value;
      const found = other?.kind === 'map' ? resolveIn(other, from, ref, [...stack, id], new Map()) : undefined;
      if (found === undefined) c.issue(p, ext.value.pos, `extends names service '${ref}', which is not a service in ${from}`);
      else base = rebaseService(found, path.relative(path.dirname(f), path.dirname(from)).split(path.sep).join('/'));
    }
    const merged = base === undefined ? own : mergeService(base, own);
    cache.set(name, merged);
    return merged;
  };
  const entries = services.entries.map((e) => {
    const merged = resolveIn(services, file, e.key, [], done);
    return merged === undefined ? e : { ...e, value: merged };
  });
  return { ...root, entries: root.entries.map((e) => (e === servicesEntry ? { ...e, value: { ...services, entries } } : e)) };
}

/** Every service's relative paths (bind sources, env_file, build context) rebased onto `prefix`. */
function rebaseTop(root: LMap, prefix: string): LMap {
  if (prefix === '') return root;
  return {
    ...root,
    entries: root.entries.map((e) =>
      e.key === 'services' && e.value.kind === 'map'
        ? { ...e, value: { ...e.value, entries: e.value.entries.map((s) => (s.value.kind === 'map' ? { ...s, value: rebaseService(s.value, prefix) } : s)) } }
        : e,
    ),
  };
}

const isRelative = (p: string) => p === '.' || p === '..' || p.startsWith('./') || p.startsWith('../');
const join = (prefix: string, p: string) => {
  const j = path.posix.join(prefix, p);
  return j.startsWith('../') || j === '..' ? j : `./${j}`;
};
const rebased = (node: LScalar, value: string): LScalar => ({ ...node, value, text: value });

/** A service's relative paths rebased onto `prefix` (the other file's directory, relative to this one's). */
export function rebaseService(service: LMap, prefix: string): LMap {
  if (prefix === '') return service;
  const scalar = (n: LNode, edit: (s: string) => string): LNode => (n.kind === 'scalar' && typeof n.value === 'string' ? rebased(n, edit(n.value)) : n);
  const maybe = (s: string) => (isRelative(s) ? join(prefix, s) : s);
  const entries = service.entries.map((e): LEntry => {
    const v = e.value;
    if (e.key === 'volumes' && v.kind === 'seq') {
      const items = v.items.map((item) => {
        if (item.kind === 'scalar') return scalar(item, (s) => { const i = s.indexOf(':'); return i < 0 ? s : maybe(s.slice(0, i)) + s.slice(i); });
        if (item.kind === 'map') return { ...item, entries: item.entries.map((x) => (x.key === 'source' ? { ...x, value: scalar(x.value, maybe) } : x)) };
        return item;
      });
      return { ...e, value: { ...v, items } };
    }
    if (e.key === 'env_file') {
      const one = (n: LNode): LNode => (n.kind === 'map' ? { ...n, entries: n.entries.map((x) => (x.key === 'path' ? { ...x, value: scalar(x.value, (s) => join(prefix, s)) } : x)) } : scalar(n, (s) => join(prefix, s)));
      return { ...e, value: v.kind === 'seq' ? { ...v, items: v.items.map(one) } : one(v) };
    }
    if (e.key === 'build') {
      const ctx = (s: string) => (/^[a-z]+:\/\//.test(s) || path.isAbsolute(s) ? s : join(prefix, s));
      return { ...e, value: v.kind === 'map' ? { ...v, entries: v.entries.map((x) => (x.key === 'context' ? { ...x, value: scalar(x.value, ctx) } : x)) } : scalar(v, ctx) };
    }
    return e;
  });
  return { ...service, entries };
}

/** String scalars interpolated now with `env` (an include's env_file), `$` kept literal for the later pass. */
function interpolateTree(c: Collector, node: LNode, env: Readonly<Record<string, string>>): LNode {
  if (node.kind === 'seq') return { ...node, items: node.items.map((i) => interpolateTree(c, i, env)) };
  if (node.kind === 'map') return { ...node, entries: node.entries.map((e) => ({ ...e, value: interpolateTree(c, e.value, env) })) };
  if (typeof node.value !== 'string') return node;
  const r = interpolate(node.value, (n) => (Object.hasOwn(env, n) ? env[n] : undefined));
  return r.ok ? rebased(node, r.value.replaceAll('$', '$$')) : node;
}

/**
 * The other files `text` (the config at `file`, absolute) names through `include` (with their
 * env files) and `extends.file`, recursively, given how to read one (undefined: unreadable).
 * Unparsable files are skipped here; composing reports them.
 */
export async function readReferencedFiles(file: string, mainText: string, env: Readonly<Record<string, string>>, read: (abs: string) => Promise<string | undefined>): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const queue: [string, string][] = [[file, mainText]];
  const seen = new Set([file]);
  while (queue.length > 0) {
    const [f, t] = queue.shift()!;
    let root: LMap;
    const scratch = new Collector(f, env);
    try {
      root = parseYamlTree(t, scratch);
    } catch {
      continue;
    }
    const names: string[] = [];
    const envFiles = new Set<string>();
    const include = root.entries.find((e) => e.key === 'include');
    for (const item of include ? includeItems(scratch, include, f, env) : []) {
      names.push(item.file, ...item.overrides, ...item.envFiles);
      for (const e of item.envFiles) envFiles.add(e);
    }
    const services = root.entries.find((e) => e.key === 'services')?.value;
    for (const s of services?.kind === 'map' ? services.entries : []) {
      const ext = s.value.kind === 'map' ? s.value.entries.find((e) => e.key === 'extends')?.value : undefined;
      const fl = ext?.kind === 'map' ? ext.entries.find((e) => e.key === 'file') : undefined;
      const ft = fl === undefined ? undefined : text(scratch, fl.value, '', env);
      if (ft !== undefined) names.push(path.resolve(path.dirname(f), ft));
    }
    for (const name of names) {
      if (seen.has(name)) continue;
      seen.add(name);
      const content = await read(name);
      if (content === undefined) continue;
      Object.defineProperty(out, name, { value: content, enumerable: true, writable: true, configurable: true });
      if (!envFiles.has(name)) queue.push([name, content]);
    }
  }
  return out;
}
