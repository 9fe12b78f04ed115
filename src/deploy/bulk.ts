/**
 * One command over many deployments, picked by a label selector (`class=plateaumed,env=prod`):
 * updates that roll through them with a concurrency limit, and start, stop, restart. Everything is
 * checked before anything changes (every deployment has the services named, the images exist,
 * the configs are valid), then the deployments go `maxParallel` at a time in name order. The first
 * failure stops the roll: the failed update has already rolled its deployment back (update.ts),
 * the ones in flight finish, and the rest are skipped. The summary says, per deployment, from
 * what to what, the result and the time it took.
 */
import { DepadError } from '../errors.ts';
import { labelsText, matchesSelector } from '../labels.ts';
import type { DeploymentRecord, RevisionRecord } from '../store/records.ts';
import type { OpContext } from './context.ts';
import { lifecycleOperation } from './lifecycle.ts';
import { assertUpdatable, planUpdate, rollbackDeployment, updateDeployment, updateRequestFor } from './update.ts';
import type { UpdateRequest, UpdateTarget } from './update.ts';

/** What happened to one deployment. */
export interface BulkItem {
  deployment: string;
  /** What it was at before: images of the services named, or `rev N`. */
  from: string;
  /** What it goes to: reached (`updated`), or not (`failed`, `skipped`), or would be (`would update`). */
  to: string;
  result: 'updated' | 'unchanged' | 'would update' | 'done' | 'failed' | 'skipped';
  ms: number;
  /** The failure's message (result `failed`). */
  error?: string;
  /** The failure's code. */
  code?: string;
  /** Through a cluster manager: the host that runs it. */
  host?: string;
}

/** The outcome of a bulk command: one item per selected deployment, in name order. */
export interface BulkOutcome {
  selector: Record<string, string>;
  items: BulkItem[];
  /** True when every deployment succeeded (or nothing was needed). */
  ok: boolean;
}

/** Options of a bulk command. */
export interface BulkOptions {
  /** How many deployments change at once (default 1). */
  maxParallel?: number;
  /** Plan and report only (updates). */
  dryRun?: boolean;
}

/** The deployments whose labels match `selector`, by name; DEPAD_NOT_FOUND when none does. */
export function selectDeployments(records: readonly DeploymentRecord[], selector: Readonly<Record<string, string>>): DeploymentRecord[] {
  if (Object.keys(selector).length === 0) throw new DepadError('DEPAD_USAGE', 'an empty selector would pick every deployment', { hint: 'give labels: -l class=plateaumed' });
  const picked = records.filter((r) => r.phase === 'ready' && matchesSelector(r.labels, selector)).sort((a, b) => a.name.localeCompare(b.name));
  if (picked.length === 0) {
    throw new DepadError('DEPAD_NOT_FOUND', `no deployment has the labels ${labelsText(selector)}`, { hint: 'see each deployment\'s labels with: depad inspect <deployment>' });
  }
  return picked;
}

/** One settled run of `rolling`. */
export interface Settled<R> {
  outcome: 'done' | 'failed' | 'skipped';
  value?: R;
  error?: unknown;
  ms: number;
}

/**
 * Runs `fn` over `items` in order, at most `maxParallel` at once. After the first failure nothing
 * new starts; the runs in flight finish. Results are in the order of `items`.
 */
export async function rolling<T, R>(items: readonly T[], maxParallel: number, fn: (item: T) => Promise<R>): Promise<Settled<R>[]> {
  const results: Settled<R>[] = items.map(() => ({ outcome: 'skipped', ms: 0 }));
  let next = 0;
  let failed = false;
  const worker = async () => {
    while (!failed && next < items.length) {
      const i = next++;
      const started = Date.now();
      try {
        results[i] = { outcome: 'done', value: await fn(items[i] as T), ms: Date.now() - started };
      } catch (error) {
        failed = true;
        results[i] = { outcome: 'failed', error, ms: Date.now() - started };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(maxParallel, items.length)) }, worker));
  return results;
}

/** A failed item's error and code, as the summary shows them. */
export function failure(error: unknown): Pick<BulkItem, 'error' | 'code'> {
  const code = error instanceof DepadError ? error.code : undefined;
  return { error: error instanceof Error ? error.message : String(error), ...(code ? { code } : {}) };
}

/** Progress of one deployment among many: its name in front of every line. */
function forDeployment(ctx: OpContext, name: string): OpContext {
  return { ...ctx, progress: (event) => ctx.progress({ ...event, message: `${name}: ${event.message}` }) };
}

/**
 * What an update changes, in the summary's words: the images of the services it overrides (from
 * the current revision's `images()`, asked only then), else revision → the next one. `byConfig`:
 * it gives a config, so it is a revision change whatever it overrides.
 */
export async function updateFromTo(revision: number, overrides: Readonly<Record<string, string>>, byConfig: boolean, images: () => Promise<RevisionRecord['images']>): Promise<{ from: string; to: string }> {
  const given = Object.entries(overrides);
  if (byConfig || given.length === 0) return { from: `rev ${revision}`, to: `rev ${revision + 1}` };
  const current = await images();
  return {
    from: given.map(([service]) => current[service]?.ref ?? '?').join(', '),
    to: [...new Set(given.map(([, image]) => image))].join(', '),
  };
}

/** What `target` changes, in the summary's words. */
function fromTo(ctx: OpContext, record: DeploymentRecord, target: UpdateTarget): Promise<{ from: string; to: string }> {
  return updateFromTo(record.revision, target.overrides ?? {}, target.configFile !== undefined || target.configText !== undefined, async () => (await ctx.store.listRevisions(record.id)).find((r) => r.number === record.revision)?.images ?? {});
}

/** Updates every deployment in `records` to `target`, rolling (see the file comment). */
export async function bulkUpdate(ctx: OpContext, records: readonly DeploymentRecord[], target: UpdateTarget, selector: Record<string, string>, options: BulkOptions = {}): Promise<BulkOutcome> {
  // Check everything first: nothing changes unless every deployment can be updated.
  const plans: { record: DeploymentRecord; request: UpdateRequest; from: string; to: string; empty: boolean }[] = [];
  for (const record of records) {
    try {
      assertUpdatable(record);
      const request = await updateRequestFor(record, target);
      const { diff } = await planUpdate(ctx, record, request, { lookOnly: options.dryRun === true });
      plans.push({ record, request, ...(await fromTo(ctx, record, target)), empty: diff.empty });
    } catch (error) {
      const e = error instanceof DepadError ? error : new DepadError('DEPAD_INTERNAL', String(error), { cause: error });
      throw new DepadError(e.code, `${record.name}: ${e.message}; nothing was updated`, { ...(e.hint ? { hint: e.hint } : {}), cause: error });
    }
  }
  if (options.dryRun) {
    return { selector, ok: true, items: plans.map((p) => ({ deployment: p.record.name, from: p.from, to: p.empty ? p.from : p.to, result: p.empty ? 'unchanged' : 'would update', ms: 0 })) };
  }
  const settled = await rolling(plans, options.maxParallel ?? 1, async (p) => {
    // The record as it is now: an earlier step of this command may not have touched it, but a reload costs nothing.
    const record = (await ctx.store.getDeployment(p.record.id)) ?? p.record;
    return updateDeployment(forDeployment(ctx, p.record.name), record, p.request);
  });
  const items = plans.map((p, i): BulkItem => {
    const s = settled[i] as Settled<Awaited<ReturnType<typeof updateDeployment>>>;
    const base = { deployment: p.record.name, from: p.from, ms: s.ms };
    // `to` is always the target: what a failed or skipped deployment did not reach.
    if (s.outcome === 'failed') return { ...base, to: p.to, result: 'failed', ...failure(s.error) };
    if (s.outcome === 'skipped') return { ...base, to: p.to, result: 'skipped' };
    return { ...base, to: s.value?.revision === undefined ? p.from : p.to, result: s.value?.revision === undefined ? 'unchanged' : 'updated' };
  });
  return { selector, ok: items.every((i) => i.result !== 'failed'), items };
}

/** Rolls every deployment in `records` back to its previous revision, rolling; checks first that each has one. */
export async function bulkRollback(ctx: OpContext, records: readonly DeploymentRecord[], selector: Record<string, string>, options: BulkOptions = {}): Promise<BulkOutcome> {
  const first = records.find((r) => r.revision < 2);
  if (first) throw new DepadError('DEPAD_NOT_FOUND', `${first.name} has no revision before ${first.revision}; nothing was rolled back`, { hint: 'narrow the selector' });
  for (const record of records) assertUpdatable(record);
  if (options.dryRun) {
    return { selector, ok: true, items: records.map((r) => ({ deployment: r.name, from: `rev ${r.revision}`, to: `rev ${r.revision + 1} (= rev ${r.revision - 1})`, result: 'would update', ms: 0 })) };
  }
  const settled = await rolling(records, options.maxParallel ?? 1, async (record) => rollbackDeployment(forDeployment(ctx, record.name), record));
  const items = records.map((record, i): BulkItem => {
    const s = settled[i] as Settled<Awaited<ReturnType<typeof rollbackDeployment>>>;
    const from = `rev ${record.revision}`;
    const target = `rev ${record.revision - 1}`;
    if (s.outcome === 'failed') return { deployment: record.name, from, to: target, result: 'failed', ms: s.ms, ...failure(s.error) };
    if (s.outcome === 'skipped') return { deployment: record.name, from, to: target, result: 'skipped', ms: s.ms };
    return { deployment: record.name, from, to: `rev ${s.value?.revision ?? record.revision} (= rev ${record.revision - 1})`, result: 'updated', ms: s.ms };
  });
  return { selector, ok: items.every((i) => i.result !== 'failed'), items };
}

/** Starts, stops or restarts every deployment in `records` (services: only those), rolling. */
export async function bulkLifecycle(
  ctx: OpContext,
  records: readonly DeploymentRecord[],
  verb: 'start' | 'stop' | 'restart',
  selector: Record<string, string>,
  options: BulkOptions & { services?: string[]; wait?: boolean } = {},
): Promise<BulkOutcome> {
  const run = lifecycleOperation(verb);
  const settled = await rolling(records, options.maxParallel ?? 1, async (record) =>
    run(forDeployment(ctx, record.name), record, { ...(options.services ? { services: options.services } : {}), wait: options.wait !== false }),
  );
  const items = records.map((record, i): BulkItem => {
    const s = settled[i] as Settled<unknown>;
    const from = record.desired;
    const to = verb === 'stop' ? 'stopped' : 'running';
    if (s.outcome === 'failed') return { deployment: record.name, from, to: from, result: 'failed', ms: s.ms, ...failure(s.error) };
    return { deployment: record.name, from, to: s.outcome === 'skipped' ? from : to, result: s.outcome === 'skipped' ? 'skipped' : 'done', ms: s.ms };
  });
  return { selector, ok: items.every((i) => i.result !== 'failed'), items };
}
