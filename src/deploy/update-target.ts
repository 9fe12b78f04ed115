/**
 * What an update goes to, from what a client says: a config file (or its text, from a remote
 * client), variables over the current revision's, new images for some services.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { loadConfig, parseConfig, readReferencedFiles, withImages, withReplicas } from '../config/index.ts';
import type { ConfigWarning } from '../config/index.ts';
import type { DeploymentSpec } from '../config/spec.ts';
import { DepadError } from '../errors.ts';
import type { DeploymentRecord } from '../store/records.ts';
import type { PullPolicy } from './create.ts';
import { readRevisionSpec } from './root-dir.ts';
import { secretFileValues } from './secret-files.ts';
import type { ReuseImages } from './build.ts';

/** What to update to. */
export interface UpdateRequest {
  spec: DeploymentSpec;
  env: Readonly<Record<string, string>>;
  /** service → image given on the command line (already applied to `spec`), kept with the revision. */
  overrides?: Readonly<Record<string, string>>;
  /** What makes the revision (history's SOURCE): a scale is a replica count alone. */
  source?: 'update' | 'rollback' | 'scale';
  /** For a rollback: the revision restored. */
  from?: number;
  pull?: PullPolicy;
  /** `build:` services' images to reuse instead of building: a rollback's revision's, or `current` (the current revision's). */
  reuseImages?: ReuseImages | 'current';
  /** `build:` services that keep the current revision's image (the config was re-read from its kept copy, their builds unchanged). */
  reuseCurrentFor?: readonly string[];
}

/** What to update to, as a client says it: a config file and its variables, and/or new images per service. */
export interface UpdateTarget {
  /** Absolute path of the new config (default: the current revision's config). */
  configFile?: string;
  /** Or the new config's text, sent by a remote client (no files beside it: no env_file, no relative bind mounts). */
  configText?: { text: string; name: string };
  /** `configFile` came from a remote client's bundle: its workflows may not run commands on this host. */
  fromRemote?: boolean;
  /** Variables given for this update: they override the current revision's (all of them, with `resetEnv`). */
  env?: Readonly<Record<string, string>>;
  /** Start from no variables instead of the current revision's (`update --reset-env`). */
  resetEnv?: boolean;
  /** service → new image. */
  overrides?: Readonly<Record<string, string>>;
  /** service → replica count (`depad scale web=3`, `update --scale`): over the config's. */
  scale?: Readonly<Record<string, number>>;
  pull?: PullPolicy;
  /** Config warnings (unset variables…), for the caller to show. */
  warn?: (warning: ConfigWarning) => void;
  /** Other warnings (a variable the update drops), for the caller to show. */
  notice?: (message: string) => void;
}

/**
 * Builds the update request for `target`: its config (or the current one, re-read with the
 * variables when some are given) with its image overrides applied. The variables are the current
 * revision's with the given ones over them (only the given ones with `resetEnv`); a variable the
 * update drops is named through `notice`.
 */
export async function updateRequestFor(record: DeploymentRecord, target: UpdateTarget): Promise<UpdateRequest> {
  const overrides = target.overrides ?? {};
  const given = target.env ?? {};
  const current = await readRevisionSpec(record.rootDir, record.revision);
  const env: Record<string, string> = target.resetEnv ? { ...given } : { ...current.env, ...given };
  const options = target.warn === undefined ? {} : { warn: target.warn };
  let spec = await loadGivenConfig(target, env, target.warn);
  let reuse: string[] | undefined;
  if (spec === undefined && (Object.keys(given).length > 0 || target.resetEnv)) {
    const again = await currentConfigWith(record, current.spec, env, options);
    // The same config with new variables: replica counts set by depad scale stay.
    const counts = Object.fromEntries(Object.values(again.spec.services).filter((s) => current.spec.services[s.name] !== undefined && (current.spec.services[s.name]!.replicas ?? 1) !== (s.replicas ?? 1)).map((s) => [s.name, current.spec.services[s.name]!.replicas ?? 1]));
    spec = Object.keys(counts).length > 0 ? withReplicas(again.spec, counts) : again.spec;
    // ... and so do images given earlier with -s --image: the current config is the file with them.
    const earlier = Object.fromEntries(Object.entries(current.spec.imageOverrides ?? {}).filter(([s]) => spec?.services[s] !== undefined && overrides[s] === undefined));
    if (Object.keys(earlier).length > 0) spec = withImages(spec, earlier);
    if (again.copy) reuse = await keptBuilds(record, current.spec, spec);
  }
  const scale = target.scale ?? {};
  if (spec === undefined && (Object.keys(overrides).length > 0 || Object.keys(scale).length > 0)) {
    const source = Object.keys(overrides).length === 0 ? { source: 'scale' as const } : {};
    return { spec: withReplicas(withImages(current.spec, overrides), scale), env, overrides: { ...current.spec.imageOverrides, ...overrides }, pull: target.pull ?? 'missing', reuseImages: 'current', ...source };
  }
  if (spec === undefined) throw new DepadError('DEPAD_USAGE', 'say what to update to: -f <config file>, -e KEY=VALUE (the current config with new variables), -s <service> --image <ref>, or --scale <service>=<n>');
  for (const key of Object.keys(current.env).sort()) {
    if (!(key in env)) target.notice?.(`variable ${key} was set for revision ${record.revision} and is not set now (--reset-env): the config's default applies`);
  }
  const imaged = withImages(spec, overrides);
  for (const [service, image] of Object.entries(current.spec.imageOverrides ?? {}).sort()) {
    if (imaged.imageOverrides?.[service] === undefined && spec.services[service] !== undefined && spec.services[service].image !== image) target.notice?.(`${service} ran ${image}, given with --image for an earlier revision; the new config's image (${spec.services[service].image}) applies now`);
  }
  return { spec: withReplicas(imaged, scale), env, overrides: { ...imaged.imageOverrides }, pull: target.pull ?? 'missing', ...(reuse === undefined ? {} : { reuseCurrentFor: reuse }) };
}

/**
 * The config re-read from the copy kept with the revision (its file changed or is gone, e.g. a
 * remote client's bundle): `build:` services whose build is unchanged keep their built images;
 * one whose build changed (a variable in its args) needs its context, which must still be there.
 */
async function keptBuilds(record: DeploymentRecord, before: DeploymentSpec, after: DeploymentSpec): Promise<string[]> {
  const keep: string[] = [];
  for (const s of Object.values(after.services)) {
    if (s.build === undefined) continue;
    if (JSON.stringify(before.services[s.name]?.build) === JSON.stringify(s.build)) {
      keep.push(s.name);
      continue;
    }
    const context = path.resolve(path.dirname(after.file), s.build.context);
    if (!(await fs.stat(context).then((st) => st.isDirectory(), () => false))) {
      throw new DepadError('DEPAD_USAGE', `${s.name}'s build changes with these variables, and its build context (${context}) is not on this host any more`, {
        hint: `give the config and its files again: depad update ${record.name} -f <config file> -e …`,
      });
    }
  }
  return keep;
}

/**
 * Reads the config a client gives: as text (a remote client), as a file unpacked from a remote
 * client's bundle (`fromRemote`), or as a path (this host); undefined when it gives none. What
 * comes from a remote client passes `assertRemoteConfig`.
 */
export async function loadGivenConfig(
  given: Pick<UpdateTarget, 'configText' | 'configFile' | 'fromRemote'>,
  env: Readonly<Record<string, string>>,
  warn?: (w: ConfigWarning) => void,
): Promise<DeploymentSpec | undefined> {
  if (given.configText !== undefined) return parseRemoteConfig(given.configText, env, warn);
  if (given.configFile === undefined) return undefined;
  const spec = await loadConfig(given.configFile, env, warn === undefined ? {} : { warn });
  return given.fromRemote ? assertRemoteConfig(spec, path.basename(given.configFile), path.dirname(given.configFile)) : spec;
}

/**
 * The current revision's config, read again with `env`: from its file when that is unchanged
 * since (env files and bind-mount sources beside it are read again too), else from the copy kept
 * with the revision (its bind-mount sources are in the root already).
 */
async function currentConfigWith(record: DeploymentRecord, currentSpec: DeploymentSpec, env: Readonly<Record<string, string>>, options: { warn?: (w: ConfigWarning) => void }): Promise<{ spec: DeploymentSpec; copy: boolean }> {
  const file = currentSpec.file;
  const kept = await fs.readFile(path.join(record.rootDir, 'revisions', String(record.revision), 'config.yml'), 'utf8');
  const onDisk = await fs.readFile(file, 'utf8').catch(() => undefined);
  if (onDisk === kept) return { spec: await loadConfig(file, env, options), copy: false };
  // Files it includes or extends were copied into the root at their paths beside the config.
  const dir = path.dirname(file);
  const files = await readReferencedFiles(file, kept, env, async (abs) => {
    const rel = path.relative(dir, abs);
    return rel.startsWith('..') || path.isAbsolute(rel) ? undefined : fs.readFile(path.join(record.rootDir, rel), 'utf8').catch(() => undefined);
  });
  // Files its secrets and configs name: their copies in the root (the current revision's values).
  const secretFiles = await secretFileValues(record.rootDir, currentSpec);
  return { spec: { ...parseConfig(kept, file, env, { ...options, files, secretFiles }), files: [] }, copy: true };
}
/**
 * Parses a config sent as text by a remote client. Files beside it cannot come along, so a bind
 * mount (whose files would silently be missing) is refused, as a missing env_file already is.
 */
export function parseRemoteConfig(text: { text: string; name: string }, env: Readonly<Record<string, string>>, warn?: (w: ConfigWarning) => void): DeploymentSpec {
  const spec = parseConfig(text.text, remoteConfigPath(text.name), env, warn === undefined ? {} : { warn });
  const binds = Object.entries(spec.services).flatMap(([service, s]) => s.volumes.filter((v) => v.type === 'bind' && (!v.onHost || v.outside !== undefined)).map((v) => (v.type === 'bind' && v.outside !== undefined ? `${service}: ${v.outside}` : `${service}: ./${v.source}`)));
  if (binds.length > 0) {
    throw new DepadError('DEPAD_CONFIG_INVALID', `${text.name}: bind mounts need their files on the agent's host, which a remote client cannot send (${binds.join(', ')})`, {
      hint: 'use named volumes, or run the command on the agent\'s host',
    });
  }
  return assertRemoteConfig(spec, text.name);
}

/**
 * Refuses what a config from a remote client (as text, or in a bundle unpacked at `bundleDir`)
 * may not do on the agent's host: build from a context outside the bundle, run `run:` steps.
 * Returns the spec.
 */
export function assertRemoteConfig(spec: DeploymentSpec, name: string, bundleDir?: string): DeploymentSpec {
  assertBuildsInBundle(spec, name, bundleDir);
  assertNothingOutside(spec, name);
  return assertNoRunSteps(spec, name);
}

/** Refuses `build:` whose context (or Dockerfile) is not in the bundle at `bundleDir` (all of them without one): it would be read from the agent's disk. */
function assertBuildsInBundle(spec: DeploymentSpec, name: string, bundleDir: string | undefined): void {
  const inside = (p: string) => bundleDir !== undefined && (p === bundleDir || p.startsWith(bundleDir + path.sep));
  const outside = (s: DeploymentSpec['services'][string]) => {
    if (s.build === undefined) return false;
    const context = path.resolve(path.dirname(spec.file), s.build.context);
    const dockerfile = s.build.dockerfileInline === undefined ? path.resolve(context, s.build.dockerfile ?? 'Dockerfile') : context;
    return !inside(context) || !inside(dockerfile);
  };
  const builds = Object.values(spec.services).filter(outside).map((s) => s.name);
  if (builds.length > 0) {
    throw new DepadError('DEPAD_CONFIG_INVALID', `${name}: ${builds.join(', ')} ${builds.length === 1 ? 'has' : 'have'} build:, whose context is on the client's disk, which a remote client cannot send yet (depad never reads a build context from a path on the agent's host a remote client names)`, {
      hint: 'build the image where the context is and give it with image: (docker save | docker load onto the agent\'s host), or run the command on the agent\'s host',
    });
  }
}

/** Refuses bind sources that leave the config's directory (`../backend`): they name the client's disk, and would resolve beside the agent's upload directory. */
function assertNothingOutside(spec: DeploymentSpec, name: string): void {
  const outside = Object.values(spec.services).flatMap((s) => s.volumes.flatMap((v) => (v.type === 'bind' && v.outside !== undefined ? [`${s.name}: ${v.outside}`] : [])));
  if (outside.length > 0) {
    throw new DepadError('DEPAD_CONFIG_INVALID', `${name}: bind mounts leave the config file's directory (${outside.join(', ')}): a remote client sends only the files beside its config`, {
      hint: "move the files beside the config (./…), or give the path on the agent's host as an absolute path (which the agent's host policy must allow)",
    });
  }
}

/** Refuses workflows with `run:` steps: they would run commands on the agent's host. */
function assertNoRunSteps(spec: DeploymentSpec, name: string): DeploymentSpec {
  const hostSteps = Object.values(spec.depad.workflows).filter((w) => w.steps.some((s) => s.kind === 'run')).map((w) => w.name);
  if (hostSteps.length > 0) {
    throw new DepadError('DEPAD_CONFIG_INVALID', `${name}: workflow ${hostSteps.join(', ')} has run: steps, which run commands on the agent's host; a remote client may only give exec: steps (in a container)`, {
      hint: 'use exec: steps, or put the config on the agent\'s host and run the command there',
    });
  }
  return spec;
}

/** Where a config sent by a remote client is said to be (for messages; nothing is read there). */
export function remoteConfigPath(name: string): string {
  return `/remote/${name}`;
}
