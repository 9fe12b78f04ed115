/**
 * A deployment's root directory, `<home>/deployments/<id>/` (mode 0700):
 *   depad.yml              the config as the user gave it (current revision)
 *   docker-compose.yml     the rendered compose file (current revision)
 *   revisions/<n>/         config.yml, docker-compose.yml, env.json, plan.json of revision n
 *   <bind-mount sources>   copied from beside the config file, or created empty
 *   <files run: steps name> copied from beside the config file (./seed.sh)
 *   secrets/               host copies of secrets and configs (0700; src/deploy/secret-files.ts)
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import type { DeploymentSpec } from '../config/spec.ts';
import { DepadError } from '../errors.ts';
import type { Rendered } from '../render/render.ts';
import { pruneSecretFiles, secretVariableValues, secretVariables, writeSecretFiles } from './secret-files.ts';

/** The engine plan kept with each revision (everything of `Rendered` but the compose text). */
export type StoredPlan = Omit<Rendered, 'compose'>;

/** Files of one revision, as written. */
export interface RevisionFiles {
  configSha256: string;
  composeSha256: string;
}

/**
 * Writes revision `n`'s files under `revisions/<n>/` (and the bind-mount sources); the current
 * files at the top of the root change only when `promoteRevision` says so. Returns the hashes.
 */
export async function writeRevision(
  rootDir: string,
  n: number,
  spec: DeploymentSpec,
  rendered: Rendered,
  env: Readonly<Record<string, string>>,
): Promise<RevisionFiles> {
  const revDir = path.join(rootDir, 'revisions', String(n));
  await fs.mkdir(revDir, { recursive: true, mode: 0o700 });
  await fs.chmod(rootDir, 0o700);
  const write = (file: string, text: string) => fs.writeFile(file, text, { mode: 0o600 });
  const hidden = secretVariables(spec);
  const keptEnv = Object.keys(env).filter((k) => !hidden.has(k)).sort();
  await Promise.all([
    write(path.join(revDir, 'config.yml'), spec.source),
    write(path.join(revDir, 'docker-compose.yml'), rendered.compose),
    write(path.join(revDir, 'env.json'), JSON.stringify(env, keptEnv, 2) + '\n'),
    writePlan(rootDir, n, rendered),
    write(path.join(revDir, 'spec.json'), JSON.stringify({ ...spec, positions: undefined }, null, 2) + '\n'),
  ]);
  await copyBindSources(rootDir, spec);
  await writeSecretFiles(rootDir, spec);
  return { configSha256: sha256(spec.source), composeSha256: sha256(rendered.compose) };
}

/** Writes revision `n`'s engine plan (again, when a rolling update kept some old replicas: roll-holds.ts). */
export async function writePlan(rootDir: string, n: number, rendered: StoredPlan): Promise<void> {
  const plan: StoredPlan = { networks: rendered.networks, volumes: rendered.volumes, containers: rendered.containers, order: rendered.order, services: rendered.services, ...(rendered.external ? { external: rendered.external } : {}) };
  const file = path.join(rootDir, 'revisions', String(n), 'plan.json');
  await fs.writeFile(`${file}.tmp`, JSON.stringify(plan, null, 2) + '\n', { mode: 0o600 });
  await fs.rename(`${file}.tmp`, file);
}

/** Makes revision `n` the current one: its config and compose file at the top of the root. */
export async function promoteRevision(rootDir: string, n: number): Promise<void> {
  const revDir = path.join(rootDir, 'revisions', String(n));
  for (const [from, to] of [['config.yml', 'depad.yml'], ['docker-compose.yml', 'docker-compose.yml']] as const) {
    const tmp = path.join(rootDir, `.${to}.tmp`);
    await fs.copyFile(path.join(revDir, from), tmp);
    await fs.rename(tmp, path.join(rootDir, to));
  }
}

/** Removes the files of a revision that was never committed. */
export async function removeRevision(rootDir: string, n: number): Promise<void> {
  await fs.rm(path.join(rootDir, 'revisions', String(n)), { recursive: true, force: true });
  await pruneSecretFiles(rootDir);
}

/**
 * The validated spec and variables revision `n` was made from, so that rollback and image
 * updates re-render it exactly, whatever became of the original config directory.
 */
export async function readRevisionSpec(rootDir: string, n: number): Promise<{ spec: DeploymentSpec; env: Record<string, string> }> {
  const revDir = path.join(rootDir, 'revisions', String(n));
  try {
    const env = JSON.parse(await fs.readFile(path.join(revDir, 'env.json'), 'utf8')) as Record<string, string>;
    const raw = JSON.parse(await fs.readFile(path.join(revDir, 'spec.json'), 'utf8')) as Omit<DeploymentSpec, 'positions'>;
    // Bind-mount sources and run: steps' files are in the root already; nothing is copied again.
    // The variables environment: secrets read are not in env.json: their copies hold them.
    return { spec: { ...raw, files: [], positions: new Map() }, env: { ...env, ...(await secretVariableValues(rootDir, raw)) } };
  } catch (error) {
    throw new DepadError('DEPAD_STATE_CORRUPT', `cannot read revision ${n} under ${revDir}`, {
      cause: error,
      hint: 'that revision is missing or damaged; roll back to another one (depad history)',
    });
  }
}

/** The engine plan stored with revision `n`. */
export async function readPlan(rootDir: string, n: number): Promise<StoredPlan> {
  const file = path.join(rootDir, 'revisions', String(n), 'plan.json');
  try {
    return JSON.parse(await fs.readFile(file, 'utf8')) as StoredPlan;
  } catch (error) {
    throw new DepadError('DEPAD_STATE_CORRUPT', `cannot read ${file}`, { cause: error, hint: 'destroy and re-create the deployment' });
  }
}

/** Plans read for views, by file: a revision's plan never changes once written. */
const viewPlans = new Map<string, Readonly<StoredPlan>>();
const VIEW_PLANS_KEPT = 2000;

/**
 * The plan of revision `n` for read-only views (`ls`, `inspect`, `ps` in the agent): read once and
 * kept (a revision's plan is written once), so a listing of many deployments reads no files.
 * Callers must not change it.
 */
export async function readPlanForView(rootDir: string, n: number): Promise<Readonly<StoredPlan>> {
  const key = path.join(rootDir, 'revisions', String(n));
  const known = viewPlans.get(key);
  if (known) return known;
  const plan = await readPlan(rootDir, n);
  if (viewPlans.size >= VIEW_PLANS_KEPT) viewPlans.delete(viewPlans.keys().next().value as string);
  viewPlans.set(key, plan);
  return plan;
}

/** Removes a root directory (only ever one under `<home>/deployments/`). */
export async function removeRoot(rootDir: string): Promise<void> {
  if (!/\/deployments\/[0-9a-f]{32}$/.test(rootDir)) throw new Error(`refusing to remove ${rootDir}`);
  for (const key of viewPlans.keys()) if (key.startsWith(`${rootDir}${path.sep}`)) viewPlans.delete(key);
  await fs.rm(rootDir, { recursive: true, force: true });
}

/**
 * Bind-mount sources and the files `run:` steps name live in the root. Those that exist beside the
 * config file (`spec.files`) are copied in (never following a link out of that directory); the
 * other bind sources are created as empty directories.
 */
async function copyBindSources(rootDir: string, spec: DeploymentSpec): Promise<void> {
  const configDir = path.dirname(spec.file);
  const sources = new Set<string>(spec.files);
  for (const s of Object.values(spec.services)) for (const m of s.volumes) if (m.type === 'bind' && !m.onHost) sources.add(m.source);
  for (const source of [...sources].sort()) {
    const to = inside(rootDir, source);
    if (spec.files.includes(source)) {
      const from = inside(configDir, source);
      const real = await fs.realpath(from);
      const realDir = await fs.realpath(configDir);
      if (real !== realDir && !real.startsWith(realDir + path.sep)) {
        throw new DepadError('DEPAD_CONFIG_INVALID', `./${source} leads outside ${configDir} (through a link)`, {
          hint: 'copy the files into the config directory instead of linking them',
        });
      }
      await fs.mkdir(path.dirname(to), { recursive: true, mode: 0o700 });
      await fs.cp(real, to, { recursive: true, dereference: false, verbatimSymlinks: true, errorOnExist: false, force: true });
    } else if ((await fs.lstat(to).catch(() => undefined)) === undefined) {
      // Nothing there yet (a rollback or image update finds what an earlier revision copied, maybe a file).
      await fs.mkdir(to, { recursive: true, mode: 0o755 });
    }
  }
}

/** `base/rel`, refusing anything that would leave `base`. */
function inside(base: string, rel: string): string {
  const full = path.resolve(base, rel);
  if (full !== base && !full.startsWith(base + path.sep)) throw new Error(`path ${rel} escapes ${base}`);
  return full;
}

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}
