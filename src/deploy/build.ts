/**
 * `build:` services: their images are built through the Engine API before anything is made.
 *
 * Each built image is tagged `depad-<deployment>-<service>:<build hash>`, where the hash covers the
 * context's files (less `.dockerignore`), the Dockerfile, the build options and the IDs of the
 * local images its FROM lines name. A build whose hash already has its image is not run again
 * (unless `no_cache`), so an update with nothing changed keeps the same image ID and swaps
 * nothing. `image:` beside `build:` is tagged too, as compose does; the container runs depad's
 * tag, so another deployment of the same file building `image:` again changes nothing here. The
 * image carries the deployment's labels (destroy removes it). A rollback reuses the image ID its
 * revision recorded, never building.
 */
import { createHash } from 'node:crypto';
import path from 'node:path';
import type { BuildSpec } from '../config/build.ts';
import { deepFreeze } from '../config/freeze.ts';
import type { DeploymentSpec, ServiceSpec } from '../config/spec.ts';
import { DepadError, formatIssue } from '../errors.ts';
import { LABELS } from '../engine/types.ts';
import { homeIdentity } from '../home.ts';
import { projectName } from '../render/names.ts';
import type { RevisionRecord } from '../store/records.ts';
import { packContext } from './build-context.ts';
import type { OpContext } from './context.ts';

/** The label holding a built image's build hash. */
export const BUILD_HASH_LABEL = 'depad.build.hash';

/** How many lines of a failed build's log its error shows. */
const LOG_TAIL = 12;

/** Images to reuse instead of building (a rollback's revision's), by service. */
export type ReuseImages = RevisionRecord['images'];

/** The tag depad gives a service's built image. */
export function builtTag(deployment: string, service: string, hash: string): string {
  return `${projectName(deployment)}-${service}:${hash}`;
}

/** The services of `spec` that depad builds (those with `build:` and no `--image` given on the command line). */
export function servicesToBuild(spec: DeploymentSpec): ServiceSpec[] {
  return Object.values(spec.services).filter((s) => s.build !== undefined && spec.imageOverrides?.[s.name] === undefined);
}

/**
 * Builds (or, with `reuse`, finds) the image of every `build:` service and returns the spec with
 * each such service's `image` set to its built tag. Throws DEPAD_IMAGE_BUILD_FAILED for a failing
 * build, before anything is made. With `lookOnly` (a dry run) nothing is built: the tag a build
 * would make is given, whether its image exists or not.
 */
export async function buildImages(ctx: OpContext, deployment: { name: string; id?: string }, spec: DeploymentSpec, reuse?: ReuseImages, options: { lookOnly?: boolean } = {}): Promise<DeploymentSpec> {
  const toBuild = servicesToBuild(spec);
  if (toBuild.length === 0) return spec;
  const images: Record<string, string> = {};
  for (const service of toBuild) {
    const kept = reuse?.[service.name];
    images[service.name] = kept ? await reuseImage(ctx, deployment.name, service.name, kept, options.lookOnly === true) : await buildOne(ctx, deployment, spec, service, service.build!, options.lookOnly === true);
  }
  const services = Object.fromEntries(Object.entries(spec.services).map(([k, s]) => [k, images[k] === undefined ? s : { ...s, image: images[k] }]));
  return deepFreeze({ ...spec, services, positions: spec.positions });
}

/** The image a revision recorded, checked to be on the host (and its tag put back on it). */
async function reuseImage(ctx: OpContext, deployment: string, service: string, kept: { ref: string; id: string }, lookOnly: boolean): Promise<string> {
  if ((await ctx.engine.imageId(kept.id)) === undefined) {
    throw new DepadError('DEPAD_IMAGE_MISSING', `the image built for ${service} (${kept.ref}, ${kept.id.slice(0, 19)}) is no longer on this host (removed or pruned)`, {
      hint: `rebuild it with an update from the config: depad update ${deployment} -f <config file> (its build context as it is now), or docker load the image and tag it ${kept.ref}`,
      details: { service, image: kept.ref, id: kept.id },
    });
  }
  if (lookOnly) return kept.ref;
  if ((await ctx.engine.imageId(kept.ref)) !== kept.id) await ctx.engine.tagImage(kept.id, kept.ref);
  ctx.progress({ step: 'image', service, message: `${service}: using the image built before (${kept.ref})` });
  return kept.ref;
}

async function buildOne(ctx: OpContext, deployment: { name: string; id?: string }, spec: DeploymentSpec, service: ServiceSpec, build: BuildSpec, lookOnly: boolean): Promise<string> {
  const where = spec.positions.get(`services.${service.name}.build`) ?? { file: spec.file, line: 1, column: 1 };
  const at = (message: string) => formatIssue({ ...where, path: `services.${service.name}.build`, message });
  const contextDir = path.resolve(path.dirname(spec.file), build.context);
  let packed;
  try {
    packed = await packContext(contextDir, build.dockerfile, build.dockerfileInline);
  } catch (error) {
    if (error instanceof DepadError) throw new DepadError(error.code, at(error.message), { ...(error.hint ? { hint: error.hint } : {}), details: { service: service.name } });
    throw error;
  }
  const bases = await baseImageIds(ctx, packed.dockerfileText);
  const options = { dockerfile: packed.dockerfile, args: build.args, target: build.target ?? null, labels: build.labels, network: build.network ?? null, shm: build.shmSizeBytes ?? null, hosts: build.extraHosts, cacheFrom: build.cacheFrom, platform: build.platform ?? null };
  const hash = createHash('sha256').update(JSON.stringify({ context: packed.sha256, options, bases, deployment: deployment.id ?? deployment.name })).digest('hex').slice(0, 16);
  const tag = builtTag(deployment.name, service.name, hash);
  const extra = [...(service.image !== '' ? [service.image] : []), ...build.tags];
  const existing = await ctx.engine.imageId(tag);
  if (lookOnly) return tag;
  if (existing !== undefined && !build.noCache) {
    for (const ref of extra) if ((await ctx.engine.imageId(ref)) !== existing) await ctx.engine.tagImage(existing, ref);
    ctx.progress({ step: 'build', service: service.name, message: `${service.name}: ${tag} is up to date (its context and Dockerfile are unchanged)` });
    return tag;
  }
  ctx.progress({ step: 'build', service: service.name, message: `${service.name}: building ${tag} from ${contextDir} (${packed.files} files)` });
  const tail: string[] = [];
  const labels: Record<string, string> = {
    ...build.labels,
    [LABELS.deployment]: deployment.name,
    ...(deployment.id ? { [LABELS.deploymentId]: deployment.id } : {}),
    [LABELS.home]: homeIdentity(ctx.home),
    [LABELS.service]: service.name,
    [BUILD_HASH_LABEL]: hash,
  };
  try {
    await ctx.engine.buildImage(
      packed.tar,
      { tags: [tag, ...extra], dockerfile: packed.dockerfile, args: build.args, labels, ...(build.target ? { target: build.target } : {}), ...(build.network ? { network: build.network === 'default' ? 'default' : 'none' } : {}), ...(build.shmSizeBytes !== undefined ? { shmSizeBytes: build.shmSizeBytes } : {}), extraHosts: build.extraHosts, cacheFrom: build.cacheFrom, noCache: build.noCache, pull: build.pull, ...(build.platform ? { platform: build.platform } : {}) },
      (line) => {
        // The builder's bookkeeping (intermediate containers, layer IDs) is left out of the log kept.
        if (/^ ---> |^Removing intermediate container /.test(line)) return;
        tail.push(line);
        if (tail.length > LOG_TAIL) tail.shift();
        // Concise: the builder's step lines only; the rest is kept for an error.
        if (/^Step \d+\/\d+ : /.test(line) && !/ : LABEL depad\./.test(line)) ctx.progress({ step: 'build', service: service.name, message: `${service.name}: ${line}` });
      },
    );
  } catch (error) {
    if (error instanceof DepadError && error.code === 'DEPAD_IMAGE_BUILD_FAILED') {
      const log = tail.map((l) => `    | ${l}`).join('\n');
      throw new DepadError('DEPAD_IMAGE_BUILD_FAILED', `${at(`building the image failed: ${error.message}`)}${log ? `\n  last lines of the build:\n${log}` : ''}`, {
        hint: 'fix the Dockerfile or the build context and run the command again; nothing was changed',
        details: { service: service.name, log: tail },
      });
    }
    throw error;
  }
  ctx.progress({ step: 'build', service: service.name, message: `${service.name}: built ${tag}` });
  return tag;
}

/** The IDs of the local images the Dockerfile's FROM lines name (stage names, `scratch` and `$ARG` references left out). */
async function baseImageIds(ctx: OpContext, dockerfile: string): Promise<Record<string, string | null>> {
  const stages = new Set<string>();
  const out: Record<string, string | null> = {};
  for (const m of dockerfile.matchAll(/^\s*FROM\s+(?:--\S+\s+)*(\S+)(?:\s+AS\s+(\S+))?/gim)) {
    const ref = m[1]!;
    if (!stages.has(ref.toLowerCase()) && ref !== 'scratch' && !ref.includes('$')) out[ref] = (await ctx.engine.imageId(ref)) ?? null;
    if (m[2]) stages.add(m[2].toLowerCase());
  }
  return out;
}

/**
 * Removes the images depad built for deployment `deploymentId` that no revision still uses: none
 * of its own (all of them once it is destroyed, `all`) and none of another deployment's. Every
 * tag still on such an image goes with it (depad's, and `image:` or `tags:` that no later build
 * took over: the image carries this deployment's labels, so no other deployment built it). Best
 * effort: an image a container still uses stays.
 */
export async function pruneBuiltImages(ctx: OpContext, deploymentId: string, options: { all?: boolean } = {}): Promise<number> {
  const built = await ctx.engine.listImages({ [LABELS.deploymentId]: deploymentId, [BUILD_HASH_LABEL]: null });
  if (built.length === 0) return 0;
  const used = new Set<string>();
  for (const d of await ctx.store.listDeployments()) {
    if (d.id === deploymentId && options.all) continue;
    for (const r of await ctx.store.listRevisions(d.id)) for (const i of Object.values(r.images)) used.add(i.id);
  }
  let removed = 0;
  for (const image of built) {
    if (used.has(image.id)) continue;
    for (const tag of image.tags) await ctx.engine.removeImage(tag);
    if ((await ctx.engine.imageId(image.id)) !== undefined) await ctx.engine.removeImage(image.id);
    if ((await ctx.engine.imageId(image.id)) === undefined) removed++;
  }
  return removed;
}
