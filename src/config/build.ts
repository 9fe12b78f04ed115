/**
 * A service's `build:` (Compose Specification, build.md): the short form (the context path) and
 * the long form's keys depad carries out with the Engine API's classic builder. Keys that would
 * reach the host (`network: host`, `privileged`, `entitlements`, `ssh`) or need a registry or
 * BuildKit (`cache_to`, `secrets`, `additional_contexts`, …) are refused with the reason.
 */
import type { Collector, LNode, Pos } from './nodes.ts';
import { describe, entryPos, indexPath, keyPath } from './nodes.ts';
import { checkKeys, mapEntries, readBool, readKeyValues, readString, readStringList } from './read.ts';
import { sortedRecord } from './freeze.ts';
import type { ServiceScope } from './service-parts.ts';
import { readExtraHosts, labelsOf } from './service.ts';
import { parseBytes } from './values.ts';

/** A service's build, as written (paths as given; they are resolved against the config file's directory when built). */
export interface BuildSpec {
  /** The context directory, relative to the config file's directory (or absolute). */
  readonly context: string;
  /** The Dockerfile, relative to the context (or absolute); undefined with `dockerfileInline` (then the default is `Dockerfile`). */
  readonly dockerfile?: string;
  /** The Dockerfile's text, given in the config. */
  readonly dockerfileInline?: string;
  /** Build arguments, interpolated; an arg given without a value and unset in the environment is absent. */
  readonly args: Readonly<Record<string, string>>;
  readonly target?: string;
  /** Labels of the built image (depad adds its own). */
  readonly labels: Readonly<Record<string, string>>;
  /** `none` or `default` (the engine's bridge); `host` is refused (it reaches the host's network). */
  readonly network?: 'none' | 'default';
  readonly shmSizeBytes?: number;
  /** `host:ip` entries for the build's /etc/hosts. */
  readonly extraHosts: readonly string[];
  /** Local images whose layers the builder may reuse. */
  readonly cacheFrom: readonly string[];
  readonly noCache: boolean;
  /** Pull newer base images first (needs their registry; default false). */
  readonly pull: boolean;
  /** More tags for the built image, beside depad's and `image:`. */
  readonly tags: readonly string[];
  /** The one platform built, the host's (`linux/amd64`…), when given. */
  readonly platform?: string;
}

/** The `build:` keys depad carries out. */
export const BUILD_KEYS = [
  'context', 'dockerfile', 'dockerfile_inline', 'args', 'target', 'labels', 'network', 'shm_size', 'extra_hosts',
  'cache_from', 'no_cache', 'pull', 'tags', 'platforms',
] as const;

const REFUSED: Readonly<Record<string, string>> = {
  ssh: 'build.ssh forwards an SSH agent or key from the host into the build; depad does not (copy what the build needs into the context)',
  secrets: 'build.secrets need BuildKit, which depad does not drive; pass values as build args (args:) or copy files into the context',
  cache_to: 'build.cache_to exports the cache to a registry or a directory; depad builds with the engine\'s local cache only; remove it',
  additional_contexts: 'build.additional_contexts need BuildKit, which depad does not drive; put what the build needs in its one context',
  privileged: 'build.privileged would give the build full access to the host; depad refuses it (build that image with docker build yourself)',
  entitlements: 'build.entitlements grant the build host access; depad refuses them (build that image with docker build yourself)',
  isolation: 'build.isolation is for Windows containers; remove it',
  ulimits: 'build.ulimits is not carried out by depad; remove it',
  no_cache_filter: 'build.no_cache_filter needs BuildKit; use no_cache: true',
  provenance: 'build.provenance needs BuildKit (attestations); remove it',
  sbom: 'build.sbom needs BuildKit (attestations); remove it',
};

/** The platform the engine's host runs, as `platforms` must name it. */
export function hostPlatform(): string {
  const arch = ({ x64: 'amd64', arm64: 'arm64', arm: 'arm/v7', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64' } as Record<string, string>)[process.arch] ?? process.arch;
  return `linux/${arch}`;
}

/** Reads `build:` at `path`; undefined when it has problems (they are recorded). */
export function readBuild(s: ServiceScope, node: LNode, path: string): BuildSpec | undefined {
  const { c } = s;
  if (node.kind === 'scalar' && typeof node.value === 'string') {
    const context = c.text(node, path);
    if (context === undefined) return undefined;
    if (!contextOk(c, context, path, node.pos)) return undefined;
    return { context, args: {}, labels: {}, extraHosts: [], cacheFrom: [], noCache: false, pull: false, tags: [] };
  }
  const entries = mapEntries(c, node, path, 'a context path (build: ./app) or a map with context:, dockerfile:, args:…');
  if (entries === undefined) return undefined;
  const keys = checkKeys(c, entries, path, { supported: BUILD_KEYS, special: REFUSED });
  const at = (k: string) => keyPath(path, k);
  const before = c.issues.length;
  const str = (k: (typeof BUILD_KEYS)[number], what: string): string | undefined => {
    const e = keys.get(k);
    return e === undefined ? undefined : readString(c, e.value, at(k), { what });
  };
  const out: { -readonly [K in keyof BuildSpec]: BuildSpec[K] } = { context: '.', args: {}, labels: {}, extraHosts: [], cacheFrom: [], noCache: false, pull: false, tags: [] };
  const context = str('context', 'a context directory such as ./app');
  if (context !== undefined && contextOk(c, context, at('context'), entryPos(keys.get('context')!))) out.context = context;
  const dockerfile = str('dockerfile', 'a Dockerfile path');
  const inline = str('dockerfile_inline', 'the Dockerfile\'s text');
  if (dockerfile !== undefined && inline !== undefined) {
    c.issue(at('dockerfile_inline'), entryPos(keys.get('dockerfile_inline')!), 'give dockerfile or dockerfile_inline, not both');
  } else if (dockerfile !== undefined) {
    if (dockerfile === '') c.issue(at('dockerfile'), entryPos(keys.get('dockerfile')!), 'dockerfile must not be empty; remove it to use Dockerfile');
    else out.dockerfile = dockerfile;
  } else if (inline !== undefined) out.dockerfileInline = inline;
  const args = keys.get('args');
  if (args) out.args = readArgs(c, args.value, at('args'));
  const target = str('target', 'a build stage name');
  if (target !== undefined && target !== '') out.target = target;
  const labels = keys.get('labels');
  if (labels) out.labels = labelsOf(c, labels.value, at('labels'));
  const network = str('network', 'none, default or host');
  if (network !== undefined) {
    const pos = entryPos(keys.get('network')!);
    if (network === 'none' || network === 'default') out.network = network;
    else if (network === 'host') c.issue(at('network'), pos, 'network: host gives the build the host\'s network (it reaches services on the host); depad refuses it: use network: default, or none');
    else c.issue(at('network'), pos, `network "${network}": depad builds on the engine's default network or none; use network: default or network: none`);
  }
  const shm = keys.get('shm_size');
  if (shm) {
    const bytes = byteSize(c, shm.value, at('shm_size'));
    if (bytes === undefined) c.issue(at('shm_size'), entryPos(shm), `expected a size such as "64m" or 67108864, found ${describe(shm.value)}`);
    else out.shmSizeBytes = bytes;
  }
  const hosts = keys.get('extra_hosts');
  if (hosts) out.extraHosts = readExtraHosts(s, hosts.value, at('extra_hosts'));
  const cache = keys.get('cache_from');
  if (cache) {
    const list = readStringList(c, cache.value, at('cache_from')) ?? [];
    list.forEach((ref, i) => {
      if (/^type=|,/.test(ref) && !/^type=docker\b/.test(ref)) c.issue(indexPath(at('cache_from'), i), cache.value.kind === 'seq' ? (cache.value.items[i]?.pos ?? entryPos(cache)) : entryPos(cache), `cache_from "${ref}": depad uses local images only (no registry or cache export); give an image on this host, such as app:1`);
    });
    out.cacheFrom = list.filter((r) => !r.includes('=') && !r.includes(','));
  }
  for (const k of ['no_cache', 'pull'] as const) {
    const e = keys.get(k);
    const b = e === undefined ? undefined : readBool(c, e.value, at(k));
    if (b !== undefined) out[k === 'no_cache' ? 'noCache' : 'pull'] = b;
  }
  const tags = keys.get('tags');
  if (tags) out.tags = readStringList(c, tags.value, at('tags')) ?? [];
  const platforms = keys.get('platforms');
  if (platforms) {
    const list = readStringList(c, platforms.value, at('platforms')) ?? [];
    const host = hostPlatform();
    if (list.length > 1 || (list[0] !== undefined && list[0] !== host && list[0] !== host.replace(/^linux\//, ''))) {
      c.issue(at('platforms'), entryPos(platforms), `depad builds for this host's platform only (${host}); found ${list.join(', ')}: remove platforms or give [${host}]`);
    } else if (list[0] !== undefined) out.platform = host;
  }
  return c.issues.length === before ? out : undefined;
}

/** Build args: a map or `KEY=VALUE` list; `KEY` alone takes the variable from the environment (absent when unset), as compose does. */
function readArgs(c: Collector, node: LNode, path: string): Record<string, string> {
  const out: [string, string][] = [];
  const bare = new Set<string>();
  if (node.kind === 'seq') node.items.forEach((item) => item.kind === 'scalar' && typeof item.value === 'string' && !item.value.includes('=') && bare.add(item.value));
  if (node.kind === 'map') for (const e of node.entries) if (e.value.kind === 'scalar' && e.value.value === null) bare.add(e.key);
  for (const kv of readKeyValues(c, node, path, 'build arg') ?? []) {
    if (kv.key === '' || /[\s=]/.test(kv.key)) c.issue(kv.path, kv.pos, `"${kv.key}" is not a valid build arg name`);
    else if (bare.has(kv.key)) {
      const value = c.lookup(kv.key);
      if (value !== undefined) out.push([kv.key, value]);
    } else out.push([kv.key, kv.value]);
  }
  return sortedRecord(out);
}

function contextOk(c: Collector, context: string, path: string, pos: Pos): boolean {
  if (context === '') {
    c.issue(path, pos, 'the build context must not be empty; give a directory such as . or ./app');
    return false;
  }
  if (/^(https?:\/\/|git@|git:\/\/|ssh:\/\/)|\.git(#|$)/.test(context)) {
    c.issue(path, pos, `build context "${context}" is a remote (git/URL) context; depad builds from a directory on this machine: clone it and give its path`);
    return false;
  }
  return true;
}

/** A byte size: a number, or `64m`, `1g`, `512k` (binary units; variables interpolated). */
function byteSize(c: Collector, node: LNode, path: string): number | undefined {
  if (node.kind !== 'scalar') return undefined;
  if (typeof node.value === 'number' && Number.isInteger(node.value) && node.value >= 0) return node.value;
  if (typeof node.value !== 'string') return undefined;
  const text = c.text(node, path);
  return text === undefined ? undefined : parseBytes(text);
}
