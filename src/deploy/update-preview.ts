/**
 * What an update or rollback would do (`--dry-run`): the diff and the steps it would take, in
 * order, worked out the way the update works them out; nothing is changed, nothing is pulled.
 */
import type { Hook } from '../config/workflows.ts';
import { containerName } from '../render/names.ts';
import type { DeploymentRecord } from '../store/records.ts';
import type { OpContext } from './context.ts';
import { serviceChanges, type PlanDiff } from './diff.ts';
import { orderReason, planUpdatePorts, publishes, rollPolicy, scaleKeeps, stopsFirst } from './port-plan.ts';
import { assertUpdatable, planUpdate } from './update.ts';
import { groupRole, ownersOf } from './namespace-groups.ts';
import type { UpdateRequest } from './update-target.ts';
import { needOf } from '../cluster/need.ts';

/** A dry run's answer. */
export interface UpdatePreview {
  dryRun: true;
  name: string;
  /** The revision the deployment is at. */
  revision: number;
  /** The revision the update would make; absent when nothing would change. */
  toRevision?: number;
  diff: PlanDiff;
  /** What the update would do, in order, one sentence each. */
  steps: string[];
  /** Images that are not on the host: the update would pull them (or fail with `--pull never`). */
  pull: string[];
  /** What the deployment would need of its host after it (cluster/need.ts): the manager holds it while the change runs. */
  need: { cpus: number; memoryBytes: number };
}

/** Works out what `request` would do to `record`; changes nothing. */
export async function previewUpdate(ctx: OpContext, record: DeploymentRecord, request: UpdateRequest): Promise<UpdatePreview> {
  assertUpdatable(record);
  const { current, candidate, diff, missing } = await planUpdate(ctx, record, request, { lookOnly: true });
  const { cpus, memoryBytes } = needOf(request.spec);
  const base = { dryRun: true as const, name: record.name, revision: record.revision, diff, pull: missing, need: { cpus, memoryBytes } };
  if (diff.empty) return { ...base, steps: [] };
  const { changed, removed } = serviceChanges(diff);
  const ports = planUpdatePorts(record, request.spec, changed, removed, scaleKeeps(diff, record));
  const steps: string[] = missing.map((image) => `pull ${image}`);
  const hooks = (hook: Hook) => Object.values(request.spec.depad.workflows ?? {}).filter((w) => w.hooks.includes(hook)).map((w) => `run workflow ${w.name} (${hook})`);
  if (ports.needed.length) steps.push(`reserve ${ports.needed.length} host port(s) for new instances (the deployment's spares first, else its own block)`);
  steps.push(...hooks('before-update'));
  const kind = request.source === 'rollback' ? 'rollback' : 'update';
  for (const name of candidate.order) {
    const change = diff.services.find((s) => s.service === name);
    const meta = candidate.services.find((s) => s.name === name)!;
    if (change?.kind === 'routing') steps.push(`${name}: update its route settings (no new instance)`);
    if (!changed.includes(name)) continue;
    const olds = current.containers.filter((c) => c.service === name).length;
    const news = request.spec.services[name]?.replicas ?? 1;
    if (olds > 1 || news > 1) {
      // Replicas: batch by batch (roll.ts), or a scale that keeps the ones that stay.
      const policy = rollPolicy(request.spec, meta, [...ports.kept, ...ports.needed], name, kind);
      const size = policy.parallelism === 0 ? 'all' : String(policy.parallelism);
      steps.push(change?.replicas?.only
        ? `${name}: scale ${olds} → ${news} replicas: ${Math.min(olds, news)} stay as they are; ${news > olds ? `start ${news - olds}, wait until they are ready, add them to the route` : `take ${olds - news} out of the route, drain them, stop them`} (${size} at a time)`
        : `${name}: roll ${olds} replicas to ${news}, ${size} at a time (${policy.order}${policy.delayMs ? `, ${policy.delayMs} ms apart` : ''}): each batch starts new replicas on fresh ports, waits until they are ready, adds them to the route${policy.order === 'start-first' ? ', then takes as many old ones out, drains and stops them' : ' (its old ones were taken out, drained and stopped first)'}; a failed batch rolls ${name} back`);
      continue;
    }
    const role = groupRole(candidate, changed, name);
    if (role.carriedBy !== undefined) continue; // in its owner's step
    const next = containerName(record.name, name, (record.instances[name] ?? 0) + 1);
    const along = role.companions.length ? ` with ${role.companions.join(', ')} (started in its new namespaces right after it, their old instances stopped just before its old one)` : '';
    const old = current.containers.find((c) => c.service === name)?.name;
    const published = ports.kept.filter((p) => p.service === name && p.role === 'published').map((p) => String(p.host));
    if (old === undefined) {
      steps.push(`${name}: start ${next} (a new service)${along}, wait until it is ready${meta.route ? ', route it' : ''}`);
    } else if (role.joinsKept) {
      steps.push(`${name}: stop-first (it shares the namespaces of ${ownersOf(candidate, name).join(', ')}, which stays): stop ${old}, start ${next}, wait until it is ready`);
    } else if (stopsFirst(meta, [...ports.kept, ...ports.needed], name, kind) || role.companions.some((c) => stopsFirst(candidate.services.find((s) => s.name === c)!, [...ports.kept, ...ports.needed], c, kind))) {
      const all = [...ports.kept, ...ports.needed];
      const ownPorts = publishes(all, name);
      const why = meta.fixedAddress ? 'its fixed address passes to the new instance' : published.length ? `its published port ${published.join(', ')} passes to the new instance` : ownPorts ? 'it publishes host ports, which two instances cannot share' : orderReason(meta, kind) ?? (stopsFirst(meta, all, name, kind) ? 'it has named volumes' : `${role.companions.join(', ')} cannot run beside their old instances`);
      const wait = meta.route ? 'new requests to its route wait meanwhile' : published.length ? 'the port answers nothing meanwhile' : 'nothing routes to it';
      steps.push(`${name}: stop-first (${why})${along}: stop ${old}, start ${next}, wait until it is ready${meta.route ? ', route it' : ''}; ${wait}`);
    } else {
      steps.push(`${name}: start ${next} beside ${old}${along}, wait until it is ready${meta.route ? ', switch the route, drain' : ','} then stop ${old}`);
    }
  }
  steps.push(...hooks('after-update'));
  for (const name of removed) steps.push(`${name}: stop and remove it (no longer in the config); its ports stay reserved for ${record.name}`);
  // A scale keeps its replicas that stay: it has no old instances to remove here (its removed ones are in its own step).
  const replaced = changed.filter((n) => current.containers.some((c) => c.service === n) && !diff.services.some((d) => d.service === n && d.replicas?.only));
  if (replaced.length) steps.push(`remove the old instances of ${replaced.join(', ')}`);
  steps.push(`commit revision ${record.revision + 1}`);
  return { ...base, toRevision: record.revision + 1, steps };
}
