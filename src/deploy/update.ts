/**
 * `depad update` and `depad rollback`: validate → plan the new revision and compare it with the
 * current one → reserve fresh ports for new instances (one batch, journaled; published ports stay,
 * port-plan.ts) → for each changed service in dependency order, swap its instance (swap.ts) →
 * remove the old instances → commit record, revision and ports, given-up ones kept as spares (one batch). A failure puts every swapped service back
 * and the deployment keeps serving its current revision; a kill is undone by the next command.
 */
import { deploymentLabels, labelsText } from '../labels.ts';
import { assertHostAccess } from './host-policy.ts';
import { serialQueue } from '../serial.ts';
import { runHook } from './workflows.ts';
import type { DeploymentSpec } from '../config/spec.ts';
import { DepadError } from '../errors.ts';
import { allocatedInstead, assignUpdatePorts } from './port-assign.ts';
import { assertSubnetsUnchanged, assignSubnets, subnetWarnings } from './subnet-assign.ts';
import { homeIdentity } from '../home.ts';
import { render } from '../render/render.ts';
import { baseDomain } from '../render/routes.ts';
import type { DeploymentRecord, JournalEntry, RevisionRecord } from '../store/records.ts';
import { checkpoint, undoContext, type OpContext } from './context.ts';
import { ensureImages } from './create.ts';
import type { UpdateRequest } from './update-target.ts';
import { asSpare, orderReason, placeholderPorts, planUpdatePorts, rollPolicy, scaleKeeps, stopsFirst, withSpecReplicas } from './port-plan.ts';
import { diffPlans, hasIdleServices, serviceChanges, withIdleChanges, withRolloutChanges, type PlanDiff } from './diff.ts';
import type { DeploymentView } from './status.ts';
import { ensureNetworks, ensureVolumes, listInstances } from './materialize.ts';
import { reconcileToRecord } from './recover.ts';
import { promoteRevision, readPlan, readRevisionSpec, writePlan, writeRevision, type StoredPlan } from './root-dir.ts';
import { publishRoutes } from './routing.ts';
import { revertSwap, swapService, type Swap, type Transition } from './swap.ts';
import { assertRoutesFree } from './preflight.ts';
import { assertExternalsExist } from './externals.ts';
import { externalObjects } from '../render/external.ts';
import { buildImages, pruneBuiltImages } from './build.ts';
import { groupRole, ownersOf, withOwners } from './namespace-groups.ts';
import { companions } from './swap-companions.ts';
import { beginRoll, revertRoll, rollService, type Roll, type RollOutcome } from './roll.ts';
import { heldContainers, heldPorts, heldRecord, heldSummary } from './roll-holds.ts';
import { currentInstances, planInstance } from '../render/names.ts';

export { parseRemoteConfig, remoteConfigPath, updateRequestFor } from './update-target.ts';
export type { UpdateRequest, UpdateTarget } from './update-target.ts';

/** What an update did. */
export interface UpdateResult {
  record: DeploymentRecord;
  /** The new revision, or undefined when nothing changed. */
  revision: number | undefined;
  diff: PlanDiff;
}

/** What update and rollback answer the user (the CLI prints it; the API sends it). */
export interface UpdateOutcome {
  view: DeploymentView;
  diff: PlanDiff;
  /** The new revision, or undefined when nothing changed. */
  revision: number | undefined;
  /** What the deployment now needs of its host (cluster/need.ts): a cluster manager keeps its reservation by it. */
  need?: { cpus: number; memoryBytes: number };
}

/** A planned update: the current plan, the candidate (with placeholder host ports), the diff, the images. */
export interface PlannedUpdate {
  current: StoredPlan;
  candidate: StoredPlan;
  diff: PlanDiff;
  images: RevisionRecord['images'];
  /** With `lookOnly`: images that are not on the host (the update would pull them). */
  missing: string[];
  /** The request's spec with `build:` services' images set to their built tags (build.ts). */
  spec: DeploymentSpec;
}

/**
 * Plans the new revision and compares it with the current one; changes nothing in depad's state.
 * It pulls missing images as the request allows, unless `lookOnly` (a dry run): then it only
 * looks, and lists the missing ones.
 */
export async function planUpdate(ctx: OpContext, record: DeploymentRecord, request: UpdateRequest, options: { lookOnly?: boolean } = {}): Promise<PlannedUpdate> {
  const current = await readPlan(record.rootDir, record.revision);
  const missing: string[] = [];
  const revisions = await ctx.store.listRevisions(record.id);
  const currentImages = revisions.find((r) => r.number === record.revision)?.images ?? {};
  // build: services: built now, or the kept images reused (rollback, --image of another service); build.ts.
  const only = request.reuseCurrentFor;
  const reuse = request.reuseImages === 'current' ? currentImages : only !== undefined ? Object.fromEntries(Object.entries(currentImages).filter(([s]) => only.includes(s))) : request.reuseImages;
  const spec = await buildImages(ctx, record, request.spec, reuse, { lookOnly: options.lookOnly === true });
  const images = options.lookOnly && request.pull !== 'never' ? await lookUpImages(ctx, spec, missing) : await ensureImages(ctx, spec, request.pull ?? 'missing');
  // Placeholder host ports: the comparison ignores them.
  const holder = withSpecReplicas(spec, record);
  const candidate = render(spec, who(ctx, record, record.revision + 1, record.instances, spec, holder.replicas), placeholderPorts(request.spec, holder));
  assertSubnetsUnchanged(spec, current, candidate);
  const ids = (m: RevisionRecord['images']) => Object.fromEntries(Object.entries(m).map(([k, v]) => [k, v.id]));
  // A service with replicas held on an older container (a paused or partly failed roll) runs images the revision does not list: no "tag now points at" from them.
  const runIds = Object.fromEntries(Object.entries(ids(currentImages)).filter(([service]) => record.held?.[service] === undefined));
  let diff = diffPlans(current, candidate, runIds, ids(images));
  // A service at 0 replicas has no container to compare: its config, as stored with the revision, is;
  // and rollout settings are in no container: they are compared as stored.
  const before = (await readRevisionSpec(record.rootDir, record.revision)).spec;
  if (hasIdleServices(current, candidate)) diff = withIdleChanges(diff, current, candidate, before, spec);
  diff = withRolloutChanges(diff, before, spec);
  return { current, candidate, diff, images, missing, spec };
}

/** The images' IDs where they are on the host; the others are listed in `missing` (and get no ID). */
async function lookUpImages(ctx: OpContext, spec: DeploymentSpec, missing: string[]): Promise<RevisionRecord['images']> {
  const out: RevisionRecord['images'] = {};
  for (const service of Object.values(spec.services)) {
    const id = await ctx.engine.imageId(service.image);
    if (id === undefined && service.build !== undefined && spec.imageOverrides?.[service.name] === undefined) {
      out[service.name] = { ref: service.image, id: `build:${service.image}` }; // the update would build it
      continue;
    }
    if (id === undefined && !missing.includes(service.image)) missing.push(service.image);
    out[service.name] = { ref: service.image, id: id ?? `missing:${service.image}` };
  }
  return out;
}

/** Throws unless `record` may be updated (it must be running). */
export function assertUpdatable(record: DeploymentRecord): void {
  if (record.desired !== 'running') {
    throw new DepadError('DEPAD_NOT_RUNNING', `deployment ${record.name} is stopped`, { hint: `start it first: depad start ${record.name}` });
  }
}

/**
 * Updates a running deployment to `request.spec`, zero-downtime where the services allow it.
 * A rolling update that `failure_action: pause` stopped part-way commits its revision, then
 * throws DEPAD_UPDATE_PAUSED.
 */
export async function updateDeployment(ctx: OpContext, record: DeploymentRecord, request: UpdateRequest): Promise<UpdateResult> {
  const result = await applyUpdate(ctx, record, request);
  if (result.paused) throw result.paused;
  return result;
}

async function applyUpdate(ctx: OpContext, record: DeploymentRecord, request: UpdateRequest): Promise<UpdateResult & { paused?: DepadError }> {
  assertUpdatable(record);
  assertHostAccess(request.spec); // a revision made under a wider policy (rollback, image update) gets no more than today's
  await ctx.engine.ping();
  await assertRoutesFree(ctx, record.name, request.spec); // a hostname another deployment routes: fail before anything is made
  await assertExternalsExist(ctx, externalObjects(request.spec));
  const { current, diff, images, spec } = await planUpdate(ctx, record, request);
  const labels = deploymentLabels(request.spec, record.labelOverrides);
  if (diff.empty) {
    if (labelsText(labels) !== labelsText(record.labels)) {
      // Labels are metadata: they change in place, with no new revision and nothing restarted.
      const relabeled: DeploymentRecord = { ...record, labels, updatedAt: new Date().toISOString() };
      await ctx.store.batch().putDeployment(relabeled).write();
      ctx.progress({ step: 'ready', message: `deployment ${record.name}: labels now ${labelsText(labels)}; nothing else changed (revision ${record.revision})` });
      return { record: relabeled, revision: undefined, diff };
    }
    ctx.progress({ step: 'ready', message: `deployment ${record.name} is already at this configuration (revision ${record.revision})` });
    return { record, revision: undefined, diff };
  }
  const { changed, removed } = serviceChanges(diff);
  const toRevision = record.revision + 1;

  // Published ports stay; new instances of routed services get fresh ports (spares first); what is given up stays the deployment's.
  const instances: Record<string, number> = { ...record.instances };
  const nextInstance = (s: string) => (record.instances[s] ?? 0) + 1;
  const keeps = scaleKeeps(diff, record); // scaled services: the replicas that stay
  const planned = planUpdatePorts(record, spec, changed, removed, keeps);
  const journal: JournalEntry = { opId: `${record.id.slice(0, 16)}${Date.now().toString(16)}`, kind: 'update', deploymentId: record.id, name: record.name, pid: process.pid, startedAt: new Date().toISOString(), step: 'ports', toRevision };
  // One allocation at a time in this process (bulk updates run several deployments at once): each sees the ports the last one registered.
  const { fresh, subnets } = await portAllocation(async () => {
    const ports = await assignUpdatePorts(ctx, record, planned.needed, planned.spares);
    const given = await assignSubnets(ctx, spec, record.subnets);
    await ctx.store.batch().putPorts(ports.map((p) => ({ ...p, deploymentId: record.id }))).putSubnets(given.fresh.map((n) => ({ ...n, deploymentId: record.id }))).putJournal(journal).write();
    return { fresh: ports, subnets: given };
  });
  for (const warning of allocatedInstead(fresh, spec.depad.hostPorts === 'fixed')) ctx.progress({ step: 'warning', message: warning });
  for (const warning of subnetWarnings(spec, subnets.fresh)) ctx.progress({ step: 'warning', message: warning });
  const withSubnets: DeploymentRecord = subnets.subnets.length ? { ...record, subnets: subnets.subnets } : record;

  // A changed service's new replicas are its next instance numbers (one replica: just the next).
  // A scale (only its replica count changes) keeps the replicas that stay and adds or removes the others.
  const count = (s: string) => spec.services[s]?.replicas ?? 1;
  const newInstances = (s: string) => [...(keeps[s] ?? []), ...Array.from({ length: count(s) - (keeps[s]?.length ?? 0) }, (_, k) => nextInstance(s) + k)];
  // One replica: its instance number is the current one; several: the newest (their list is in `replicas`).
  const finalInstances = { ...record.instances, ...Object.fromEntries(changed.map((s) => [s, count(s) === 1 ? newInstances(s)[0]! : Math.max(record.instances[s] ?? 0, ...newInstances(s))])) };
  for (const s of removed) delete finalInstances[s];
  const finalReplicas: Record<string, number[]> = { ...record.replicas };
  for (const s of [...changed, ...removed]) delete finalReplicas[s];
  for (const s of changed) if (count(s) !== 1) finalReplicas[s] = newInstances(s);
  if (Object.keys(keeps).length > 0) ctx.progress({ step: 'scale', message: Object.entries(keeps).map(([s, keep]) => `${s}: ${currentInstances(record, s).length} → ${count(s)} replicas (${keep.length} ${keep.length === 1 ? 'stays' : 'stay'})`).join('; ') });
  const taken = new Set(fresh.map((p) => p.host));
  let finalPorts = [...planned.kept, ...fresh, ...planned.retired.map(asSpare), ...planned.spares.filter((p) => !taken.has(p.host))];
  let rendered = render(spec, who(ctx, withSubnets, toRevision, finalInstances, spec, finalReplicas), finalPorts);
  const t: Transition = { record, instances, replicas: structuredClone(record.replicas ?? {}), ports: [...record.ports.filter((p) => !taken.has(p.host)), ...fresh], services: rendered.services };
  // What was replaced so far, in order: single instances swapped (swap.ts) and replicas rolled (roll.ts).
  const swaps: Array<Swap | Roll> = [];
  // Rolled services whose failures were tolerated or paused: the slots that kept their old replica.
  const outcomes: Record<string, RollOutcome> = {};
  try {
    const files = await writeRevision(record.rootDir, toRevision, spec, rendered, request.env);
    checkpoint(ctx, 'update:files');
    await ensureNetworks(ctx, record, rendered);
    await ensureVolumes(ctx, record, rendered);
    const workflowTarget = { record, spec, containers: rendered.containers, env: request.env };
    const workflows = await runHook(ctx, workflowTarget, 'before-update');
    const live = new Map((await listInstances(ctx, record)).map((c) => [c.name, c]));
    const running = new Map<string, string>();
    for (const c of current.containers) {
      const state = live.get(c.name);
      if (state) running.set(c.service, state.id);
    }
    const oldOf = (name: string) => {
      const oldPlan = current.containers.find((c) => c.service === name);
      return oldPlan ? live.get(oldPlan.name) : undefined;
    };
    const planOf = (name: string) => ({ plan: rendered.containers.find((c) => c.service === name)!, meta: rendered.services.find((s) => s.name === name)! });
    for (const name of rendered.order) {
      if (!changed.includes(name)) continue;
      const { plan, meta } = planOf(name);
      const kind = request.source === 'rollback' ? 'rollback' : 'update';
      const olds = current.containers.filter((c) => c.service === name);
      const news = rendered.containers.filter((c) => c.service === name);
      if (olds.length !== 1 || news.length !== 1) {
        // Replicas: batch by batch, as update_config (or rollback_config) says.
        // A scale leaves the replicas that stay alone: only the others leave, and only new ones start.
        const keep = keeps[name] ?? [];
        const roll = beginRoll(t, name, olds.filter((c) => !keep.includes(planInstance(c))).map((c) => ({ instance: planInstance(c), state: live.get(c.name) })));
        swaps.push(roll);
        const policy = rollPolicy(spec, meta, finalPorts, name, kind);
        const adding = news.filter((c) => !keep.includes(planInstance(c))).map((c) => ({ plan: c, instance: planInstance(c) }));
        const outcome = await rollService(ctx, t, roll, adding, meta, policy, spec.depad.startTimeoutMs, news.map(planInstance));
        if (outcome.held.length > 0) outcomes[name] = outcome;
        running.set(name, roll.news[0]?.id ?? roll.olds[0]?.state?.id ?? '');
        continue;
      }
      // Services sharing namespaces (network_mode: service:…) go together: the joiners with the service they join (namespace-groups.ts).
      const role = groupRole(rendered, changed, name);
      if (role.carriedBy !== undefined) continue;
      const group = companions(ctx, t, role.companions.map((c) => ({ ...planOf(c), old: oldOf(c), newInstance: nextInstance(c) })));
      const own = stopsFirst(meta, finalPorts, name, kind);
      const stopFirst = own || role.companions.some((c) => stopsFirst(planOf(c).meta, finalPorts, c, kind)) || role.joinsKept;
      const why = role.joinsKept ? `it shares the namespaces of ${ownersOf(rendered, name).join(', ')}, which stays, with its old instance` : !own && stopFirst ? `it is replaced with ${role.companions.join(', ')}, which cannot run beside their old instances` : orderReason(meta, kind);
      const pauseAlso = role.joinsKept ? withOwners(rendered, [name]).filter((s) => s !== name && rendered.services.find((m) => m.name === s)?.route !== undefined) : [];
      const swap = await swapService(ctx, t, plan, meta, oldOf(name), nextInstance(name), spec.depad.startTimeoutMs, running, stopFirst, group, why, pauseAlso);
      swaps.push(...group.swaps, swap);
      running.set(name, swap.newId);
      for (const c of group.swaps) running.set(c.service, c.newId);
    }
    checkpoint(ctx, 'update:swapped');
    if (Object.keys(outcomes).length > 0) {
      // Held slots: the revision's plan keeps their old containers, their ports stay theirs.
      rendered = { ...rendered, containers: heldContainers(rendered.containers, current.containers, outcomes) };
      finalPorts = heldPorts(finalPorts, record.ports, outcomes);
      for (const [s, o] of Object.entries(outcomes)) finalReplicas[s] = finalReplicas[s]!.map((n) => o.held.find((h) => h.instead === n)?.instance ?? n);
      await writePlan(record.rootDir, toRevision, rendered);
    }
    // After the new instances serve, before the old ones go: a failure here still reverts.
    workflows.push(...(await runHook(ctx, workflowTarget, 'after-update')));
    // Commit: the old instances and removed services go, then the record moves on in one batch.
    for (const swap of swaps) {
      const olds = 'olds' in swap ? swap.olds.filter((o) => !swap.held.includes(o.instance)).map((o) => o.state) : [swap.old];
      for (const old of olds) if (old) await ctx.engine.removeContainer(old.id);
    }
    for (const name of removed) {
      for (const oldPlan of current.containers.filter((c) => c.service === name)) {
        const old = live.get(oldPlan.name);
        if (!old) continue;
        ctx.progress({ step: 'remove', service: name, message: `removing ${name} (${oldPlan.name}: no longer in the config)` });
        await ctx.engine.stopContainer(old.id, oldPlan.body.StopTimeout);
        await ctx.engine.removeContainer(old.id);
      }
    }
    for (const n of current.networks) if (!rendered.networks.some((x) => x.name === n.name)) await ctx.engine.removeNetwork(n.name);
    const { replicas: _before, held: _held, ...rest } = withSubnets;
    const held = heldRecord(record, [...changed, ...removed], outcomes, current.containers);
    const next: DeploymentRecord = {
      ...rest,
      ...(Object.keys(finalReplicas).length > 0 ? { replicas: finalReplicas } : {}),
      ...(held ? { held } : {}),
      revision: toRevision,
      updatedAt: new Date().toISOString(),
      instances: finalInstances,
      ports: finalPorts,
      labels,
      volumes: [...new Set([...record.volumes, ...rendered.volumes.map((v) => v.name)])],
    };
    const revision: RevisionRecord = {
      deploymentId: record.id,
      number: toRevision,
      createdAt: next.updatedAt,
      configFile: spec.file,
      ...files,
      images,
      source: request.source ?? 'update',
      changed: diff.services.filter((s) => s.kind !== 'unchanged' && s.kind !== 'removed').map((s) => s.service),
      removed,
      overrides: { ...request.overrides },
      ...(workflows.length ? { workflows } : {}),
      ...(request.from !== undefined ? { from: request.from } : {}),
    };
    await ctx.store.batch().putDeployment(next).putRevision(revision).putPorts(finalPorts.map((p) => ({ ...p, deploymentId: record.id }))).deleteJournal(journal.opId).write();
    await promoteRevision(record.rootDir, toRevision);
    await publishRoutes(ctx, next, rendered.services);
    // Images built by earlier attempts that no revision kept; the update is committed, so a failure here only logs.
    await pruneBuiltImages(ctx, record.id).catch((error: unknown) => ctx.log.warn({ deployment: record.name, error: String(error) }, 'removing unused built images failed'));
    const mixed = Object.fromEntries(Object.entries(held ?? {}).filter(([s]) => outcomes[s] !== undefined));
    const paused = Object.values(outcomes).flatMap((o) => (o.paused ? [o.paused] : []));
    if (paused.length > 0) {
      ctx.progress({ step: 'ready', message: `deployment ${record.name} is at revision ${toRevision} (paused)` });
      const pausedError = new DepadError('DEPAD_UPDATE_PAUSED', `deployment ${record.name} is at revision ${toRevision}, but the rolling update paused: ${paused.join('; ')}; ${heldSummary(mixed).join('; ')}`, {
        hint: `the old replicas serve on; fix the service and run depad update ${record.name} again (it rolls the service again), or depad rollback ${record.name}`,
        details: { revision: toRevision, held: mixed },
      });
      return { record: next, revision: toRevision, diff, paused: pausedError };
    }
    for (const line of heldSummary(mixed)) ctx.progress({ step: 'warning', message: `${line}: their new replicas failed and the failures were tolerated (update_config); the next update rolls them again` });
    ctx.progress({ step: 'ready', message: `deployment ${record.name} is at revision ${toRevision}` });
    return { record: next, revision: toRevision, diff };
  } catch (error) {
    ctx.progress({ step: 'undo', message: `update failed; deployment ${record.name} stays at revision ${record.revision}` });
    try {
      const undo = undoContext(ctx); // an interruption stops the update, not its undo
      for (const swap of [...swaps].reverse()) {
        const meta = rendered.services.find((s) => s.name === swap.service)!;
        if ('olds' in swap) await revertRoll(undo, t, swap, meta, spec.depad.startTimeoutMs);
        else await revertSwap(undo, t, swap, meta, spec.depad.startTimeoutMs);
      }
      await reconcileToRecord(undo, record, journal);
      await pruneBuiltImages(undo, record.id); // what this update built, that no revision keeps
    } catch (undoError) {
      ctx.log.error({ deployment: record.name, error: String(undoError) }, 'undoing the update failed; the next depad command retries it');
    }
    throw error;
  }
}

/** One port allocation at a time in this process (bulk updates run several deployments at once). */
const portAllocation = serialQueue();

function who(ctx: OpContext, record: DeploymentRecord, revision: number, instances: Record<string, number>, spec: DeploymentSpec, replicas: Record<string, number[]> | undefined = record.replicas) {
  return { id: record.id, name: record.name, revision, rootDir: record.rootDir, instances, ...(replicas ? { replicas } : {}), domain: baseDomain(spec), home: homeIdentity(ctx.home), subnets: record.subnets };
}


/**
 * Goes back to revision `to` (default: the one before the current): a zero-downtime update to
 * that revision's config, env and image overrides, recorded as a new revision.
 */
export async function rollbackDeployment(ctx: OpContext, record: DeploymentRecord, to = record.revision - 1): Promise<UpdateResult> {
  return updateDeployment(ctx, record, await rollbackRequest(ctx, record, to));
}

/** The update request that restores revision `to`; DEPAD_NOT_FOUND when there is none (or it is the current one). */
export async function rollbackRequest(ctx: OpContext, record: DeploymentRecord, to = record.revision - 1): Promise<UpdateRequest> {
  const target = (await ctx.store.listRevisions(record.id)).find((r) => r.number === to);
  if (!target || to === record.revision) {
    throw new DepadError('DEPAD_NOT_FOUND', to === record.revision ? `revision ${to} is the current one` : `deployment ${record.name} has no revision ${to}`, {
      hint: `see its revisions with: depad history ${record.name}`,
    });
  }
  const { spec, env } = await readRevisionSpec(record.rootDir, to);
  return { spec, env, overrides: target.overrides, source: 'rollback', from: to, pull: 'never', reuseImages: target.images };
}
