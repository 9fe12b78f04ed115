/**
 * The bulk verbs through the cluster manager (`depad update -l class=web --max-parallel 2`
 * against a cluster): the agent's `/v1/bulk/…` paths and answer, over every host.
 *   - selection: the placed deployments whose labels match the selector, by name, across every
 *     host; the token must be allowed the action on each of them, or nothing runs (403);
 *   - checks first, as the agent's bulk does: each update and rollback is tried as a dry run on its
 *     host (config valid, services there, images present, a revision to go back to); any refusal
 *     stops everything before anything changed (`<deployment>: …; nothing was updated`);
 *   - then ONE roll over all hosts: `maxParallel` deployments at a time in name order, each one's
 *     verb relayed to its host (its progress streamed with the deployment's name in front); the first
 *     failure stops it: the ones in flight finish, the rest are `skipped` (not run);
 *   - a host that is down (at the checks or during the roll): that deployment fails with
 *     DEPAD_HOST_DOWN and the roll stops there, as at any failure; nothing is tried elsewhere;
 *   - the answer: the agent's bulk summary, each item with its `host`.
 */
import { authorize } from '../auth/tokens.ts';
import { BULK_ENDPOINTS } from '../api/bulk-endpoints.ts';
import { labelsField, onlyFields, readJsonObject } from '../api/body.ts';
import { BUNDLE_BODY_BYTES, dryRunField, type Call, type Endpoint } from '../api/call.ts';
import { failure, rolling, updateFromTo, type BulkItem, type BulkOutcome, type Settled } from '../deploy/bulk.ts';
import type { DeploymentView } from '../deploy/status.ts';
import type { UpdateOutcome } from '../deploy/update.ts';
import type { UpdatePreview } from '../deploy/update-preview.ts';
import { DepadError } from '../errors.ts';
import { labelsText, matchesSelector } from '../labels.ts';
import type { PlacementRecord, RevisionRecord } from '../store/records.ts';
import { callHost } from './host-client.ts';
import type { ManagerDeps } from './manager-endpoints.ts';
import { followAnswer } from './placements.ts';

type Verb = 'update' | 'rollback' | 'start' | 'stop' | 'restart';

/** One selected deployment, as checked: what it goes from and to. */
interface Planned {
  placement: PlacementRecord;
  from: string;
  to: string;
  /** A dry run found nothing to change. */
  empty?: boolean;
  /** The revision it is at (rollbacks). */
  revision?: number;
  /** What it will need of its host after the change (its dry run's answer): held while it runs. */
  need?: { cpus: number; memoryBytes: number };
}

/** The selector and roll settings of a bulk body, and the placements it picks (scope checked). */
function select(deps: ManagerDeps, call: Call, body: Record<string, unknown>): { selector: Record<string, string>; maxParallel: number; picked: PlacementRecord[] } {
  const selector = labelsField(body, 'selector');
  const maxParallel = body.maxParallel ?? 1;
  if (typeof maxParallel !== 'number' || !Number.isInteger(maxParallel) || maxParallel < 1 || maxParallel > 64) throw new DepadError('DEPAD_USAGE', 'maxParallel must be a whole number from 1 to 64');
  if (Object.keys(selector).length === 0) throw new DepadError('DEPAD_USAGE', 'an empty selector would pick every deployment', { hint: 'give labels: -l class=plateaumed' });
  call.deployment = `-l ${Object.entries(selector).map(([k, v]) => `${k}=${v}`).join(',')}`;
  const picked = deps.placements.list().filter((p) => p.state === 'placed' && matchesSelector(p.labels, selector));
  for (const p of picked) authorize(call.token, call.action, { name: p.name, labels: p.labels });
  if (picked.length === 0) throw new DepadError('DEPAD_NOT_FOUND', `no deployment has the labels ${labelsText(selector)}`, { hint: 'see each deployment\'s labels with: depad inspect <deployment>' });
  return { selector, maxParallel, picked };
}

/** Calls `path` of deployment `p` on its host as the manager. */
function onHost<T>(deps: ManagerDeps, call: Call, p: PlacementRecord, method: 'GET' | 'POST', rest: string, body?: Record<string, unknown>, progress = false): Promise<T> {
  return callHost<T>(deps.hosts.running(p.host, p.name), deps.identity, {
    method,
    path: `/v1/deployments/${encodeURIComponent(p.name)}${rest}`,
    ...(body === undefined ? {} : { body }),
    // Progress of one deployment among many: its name in front of every line, as the agent's bulk does.
    ...(progress ? { onProgress: (event) => call.ctx.progress({ ...event, message: `${p.name}: ${event.message}` }) } : {}),
    signal: call.signal,
  });
}

/** One deployment's change in the roll, holding what its check said it will need on its host (placements.withGrowth). */
function grown<T>(deps: ManagerDeps, c: Planned, change: () => Promise<T>): Promise<T> {
  return deps.placements.withGrowth(c.placement, deps.hosts.running(c.placement.host, c.placement.name), c.need, change);
}

const isHostDown = (error: unknown) => error instanceof DepadError && error.code === 'DEPAD_HOST_DOWN';

/**
 * Checks every selected deployment on its host (`check`), in name order, a few hosts at a time.
 * A refusal throws as the agent's bulk does; a host down ends the command with that deployment
 * failed and every other one skipped (the outcome returned instead of the plans).
 */
async function checkAll(picked: PlacementRecord[], selector: Record<string, string>, verbPast: string, check: (p: PlacementRecord) => Promise<Planned>): Promise<Planned[] | BulkOutcome> {
  const settled = await rolling(picked, 8, check);
  const failed = settled.findIndex((s) => s.outcome === 'failed');
  if (failed < 0) return settled.map((s) => s.value as Planned);
  const error = settled[failed]?.error;
  const name = picked[failed]!.name;
  if (isHostDown(error)) {
    // What each checked one would go from and to; `?` where its check did not run.
    const items = picked.map((p, i): BulkItem => {
      const plan = settled[i]?.value;
      return { deployment: p.name, host: p.host, from: plan?.from ?? '?', to: plan?.to ?? '?', ms: 0, result: i === failed ? 'failed' : 'skipped', ...(i === failed ? failure(error) : {}) };
    });
    return { selector, ok: false, items };
  }
  const e = error instanceof DepadError ? error : new DepadError('DEPAD_INTERNAL', String(error), { cause: error });
  throw new DepadError(e.code, `${name}: ${e.message}; nothing was ${verbPast}`, { ...(e.hint ? { hint: e.hint } : {}), cause: error });
}

/** The roll: `run` over the plans, `maxParallel` at once across hosts, stopping at the first failure. */
async function roll<R>(plans: Planned[], selector: Record<string, string>, maxParallel: number, run: (p: Planned) => Promise<R>, done: (p: Planned, value: R) => Pick<BulkItem, 'to' | 'result'>): Promise<BulkOutcome> {
  const settled = await rolling(plans, maxParallel, run);
  const items = plans.map((p, i): BulkItem => {
    const s = settled[i] as Settled<R>;
    const base = { deployment: p.placement.name, host: p.placement.host, from: p.from, ms: s.ms };
    // `to` is always the target: what a failed or skipped deployment did not reach.
    if (s.outcome === 'failed') return { ...base, to: p.to, result: 'failed', ...failure(s.error) };
    if (s.outcome === 'skipped') return { ...base, to: p.to, result: 'skipped' };
    return { ...base, ...done(p, s.value as R) };
  });
  return { selector, ok: items.every((i) => i.result !== 'failed'), items };
}

/** From and to of an update, in the agent's words (bulk.ts), the images read from the host's history when needed. */
function hostFromTo(deps: ManagerDeps, call: Call, p: PlacementRecord, body: Record<string, unknown>, revision: number): Promise<{ from: string; to: string }> {
  const images = async () => (await onHost<RevisionRecord[]>(deps, call, p, 'GET', '/history')).find((r) => r.number === revision)?.images ?? {};
  return updateFromTo(revision, (body.overrides ?? {}) as Record<string, string>, body.config !== undefined || body.bundle !== undefined, images);
}

async function bulkUpdate(deps: ManagerDeps, call: Call): Promise<BulkOutcome> {
  const body = await readJsonObject(call.req, BUNDLE_BODY_BYTES);
  if (body.configFile !== undefined) throw new DepadError('DEPAD_USAGE', 'the manager relays configs to other hosts: send the config itself (config and configName, or bundle), not a file path', { hint: 'the depad CLI does so by itself; update it if it sent a path' });
  const { selector, maxParallel, picked } = select(deps, call, body);
  const dryRun = dryRunField(body);
  const { selector: _s, maxParallel: _m, dryRun: _d, ...target } = body;
  const checked = await checkAll(picked, selector, 'updated', async (p) => {
    const preview = await onHost<UpdatePreview>(deps, call, p, 'POST', '/update', { ...target, dryRun: true });
    deps.placements.checkRoom(p, deps.hosts.running(p.host, p.name), preview.need);
    return { placement: p, ...(await hostFromTo(deps, call, p, target, preview.revision)), empty: preview.diff.empty, ...(preview.need ? { need: preview.need } : {}) };
  });
  if (!Array.isArray(checked)) return checked;
  if (dryRun) {
    return { selector, ok: true, items: checked.map((c) => ({ deployment: c.placement.name, host: c.placement.host, from: c.from, to: c.empty ? c.from : c.to, result: c.empty ? 'unchanged' : 'would update', ms: 0 })) };
  }
  return roll(checked, selector, maxParallel, (c) => grown(deps, c, async () => {
    const outcome = await onHost<UpdateOutcome>(deps, call, c.placement, 'POST', '/update', target, true);
    await followAnswer(deps.placements, c.placement.name, outcome);
    return outcome;
  }), (c, o) => (o.revision === undefined ? { to: c.from, result: 'unchanged' } : { to: c.to, result: 'updated' }));
}

async function bulkRollback(deps: ManagerDeps, call: Call): Promise<BulkOutcome> {
  const body = await readJsonObject(call.req);
  onlyFields(body, ['selector', 'maxParallel', 'dryRun']);
  const { selector, maxParallel, picked } = select(deps, call, body);
  const checked = await checkAll(picked, selector, 'rolled back', async (p) => {
    const view = await onHost<DeploymentView>(deps, call, p, 'GET', '');
    if (view.revision < 2) throw new DepadError('DEPAD_NOT_FOUND', `has no revision before ${view.revision}`, { hint: 'narrow the selector' });
    const preview = await onHost<UpdatePreview>(deps, call, p, 'POST', '/rollback', { dryRun: true });
    deps.placements.checkRoom(p, deps.hosts.running(p.host, p.name), preview.need);
    return { placement: p, from: `rev ${view.revision}`, to: `rev ${view.revision - 1}`, revision: view.revision, ...(preview.need ? { need: preview.need } : {}) };
  });
  if (!Array.isArray(checked)) return checked;
  if (dryRunField(body)) {
    return { selector, ok: true, items: checked.map((c) => ({ deployment: c.placement.name, host: c.placement.host, from: c.from, to: `rev ${(c.revision ?? 0) + 1} (= ${c.to})`, result: 'would update', ms: 0 })) };
  }
  return roll(checked, selector, maxParallel, (c) => grown(deps, c, async () => {
    const outcome = await onHost<UpdateOutcome>(deps, call, c.placement, 'POST', '/rollback', {}, true);
    await followAnswer(deps.placements, c.placement.name, outcome);
    return outcome;
  }), (c, o) => ({ to: `rev ${o.revision ?? c.revision} (= ${c.to})`, result: 'updated' }));
}

async function bulkLifecycle(deps: ManagerDeps, call: Call, verb: 'start' | 'stop' | 'restart'): Promise<BulkOutcome> {
  const body = await readJsonObject(call.req);
  onlyFields(body, ['selector', 'maxParallel', 'services', ...(verb === 'stop' ? [] : ['wait'])]);
  const { selector, maxParallel, picked } = select(deps, call, body);
  const { selector: _s, maxParallel: _m, ...options } = body;
  const to = verb === 'stop' ? 'stopped' : 'running';
  const checked = await checkAll(picked, selector, verb === 'stop' ? 'stopped' : 'started', async (p) => {
    const view = await onHost<DeploymentView>(deps, call, p, 'GET', '');
    // A failed or skipped deployment stays where it was, as in the agent's summary.
    return { placement: p, from: view.desired, to: view.desired };
  });
  if (!Array.isArray(checked)) return checked;
  return roll(checked, selector, maxParallel, (c) => onHost<DeploymentView>(deps, call, c.placement, 'POST', `/${verb}`, options, true), () => ({ to, result: 'done' }));
}

/** The manager's bulk endpoints: the agent's paths, methods and summaries (bulk-endpoints.ts), run across hosts. */
export function managerBulkEndpoints(deps: ManagerDeps): Endpoint[] {
  const run = (path: string): Endpoint['run'] => {
    const verb = path.slice('/v1/bulk/'.length) as Verb;
    return async (call) => ({
      body: verb === 'update' ? await bulkUpdate(deps, call) : verb === 'rollback' ? await bulkRollback(deps, call) : await bulkLifecycle(deps, call, verb),
    });
  };
  return BULK_ENDPOINTS.map((e) => ({ ...e, run: run(e.path) }));
}
