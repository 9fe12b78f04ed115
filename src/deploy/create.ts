/**
 * `depad create`: validate → clashes (hostnames, engine names) → images → register (ports, subnets, record, journal: one batch) → root dir →
 * networks, volumes, containers in dependency order → wait healthy → mark ready (one batch).
 * Any failure, or Ctrl-C, undoes every step; a kill is undone by the next command (recover.ts).
 */
import { deploymentLabels } from '../labels.ts';
import { runHook } from './workflows.ts';
import { randomBytes } from 'node:crypto';
import type { DeploymentSpec } from '../config/spec.ts';
import { DepadError, formatIssue } from '../errors.ts';
import { deploymentRoot, homeIdentity } from '../home.ts';
import { cursorIn, portRangeFromEnv } from '../ports/index.ts';
import { projectName, scopedName } from '../render/names.ts';
import { render } from '../render/render.ts';
import { baseDomain } from '../render/routes.ts';
import type { DeploymentRecord, JournalEntry, RevisionRecord } from '../store/records.ts';
import { checkpoint, undoContext, type OpContext } from './context.ts';
import { ensureNetworks, ensureVolumes, startServices } from './materialize.ts';
import { publishRoutes } from './routing.ts';
import { portsNeeded } from './port-plan.ts';
import { allocatedInstead, assignPorts } from './port-assign.ts';
import { assignSubnets, subnetWarnings } from './subnet-assign.ts';
import { assertEngineNamesFree, assertRoutesFree, placeholderPlan } from './preflight.ts';
import { assertExternalsExist } from './externals.ts';
import { externalObjects } from '../render/external.ts';
import { undoCreate } from './recover.ts';
import { assertValidName } from './resolve.ts';
import { buildImages } from './build.ts';
import { promoteRevision, writeRevision } from './root-dir.ts';

/** When to pull a service's image: only when it is not on the host (default), or never. */
export type PullPolicy = 'missing' | 'never';

/** What `createDeployment` needs. */
export interface CreateRequest {
  name: string;
  spec: DeploymentSpec;
  /** Variables the config was rendered with (kept, mode 0600, with the revision). */
  env: Readonly<Record<string, string>>;
  pull?: PullPolicy;
  /** Wait for services with health checks to be healthy before returning (default true). */
  wait?: boolean;
  /** Labels from the command line (`--class`, `--label`), over the config's. */
  labels?: Readonly<Record<string, string>>;
  /**
   * Placed by the cluster manager, which checked the hostnames against every host's: the proxy's
   * peer table (up to a heartbeat old: a hostname just destroyed elsewhere) is not asked again.
   */
  clusterChecked?: boolean;
}

/** Creates and starts a deployment; returns its record. */
export async function createDeployment(ctx: OpContext, request: CreateRequest): Promise<DeploymentRecord> {
  const { name, spec: given } = request;
  assertValidName(name);
  if (await ctx.store.idForName(name)) {
    throw new DepadError('DEPAD_NAME_TAKEN', `a deployment named ${name} already exists`, {
      hint: `choose another name, or update it with: depad update ${name} --config-file …`,
    });
  }
  await ctx.engine.ping();
  const id = randomBytes(16).toString('hex');
  const rootDir = deploymentRoot(ctx.home, id);
  // Clashes first, before images are checked and ports registered: nothing is made, nothing waited for.
  await assertRoutesFree(ctx, name, given, { peers: request.clusterChecked !== true });
  await assertEngineNamesFree(ctx, name, placeholderPlan(given, { id, name, rootDir }));
  await assertExternalsExist(ctx, externalObjects(given)); // external networks and volumes are never made: they must be there
  // build: services are built first (build.ts): a failing build makes nothing.
  const spec = await buildImages(ctx, { name, id }, given);
  const images = await ensureImages(ctx, spec, request.pull ?? 'missing');

  const range = portRangeFromEnv();
  const cursor = cursorIn(await ctx.store.getCursor(), range);
  const fixed = spec.depad.hostPorts === 'fixed';
  // Replica k of a service is instance k; its route's stable port (tcp) is needed once.
  const needed = Object.values(spec.services).flatMap((s) => Array.from({ length: s.replicas ?? 1 }, (_, k) => portsNeeded(s, k + 1, k === 0, fixed, (s.replicas ?? 1) > 1 ? k + 1 : undefined)).flat());
  const { ports, allocation } = await assignPorts(ctx, needed, { cursor, moveCursor: true });
  for (const warning of allocatedInstead(ports, fixed)) ctx.progress({ step: 'warning', message: warning });
  const { subnets } = await assignSubnets(ctx, spec);
  for (const warning of subnetWarnings(spec, subnets)) ctx.progress({ step: 'warning', message: warning });
  const now = new Date().toISOString();
  const record: DeploymentRecord = {
    id,
    name,
    project: projectName(name),
    createdAt: now,
    updatedAt: now,
    revision: 1,
    desired: 'running',
    phase: 'creating',
    rootDir,
    ports,
    ...(subnets.length ? { subnets } : {}),
    volumes: Object.keys(spec.volumes).filter((v) => spec.volumes[v]?.external === undefined).map((v) => scopedName(name, v)),
    instances: Object.fromEntries(Object.values(spec.services).map((s) => [s.name, s.replicas ?? 1])),
    ...replicasOf(spec),
    labels: deploymentLabels(spec, request.labels),
    ...(request.labels && Object.keys(request.labels).length > 0 ? { labelOverrides: { ...request.labels } } : {}),
  };
  const journal: JournalEntry = { opId: id, kind: 'create', deploymentId: id, name, pid: process.pid, startedAt: now, step: 'registered', previousCursor: cursor };
  await ctx.store
    .batch()
    .putDeployment(record)
    .putPorts(ports.map((p) => ({ ...p, deploymentId: id })))
    .putSubnets(subnets.map((n) => ({ ...n, deploymentId: id })))
    .setCursor(allocation!.nextCursor)
    .putJournal(journal)
    .write();
  ctx.log.debug({ deployment: name, id, ports: ports.map((p) => p.host) }, 'registered');

  try {
    checkpoint(ctx, 'registered');
    const rendered = render(spec, { id, name, revision: 1, rootDir, domain: baseDomain(spec), home: homeIdentity(ctx.home), subnets, instances: record.instances, ...(record.replicas ? { replicas: record.replicas } : {}) }, ports);
    const files = await writeRevision(rootDir, 1, spec, rendered, request.env);
    await promoteRevision(rootDir, 1);
    checkpoint(ctx, 'files');
    await ensureNetworks(ctx, record, rendered);
    checkpoint(ctx, 'networks');
    await ensureVolumes(ctx, record, rendered);
    checkpoint(ctx, 'volumes');
    const workflowTarget = { record, spec, containers: rendered.containers, env: request.env };
    const workflows = await runHook(ctx, workflowTarget, 'before-create');
    await startServices(ctx, record, rendered, { waitHealthy: request.wait !== false, timeoutMs: spec.depad.startTimeoutMs });
    await publishRoutes(ctx, record, rendered.services);
    checkpoint(ctx, 'routes');
    workflows.push(...(await runHook(ctx, workflowTarget, 'after-create')));
    const revision: RevisionRecord = {
      deploymentId: id,
      number: 1,
      createdAt: now,
      configFile: spec.file,
      ...files,
      images,
      source: 'create',
      changed: Object.keys(spec.services),
      removed: [],
      overrides: {},
      ...(workflows.length ? { workflows } : {}),
    };
    const ready: DeploymentRecord = { ...record, phase: 'ready', updatedAt: new Date().toISOString() };
    await ctx.store.batch().putDeployment(ready).putRevision(revision).deleteJournal(journal.opId).write();
    ctx.progress({ step: 'ready', message: `deployment ${name} (${id.slice(0, 12)}) is running` });
    return ready;
  } catch (error) {
    ctx.progress({ step: 'undo', message: `create ${ctx.signal?.aborted ? 'interrupted' : 'failed'}; removing what it made` });
    try {
      // Not stopped by the interruption it may be undoing.
      await undoCreate(undoContext(ctx), journal);
    } catch (undoError) {
      ctx.log.error({ deployment: name, error: String(undoError) }, 'undo failed; the next depad command retries it');
      if (error instanceof DepadError && error.code === 'DEPAD_INTERRUPTED') {
        throw new DepadError('DEPAD_INTERRUPTED', error.message, { hint: `undoing it failed (${(undoError as Error).message}); the next depad command (or the agent's next start) retries it` });
      }
    }
    throw error;
  }
}

/** Checks that every image is on the host (pulling it if allowed); returns service → {ref, id}. */
export async function ensureImages(ctx: OpContext, spec: DeploymentSpec, pull: PullPolicy): Promise<Record<string, { ref: string; id: string }>> {
  const out: Record<string, { ref: string; id: string }> = {};
  for (const service of Object.values(spec.services)) {
    // The service's pull_policy wins over the operation's (compose: always pulls every time, never never pulls); a built image is never pulled.
    const policy = service.build === undefined ? (service.engine?.pullPolicy ?? pull) : pull;
    let id = policy === 'always' ? undefined : await ctx.engine.imageId(service.image);
    let pullError: unknown;
    if (!id && policy !== 'never') {
      ctx.progress({ step: 'pull', service: service.name, message: `pulling ${service.image}` });
      try {
        await ctx.engine.pullImage(service.image);
        id = await ctx.engine.imageId(service.image);
      } catch (error) {
        if (error instanceof DepadError && error.code === 'DEPAD_ENGINE_UNAVAILABLE') throw error;
        pullError = error;
      }
    }
    if (!id) {
      const key = `services.${service.name}.image`;
      const why = pullError instanceof Error ? `; pulling it failed: ${pullError.message.replace(/^could not [^:]*: /, '')}` : '';
      // An image from `--image` is not in the file: say where it came from instead of a position.
      const given = spec.imageOverrides?.[service.name] === service.image;
      const at = spec.positions.get(key) ?? { file: spec.file, line: 1, column: 1 };
      throw new DepadError(
        'DEPAD_IMAGE_MISSING',
        given
          ? `--image ${service.image} (given for services.${service.name} on the command line): not on this host${why}`
          : formatIssue({ ...at, path: key, message: `image ${service.image} is not on this host${why}` }),
        { hint: given ? 'build or load the image first (docker build / docker load), or fix the --image reference' : 'build or load the image first (docker build / docker load), or fix the reference', details: { image: service.image, service: service.name, ...(given ? { source: 'command line' } : {}) } },
      );
    }
    out[service.name] = { ref: service.image, id };
  }
  return out;
}

/** A new deployment's `replicas`: instances 1…N of each service with other than one (0: an empty list; absent: every service has one). */
function replicasOf(spec: DeploymentSpec): Pick<DeploymentRecord, 'replicas'> {
  const many = Object.values(spec.services).filter((s) => (s.replicas ?? 1) !== 1);
  return many.length === 0 ? {} : { replicas: Object.fromEntries(many.map((s) => [s.name, Array.from({ length: s.replicas!, }, (_, k) => k + 1)])) };
}
