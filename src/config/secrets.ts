/**
 * `secrets:` and `configs:` — top-level definitions (`file:`, `environment:`, configs also
 * `content:`; `external:` refused, `name:` accepted) and service references (short: the name;
 * long: `source`, `target`, `uid`, `gid`, `mode`).
 *
 * Values never enter the spec: a definition keeps where its value came from and a digest of it;
 * the value itself is kept in this process (`secretValue(digest)`) until the deployment's root
 * has its copy (src/deploy/secret-files.ts), so spec.json, plan.json, logs and errors never hold it.
 */
import { createHash } from 'node:crypto';
import { posix } from 'node:path';
import type { Collector, LEntry, LNode } from './nodes.ts';
import { entryPos, indexPath, keyPath } from './nodes.ts';
import { checkKeys, mapEntries, readBool, readString } from './read.ts';
import { insideRoot } from './values.ts';

/** A top-level secret or config: where its value comes from, and a digest of the value. */
export interface SecretSpec {
  readonly kind: 'secret' | 'config';
  readonly name: string;
  readonly origin: 'file' | 'environment' | 'content';
  /** `file:` — relative to the config file's directory, normalised. */
  readonly file?: string;
  /** `environment:` — the variable's name (never its value). */
  readonly variable?: string;
  /** SHA-256 of the value (hex): what tells revisions apart. */
  readonly digest: string;
}

/** A service's use of a secret or config: mounted read-only at `target`. */
export interface SecretMountSpec {
  readonly kind: 'secret' | 'config';
  readonly source: string;
  /** Absolute path in the container: secrets default to /run/secrets/<source>, configs to /<source>. */
  readonly target: string;
  /** Owner and mode of the file the container sees (the host copy; see README, "Secrets and configs"). */
  readonly uid?: number;
  readonly gid?: number;
  /** Default 0600 (with no uid: readable by root in the container only). */
  readonly mode: number;
}

/** A top-level definition as read, before its file (if any) is read. */
export interface SecretDraft {
  readonly kind: 'secret' | 'config';
  readonly name: string;
  readonly origin: 'file' | 'environment' | 'content';
  readonly file?: string;
  readonly variable?: string;
  /** The value of an `environment:` or `content:` definition (kept out of the spec). */
  readonly value?: Buffer;
  readonly path: string;
  readonly pos: { line: number; column: number };
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const values = new Map<string, Buffer>();

/** The value with this digest, when this process read it (see the top of this file). */
export function secretValue(digest: string): Buffer | undefined {
  return values.get(digest);
}

/** Digests a value and keeps it for `secretValue`. */
export function rememberSecret(value: Buffer): string {
  const digest = createHash('sha256').update(value).digest('hex');
  values.set(digest, value);
  return digest;
}

/** The file name of a mount's host copy under `<root>/secrets/`: the value's digest, owner and mode. */
export function secretFileName(secret: Pick<SecretSpec, 'digest'>, m: Pick<SecretMountSpec, 'uid' | 'gid' | 'mode'>): string {
  return `${secret.digest}-${m.uid ?? 'u'}-${m.gid ?? 'g'}-${m.mode.toString(8).padStart(4, '0')}`;
}

/** Reads top-level `secrets:` or `configs:`. */
export function readSecretDefinitions(c: Collector, entry: LEntry | undefined, key: 'secrets' | 'configs'): Map<string, SecretDraft> {
  const out = new Map<string, SecretDraft>();
  if (entry === undefined) return out;
  const kind = key === 'secrets' ? 'secret' : 'config';
  const sources = key === 'secrets' ? ['file', 'environment'] : ['file', 'environment', 'content'];
  for (const e of mapEntries(c, entry.value, key, `a map of ${kind} name → {file: …}`) ?? []) {
    const path = keyPath(key, e.key);
    if (!NAME.test(e.key)) {
      c.issue(path, e.keyPos, `${kind} name '${e.key}' is invalid: use letters, digits, '.', '_' and '-', starting with a letter or digit`);
      continue;
    }
    const keys = checkKeys(c, mapEntries(c, e.value, path) ?? [], path, { supported: [...sources, 'external', 'name'] });
    const external = keys.get('external');
    if (external && readBool(c, external.value, keyPath(path, 'external')) !== false) {
      c.issue(keyPath(path, 'external'), entryPos(external), `external ${kind}s are Swarm objects, which depad does not use; give the value with file: ./${e.key}.txt or environment: VAR${kind === 'config' ? ' or content: |' : ''} instead`);
      continue;
    }
    const name = keys.get('name');
    if (name) readString(c, name.value, keyPath(path, 'name'));
    const given = sources.filter((s) => keys.has(s));
    if (given.length !== 1) {
      c.issue(path, e.keyPos, given.length === 0 ? `${kind} '${e.key}' needs its value: ${sources.map((s) => `${s}:`).join(' or ')}` : `${kind} '${e.key}' has ${given.join(' and ')}; give exactly one`);
      continue;
    }
    const origin = given[0] as SecretDraft['origin'];
    const node = keys.get(origin)!;
    const at = keyPath(path, origin);
    const text = readString(c, node.value, at, { what: origin === 'file' ? 'a path relative to the config file' : origin === 'environment' ? 'a variable name' : 'the text' });
    if (text === undefined) continue;
    const base = { kind, name: e.key, origin, path: at, pos: entryPos(node) } as const;
    if (origin === 'file') {
      const inside = insideRoot(text);
      if (!inside.ok) c.issue(at, entryPos(node), `a ${kind} file must be inside the config file's directory, given relative to it (such as "./${e.key}.txt"); ${inside.error}`);
      else out.set(e.key, { ...base, file: inside.value });
    } else if (origin === 'environment') {
      const value = c.lookup(text);
      if (value === undefined) c.issue(at, entryPos(node), `variable ${text} is not set; pass it to depad (--env ${text}=… or --env-file) or use file:`);
      else out.set(e.key, { ...base, variable: text, value: Buffer.from(value) });
    } else {
      out.set(e.key, { ...base, value: Buffer.from(text) });
    }
  }
  return out;
}

/** Reads a service's `secrets:` or `configs:` list; every source must be defined at top level. */
export function readSecretMounts(c: Collector, node: LNode, path: string, key: 'secrets' | 'configs', defined: ReadonlySet<string>): SecretMountSpec[] {
  const kind = key === 'secrets' ? 'secret' : 'config';
  if (node.kind !== 'seq') {
    c.issue(path, node.pos, `expected a list of ${kind} names or {source, target} entries`);
    return [];
  }
  const out: SecretMountSpec[] = [];
  node.items.forEach((item, i) => {
    const itemPath = indexPath(path, i);
    let source: string | undefined;
    let target: string | undefined;
    const extra: { uid?: number; gid?: number; mode?: number } = {};
    if (item.kind === 'map') {
      const keys = checkKeys(c, item.entries, itemPath, { supported: ['source', 'target', 'uid', 'gid', 'mode'] });
      const s = keys.get('source');
      if (s === undefined) return c.issue(itemPath, item.pos, `a ${kind} entry in long syntax needs source: (the ${kind}'s name)`);
      source = readString(c, s.value, keyPath(itemPath, 'source'));
      const t = keys.get('target');
      if (t) target = readString(c, t.value, keyPath(itemPath, 'target'));
      for (const f of ['uid', 'gid', 'mode'] as const) {
        const n = keys.get(f);
        if (!n) continue;
        const text = readString(c, n.value, keyPath(itemPath, f), { numbers: true, what: f === 'mode' ? 'an octal mode such as 0440' : 'a numeric id such as "1000"' });
        if (text === undefined) continue;
        // As compose reads YAML 1.1: a leading 0 (or 0o) is octal, else decimal.
        const value = f !== 'mode' ? (/^\d+$/.test(text) ? Number(text) : NaN) : /^0o?[0-7]+$/.test(text) ? parseInt(text.replace(/^0o?/, '') || '0', 8) : /^\d+$/.test(text) ? Number(text) : NaN;
        if (!Number.isInteger(value) || value < 0 || (f === 'mode' && value > 0o7777)) c.issue(keyPath(itemPath, f), entryPos(n), `${f} must be ${f === 'mode' ? 'an octal mode such as 0440' : 'a numeric id such as 1000'}, found "${text}"`);
        else extra[f] = value;
      }
    } else {
      source = readString(c, item, itemPath, { what: `a ${kind} name` });
    }
    if (source === undefined) return;
    if (!defined.has(source)) return c.issue(itemPath, item.pos, `${kind} '${source}' is not defined; add it under the top-level ${key}: key`);
    const defaultTarget = kind === 'secret' ? `/run/secrets/${source}` : `/${source}`;
    const full = target === undefined ? defaultTarget : kind === 'secret' && !posix.isAbsolute(target) ? `/run/secrets/${target}` : target;
    if (!posix.isAbsolute(full)) return c.issue(itemPath, item.pos, `a config's target must be an absolute path in the container, such as /etc/app.conf; found "${target}"`);
    out.push({ kind, source, target: posix.normalize(full), ...extra, mode: extra.mode ?? 0o600 });
  });
  return out;
}
