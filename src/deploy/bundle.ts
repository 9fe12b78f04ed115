/**
 * A config with the files it references, as a remote client sends it to an agent: the config,
 * its env files, bind-mount sources, the files its `run:` steps name, the files `include` and
 * `extends` read, and its build contexts (less what their `.dockerignore` leaves out), each by its
 * path relative to the config's directory. Plain JSON (`{config, files: [{path, mode, data}]}`, data in base64):
 * the format has no links, owners or absolute paths to abuse. The client packs what exists beside
 * the config (never following a link out of its directory); the agent checks every entry before it
 * writes one, into a fresh private directory, and reads the config there like a local one.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { parseDockerignore } from './dockerignore.ts';
import { DepadError } from '../errors.ts';
import { processRuns } from '../pid.ts';
import { analyzeConfig } from '../config/parse.ts';
import { readReferencedFiles } from '../config/compose-files.ts';

/** A packed config. */
export interface Bundle {
  /** The config's path in the bundle (its file name). */
  config: string;
  files: BundleFile[];
}

/** One file: its path relative to the config's directory, its permission bits, its bytes. */
export interface BundleFile {
  path: string;
  mode: number;
  /** Base64. */
  data: string;
}

/** The most a bundle may hold (decoded), and the most files. */
export const BUNDLE_MAX_BYTES = 32 * 1024 * 1024;
export const BUNDLE_MAX_FILES = 10_000;

/** Packs `configFile` and the files it references that exist beside it (see the module comment). */
export async function packBundle(configFile: string, env: Readonly<Record<string, string>>): Promise<Bundle> {
  const dir = path.dirname(configFile);
  const text = await fs.readFile(configFile, 'utf8').catch((error: unknown) => {
    throw new DepadError('DEPAD_CONFIG_UNREADABLE', `cannot read ${configFile}: ${(error as Error).message}`, { hint: 'check the path given with -f' });
  });
  // The files include and extends name (and their env files) travel too, with what they reference.
  const composeFiles = await readReferencedFiles(path.resolve(configFile), text, env, (abs) => fs.readFile(abs, 'utf8').catch(() => undefined));
  // Every host path allowed here: what the draft is read for is which files to pack (the agent applies its own policy).
  const draft = analyzeConfig(text, configFile, env, { files: composeFiles, policy: { allow: [], hostPaths: [{ path: '/', readOnly: false }] } });
  // `../dir` sources are host paths of this machine: never packed (the agent refuses them too, assertRemoteConfig).
  const outside = [...draft.state.services.values()].flatMap((d) => d.spec.volumes.flatMap((v) => (v.type === 'bind' && v.outside !== undefined ? [`services.${d.spec.name}: ${v.outside}`] : [])));
  if (outside.length > 0) {
    throw new DepadError('DEPAD_CONFIG_INVALID', `${configFile}: bind mounts leave the config file's directory (${outside.join(', ')}): a remote agent gets only the files beside the config`, {
      hint: "move the files beside the config (./…), or give the path on the agent's host as an absolute path (which the agent's host policy must allow)",
    });
  }
  const referenced = Object.keys(composeFiles).map((f) => path.relative(path.resolve(dir), f).split(path.sep).join('/')).filter((f) => !f.startsWith('..') && !path.isAbsolute(f));
  const realDir = await fs.realpath(dir);
  const files: BundleFile[] = [{ path: path.basename(configFile), mode: 0o644, data: Buffer.from(text).toString('base64') }];
  let bytes = text.length;
  // A build context travels as the engine would get it: less what its .dockerignore leaves out.
  let skip: ((rel: string) => boolean) | undefined;
  const add = async (rel: string) => {
    if (skip?.(rel)) return;
    const full = path.join(dir, rel);
    const real = await fs.realpath(full).catch(() => undefined);
    if (real === undefined) return; // absent: the agent reports it as a local create would
    if (real !== realDir && !real.startsWith(realDir + path.sep)) {
      throw new DepadError('DEPAD_CONFIG_INVALID', `./${rel} leads outside ${dir} (through a link): a remote agent gets only files beside the config`, { hint: 'copy the files into the config directory instead of linking them' });
    }
    const stat = await fs.stat(real);
    if (stat.isDirectory()) {
      for (const entry of await fs.readdir(full)) await add(path.posix.join(rel, entry));
      return;
    }
    if (!stat.isFile()) return;
    if (files.some((f) => f.path === rel)) return;
    bytes += stat.size;
    if (bytes > BUNDLE_MAX_BYTES || files.length >= BUNDLE_MAX_FILES) {
      throw new DepadError('DEPAD_BODY_TOO_LARGE', `the files beside ${path.basename(configFile)} that it references pass ${BUNDLE_MAX_BYTES / 1024 / 1024} MiB or ${BUNDLE_MAX_FILES} files, the most a remote agent takes`, {
        hint: 'put large data in a volume, or run the command on the agent\'s host',
      });
    }
    files.push({ path: rel, mode: stat.mode & 0o755, data: (await fs.readFile(real)).toString('base64') });
  };
  for (const rel of [...new Set([...draft.envFiles, ...draft.bindSources, ...draft.runFiles, ...draft.secretFiles, ...referenced])].sort()) await add(rel);
  for (const service of draft.state.services.values()) {
    const build = service.spec.build;
    if (build === undefined) continue;
    const context = path.relative(path.resolve(dir), path.resolve(dir, build.context)).split(path.sep).join('/');
    if (context.startsWith('..') || path.isAbsolute(context)) continue; // the agent refuses it, naming the service
    const base = context === '' ? '' : `${context}/`;
    const ignore = parseDockerignore(await fs.readFile(path.join(dir, context, '.dockerignore'), 'utf8').catch(() => ''));
    const dockerfile = `${base}${build.dockerfile ?? 'Dockerfile'}`;
    skip = (rel) => rel !== dockerfile && rel.startsWith(base) && rel !== context && ignore.ignored(rel.slice(base.length));
    await add(context === '' ? '.' : context);
    skip = undefined;
    const df = path.posix.normalize(dockerfile);
    if (build.dockerfile !== undefined && build.dockerfileInline === undefined && !df.startsWith('..') && !path.isAbsolute(df)) await add(df);
  }
  return { config: path.basename(configFile), files };
}

/** A bundle unpacked by the agent: the config's path there, and how to remove it all. */
export interface Unpacked {
  configFile: string;
  remove: () => Promise<void>;
}

/**
 * Checks `value` is a well-formed bundle and writes it under `parent` (a new private directory);
 * DEPAD_USAGE naming the first bad entry, with nothing written, otherwise.
 */
export async function unpackBundle(parent: string, value: unknown): Promise<Unpacked> {
  const bundle = checkBundle(value);
  await fs.mkdir(parent, { recursive: true, mode: 0o700 });
  // Named after this process, so that one killed before it removed its own is found (removeStaleUploads).
  const dir = path.join(parent, `${process.pid}-${randomBytes(8).toString('hex')}`);
  await fs.mkdir(dir, { mode: 0o700 });
  const remove = () => fs.rm(dir, { recursive: true, force: true });
  try {
    for (const file of bundle.files) {
      const to = path.join(dir, ...file.path.split('/'));
      await fs.mkdir(path.dirname(to), { recursive: true, mode: 0o700 });
      // 'wx': a fresh file only (the directory is new and holds nothing but what is written here).
      await fs.writeFile(to, Buffer.from(file.data, 'base64'), { flag: 'wx', mode: file.mode & 0o755 });
    }
  } catch (error) {
    await remove();
    throw error;
  }
  return { configFile: path.join(dir, bundle.config), remove };
}

/**
 * Removes what processes that are gone left under `parent` (`<home>/uploads`): a bundle is only
 * needed while its command runs, and one killed mid-command (kill -9) never removed its own.
 */
export async function removeStaleUploads(parent: string): Promise<string[]> {
  const stale = (await fs.readdir(parent).catch(() => [] as string[])).filter((name) => {
    const pid = Number(/^(\d+)-/.exec(name)?.[1]);
    return !Number.isInteger(pid) || !processRuns(pid);
  });
  for (const name of stale) await fs.rm(path.join(parent, name), { recursive: true, force: true });
  return stale;
}

function checkBundle(value: unknown): Bundle {
  const bad = (why: string) => new DepadError('DEPAD_USAGE', `bundle: ${why}; nothing was written`);
  if (typeof value !== 'object' || value === null) throw bad('expected {config, files}');
  const { config, files } = value as Record<string, unknown>;
  if (typeof config !== 'string' || !Array.isArray(files)) throw bad('expected {config, files}');
  if (files.length > BUNDLE_MAX_FILES) throw bad(`more than ${BUNDLE_MAX_FILES} files`);
  const seen = new Set<string>();
  let bytes = 0;
  for (const [i, f] of files.entries()) {
    if (typeof f !== 'object' || f === null) throw bad(`files[${i}] is not {path, mode, data}`);
    const { path: p, mode, data } = f as Record<string, unknown>;
    if (typeof p !== 'string' || typeof data !== 'string' || typeof mode !== 'number' || !Number.isInteger(mode)) throw bad(`files[${i}] is not {path, mode, data}`);
    const problem = pathProblem(p);
    if (problem) throw bad(`files[${i}].path ${JSON.stringify(p.slice(0, 200))} ${problem}`);
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(data)) throw bad(`files[${i}].data is not base64`);
    for (const other of seen) {
      if (other === p || other.startsWith(`${p}/`) || p.startsWith(`${other}/`)) throw bad(`files[${i}].path ${p} clashes with ${other}`);
    }
    seen.add(p);
    bytes += Math.floor((data.length * 3) / 4);
    if (bytes > BUNDLE_MAX_BYTES) throw bad(`more than ${BUNDLE_MAX_BYTES / 1024 / 1024} MiB`);
  }
  if (!seen.has(config)) throw bad(`the config ${JSON.stringify(config.slice(0, 200))} is not among its files`);
  return { config, files: files as BundleFile[] };
}

/** Why `p` may not be a bundle path (absolute, `..`, empty segments, odd characters), or undefined. */
export function pathProblem(p: string): string | undefined {
  if (p.length === 0 || p.length > 1024) return 'is empty or too long';
  if (p.startsWith('/') || /^[A-Za-z]:/.test(p)) return 'is absolute';
  if (p.includes('\\') || p.includes('\0')) return 'has a backslash or a NUL';
  if (p.split('/').some((s) => s === '' || s === '.' || s === '..')) return 'has an empty, "." or ".." segment';
  return undefined;
}
