/** start, stop, restart and destroy of a whole deployment or of some of its services. */
import { runBeforeDestroy } from './workflows.ts';
import { DepadError, isDepadError } from '../errors.ts';
import { randomBytes } from 'node:crypto';
import type { DeploymentRecord, JournalEntry } from '../store/records.ts';
import { checkpoint, undoContext, type OpContext } from './context.ts';
import { ensureNetworks, ensureVolumes, startServices, stopServices } from './materialize.ts';
import { finishDestroy } from './recover.ts';
import { publishLive } from './routing.ts';
import { assertServices } from './resolve.ts';
import { readPlan } from './root-dir.ts';
import { withJoiners, withOwners } from './namespace-groups.ts';
import { assertExternalsExist } from './externals.ts';

/** Options shared by start, stop and restart. */
export interface LifecycleOptions {
  /** Only these services (default: all). */
  services?: readonly string[];
  /** Wait for health checks after starting (default true). */
  wait?: boolean;
  /** Start timeout (default 120 s). */
  timeoutMs?: number;
}

/** Starts a deployment's services (creating any container that went missing), dependencies first. */
export async function startDeployment(ctx: OpContext, record: DeploymentRecord, given: LifecycleOptions = {}): Promise<DeploymentRecord> {
  const plan = await readPlan(record.rootDir, record.revision);
  if (given.services) assertServices(record, plan.order, given.services);
  // A service starts with what it joins (network_mode: service:…) and what joins it (namespace-groups.ts).
  const options = given.services ? { ...given, services: inOrder(plan.order, withOwners(plan, withJoiners(plan, given.services))) } : given;
  await ctx.engine.ping();
  await assertExternalsExist(ctx, plan.external);
  const updated = await setDesired(ctx, record, 'running', options.services);
  // Anything removed behind depad's back (a network, a volume, a container) is made again.
  await ensureNetworks(ctx, record, plan);
  await ensureVolumes(ctx, record, plan);
  await startServices(ctx, record, plan, {
    ...(options.services ? { services: options.services } : {}),
    waitHealthy: options.wait !== false,
    timeoutMs: options.timeoutMs ?? 120_000,
  });
  await publishLive(ctx, updated, plan);
  return updated;
}

/** Stops a deployment's services, dependants first. Ports stay reserved. */
export async function stopDeployment(ctx: OpContext, record: DeploymentRecord, given: LifecycleOptions = {}): Promise<DeploymentRecord> {
  const plan = await readPlan(record.rootDir, record.revision);
  if (given.services) assertServices(record, plan.order, given.services);
  // What joins a stopped service's namespaces stops with it (it would have no network left).
  const options = given.services ? { ...given, services: inOrder(plan.order, withJoiners(plan, given.services)) } : given;
  await ctx.engine.ping();
  const updated = await setDesired(ctx, record, 'stopped', options.services);
  // Routes first, so clients get 503 (or wait) instead of connection errors; then drain.
  await publishLive(ctx, updated, plan, options.services ?? plan.order);
  await stopServices(ctx, record, plan, options.services);
  return updated;
}

/** Stops then starts; the instances keep their containers, ports and volumes. */
export async function restartDeployment(ctx: OpContext, record: DeploymentRecord, options: LifecycleOptions = {}): Promise<DeploymentRecord> {
  // The start goes on from the record the stop wrote (desired: stopped), so that it writes running again.
  const stopped = await stopDeployment(ctx, record, options);
  return startDeployment(ctx, stopped, options);
}

function inOrder(order: readonly string[], services: readonly string[]): string[] {
  return order.filter((s) => services.includes(s));
}

/** Options for destroy. */
export interface DestroyOptions {
  /** Keep the named volumes (a later create with the same name reuses them). */
  keepVolumes?: boolean;
}

/** The start, stop or restart operation for `verb`. */
export function lifecycleOperation(verb: 'start' | 'stop' | 'restart'): (ctx: OpContext, record: DeploymentRecord, options?: LifecycleOptions) => Promise<DeploymentRecord> {
  return verb === 'start' ? startDeployment : verb === 'stop' ? stopDeployment : restartDeployment;
}

/**
 * Removes containers, networks, volumes (unless kept), the root directory, records and ports.
 * An interruption before removal begins (during before-destroy workflows) stops it with nothing
 * removed; once it has begun, the destroy is completed, as its journal entry would be otherwise.
 */
export async function destroyDeployment(ctx: OpContext, record: DeploymentRecord, options: DestroyOptions = {}): Promise<void> {
  await ctx.engine.ping();
  // A failing before-destroy workflow stops the destroy before anything is removed.
  const notYet = () => new DepadError('DEPAD_INTERRUPTED', `the destroy of ${record.name} was interrupted before anything was removed`, { hint: `it still exists; destroy it again with: depad destroy ${record.name}` });
  try {
    await runBeforeDestroy(ctx, record);
  } catch (error) {
    throw isDepadError(error, 'DEPAD_INTERRUPTED') ? notYet() : error;
  }
  if (ctx.signal?.aborted) throw notYet();
  const journal: JournalEntry = {
    opId: randomBytes(16).toString('hex'),
    kind: 'destroy',
    deploymentId: record.id,
    name: record.name,
    pid: process.pid,
    startedAt: new Date().toISOString(),
    step: 'begin',
    keepVolumes: options.keepVolumes ?? false,
  };
  await ctx.store.batch().putDeployment({ ...record, phase: 'destroying' }).putJournal(journal).write();
  const finish = undoContext(ctx);
  checkpoint(finish, 'destroy:begin');
  await finishDestroy(finish, journal);
  const late = ctx.signal?.aborted ? ' (interrupted once removal had begun: it was completed)' : '';
  ctx.progress({ step: 'destroyed', message: `deployment ${record.name} destroyed${options.keepVolumes ? ' (volumes kept)' : ''}${late}` });
}

/** Records what the user asked for: the whole deployment's desired state, or which of its services stay stopped. */
async function setDesired(ctx: OpContext, record: DeploymentRecord, desired: DeploymentRecord['desired'], services?: readonly string[]): Promise<DeploymentRecord> {
  const before = record.stoppedServices ?? [];
  const stopped = services === undefined ? [] : desired === 'stopped' ? [...new Set([...before, ...services])].sort() : before.filter((s) => !services.includes(s));
  const nextDesired = services === undefined ? desired : record.desired;
  if (nextDesired === record.desired && stopped.join() === before.join()) return record;
  const { stoppedServices: _, ...rest } = record;
  const updated: DeploymentRecord = { ...rest, desired: nextDesired, ...(stopped.length ? { stoppedServices: stopped } : {}), updatedAt: new Date().toISOString() };
  await ctx.store.batch().putDeployment(updated).write();
  return updated;
}
