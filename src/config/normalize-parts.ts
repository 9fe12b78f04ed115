/**
 * The parts of a service that `depad config` (normalize.ts) writes back from their own spec
 * shapes: mounts with their options, the engine keys, `build:`, `secrets:`/`configs:`, and the
 * top-level secret and config definitions (never a value: `content:` shows only its digest).
 */
import type { BuildSpec } from './build.ts';
import type { SecretSpec } from './secrets.ts';
import type { DeploymentSpec, MountSpec, ServiceSpec } from './spec.ts';
import { composeEngineFields } from '../render/engine-fields.ts';

/** One mount in compose's long syntax; a bind inside the root as `./path`. */
export function normalizedMount(m: MountSpec): Record<string, unknown> {
  const { type, source, target, readOnly, selinux, propagation, noCopy, ...extra } = m as MountSpec & { onHost?: true };
  const { onHost, outside: _outside, ...others } = extra as { onHost?: true; outside?: unknown };
  const out: Record<string, unknown> = { type, source: type === 'bind' && onHost !== true ? `./${source}` : source, target, read_only: readOnly };
  if (type === 'bind' && (selinux !== undefined || propagation !== undefined)) out.bind = { ...(propagation ? { propagation } : {}), ...(selinux ? { selinux } : {}) };
  if (type === 'volume' && noCopy === true) out.volume = { nocopy: true };
  return { ...out, ...rest(others, []) };
}

/** The compose keys of a service's engine part, with `container_name` and `links` (as their aliases). */
export function normalizedEngine(s: ServiceSpec): Record<string, unknown> {
  const e = s.engine;
  if (e === undefined) return {};
  const out = composeEngineFields(s);
  if (e.aliases[0] !== undefined) out.container_name = e.aliases[0];
  if (e.links.length > 0) out.links = e.links.map((l) => `${l.service}:${l.alias}`);
  return out;
}

/** `build:` in its long syntax. */
export function normalizedBuild(b: BuildSpec): Record<string, unknown> {
  const c = b.context;
  const out: Record<string, unknown> = { context: c.startsWith('/') || c.startsWith('./') || c.startsWith('../') || c === '.' ? c : c === '' ? '.' : `./${c}` };
  if (b.dockerfile !== undefined) out.dockerfile = b.dockerfile;
  if (b.dockerfileInline !== undefined) out.dockerfile_inline = b.dockerfileInline;
  if (Object.keys(b.args).length > 0) out.args = { ...b.args };
  if (b.target !== undefined) out.target = b.target;
  if (Object.keys(b.labels).length > 0) out.labels = { ...b.labels };
  if (b.network !== undefined) out.network = b.network;
  if (b.shmSizeBytes !== undefined) out.shm_size = `${b.shmSizeBytes}b`;
  if (b.extraHosts.length > 0) out.extra_hosts = [...b.extraHosts];
  if (b.cacheFrom.length > 0) out.cache_from = [...b.cacheFrom];
  if (b.noCache) out.no_cache = true;
  if (b.pull) out.pull = true;
  if (b.tags.length > 0) out.tags = [...b.tags];
  if (b.platform !== undefined) out.platforms = [b.platform];
  return out;
}

/** A service's `secrets:` and `configs:` in their long syntax. */
export function normalizedSecretMounts(s: ServiceSpec): Record<string, unknown> {
  const out: Record<string, unknown[]> = {};
  for (const m of s.secretMounts ?? []) {
    (out[m.kind === 'secret' ? 'secrets' : 'configs'] ??= []).push({
      source: m.source,
      target: m.target,
      ...(m.uid === undefined ? {} : { uid: String(m.uid) }),
      ...(m.gid === undefined ? {} : { gid: String(m.gid) }),
      mode: `0${m.mode.toString(8)}`,
    });
  }
  return out;
}

/** The top-level `secrets:` and `configs:`: where each value comes from, never the value. */
export function normalizedSecretDefinitions(spec: DeploymentSpec): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const def = (d: SecretSpec) =>
    d.origin === 'file' ? { file: `./${d.file}` } : d.origin === 'environment' ? { environment: d.variable } : { content: `(not printed: sha256 ${d.digest.slice(0, 12)}…)` };
  for (const key of ['secrets', 'configs'] as const) {
    const defs = spec[key];
    if (defs !== undefined && Object.keys(defs).length > 0) out[key] = Object.fromEntries(Object.values(defs).map((d) => [d.name, def(d)]));
  }
  return out;
}

/** `deploy.update_config` / `rollback_config` as given (durations in compose's syntax). */
export function normalizedRollouts(s: ServiceSpec): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [kind, key] of [['update', 'update_config'], ['rollback', 'rollback_config']] as const) {
    const p = s.rollout?.[kind];
    if (p === undefined) continue;
    out[key] = {
      ...(p.parallelism === undefined ? {} : { parallelism: p.parallelism }),
      ...(p.delayMs === undefined ? {} : { delay: `${p.delayMs}ms` }),
      ...(p.order === undefined ? {} : { order: p.order }),
      ...(p.failureAction === undefined ? {} : { failure_action: p.failureAction }),
      ...(p.monitorMs === undefined ? {} : { monitor: `${p.monitorMs}ms` }),
      ...(p.maxFailureRatio === undefined ? {} : { max_failure_ratio: p.maxFailureRatio }),
    };
  }
  return out;
}

/** Fields of `value` other than `known` (ones other developers add), snake_case. */
export function rest(value: object, known: readonly string[]): Record<string, unknown> {
  return Object.fromEntries(Object.entries(value).filter(([k, v]) => !known.includes(k) && v !== undefined).map(([k, v]) => [snake(k), v]));
}

/** A spec field name as compose writes keys (`workingDir` → `working_dir`). */
export function snake(key: string): string {
  return key.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}
