/**
 * Finishing or undoing operations that a killed depad left in the journal. Runs at the start of
 * every command that opens the state, so the next command always finds a consistent state.
 */
import { DepadError } from '../errors.ts';
import { LABELS } from '../engine/types.ts';
import { deploymentRoot } from '../home.ts';
import type { DeploymentRecord, JournalEntry } from '../store/records.ts';
import { checkpoint, type OpContext } from './context.ts';
import { ensureNetworks, ensureVolumes, listInstances, removeFromEngine, startServices } from './materialize.ts';
import { readPlan, removeRevision, removeRoot } from './root-dir.ts';
import { publishRoutes } from './routing.ts';
import { pruneBuiltImages } from './build.ts';

/** The failures of an instance's start that recovery warns about and goes on (wait.ts's failure()). */
const READY_FAILURES = new Set(['DEPAD_SERVICE_FAILED', 'DEPAD_TIMEOUT']);

/** What recovery did, one line per operation, for the user. */
export interface RecoveryNote {
  kind: JournalEntry['kind'];
  name: string;
  step: string;
  action: 'undone' | 'completed' | 'rolled back';
}

/** Undoes interrupted creates and completes interrupted destroys. */
export async function recoverJournal(ctx: OpContext): Promise<RecoveryNote[]> {
  const notes: RecoveryNote[] = [];
  for (const entry of await ctx.store.listJournal()) {
    if (entry.pid === process.pid) continue;
    ctx.log.warn({ op: entry.kind, deployment: entry.name, step: entry.step, pid: entry.pid }, 'recovering an interrupted operation');
    if (entry.kind === 'create') {
      await undoCreate(ctx, entry);
      notes.push({ kind: entry.kind, name: entry.name, step: entry.step, action: 'undone' });
    } else if (entry.kind === 'update') {
      const record = await ctx.store.getDeployment(entry.deploymentId);
      if (record) await reconcileToRecord(ctx, record, entry);
      else await ctx.store.batch().deleteJournal(entry.opId).write();
      notes.push({ kind: entry.kind, name: entry.name, step: entry.step, action: 'rolled back' });
    } else {
      await finishDestroy(ctx, entry);
      notes.push({ kind: entry.kind, name: entry.name, step: entry.step, action: 'completed' });
    }
  }
  return notes;
}

/** Removes everything a create made (engine objects, root dir, records, ports) and restores the cursor. */
export async function undoCreate(ctx: OpContext, entry: JournalEntry): Promise<void> {
  await ctx.routes.removeDeployment(entry.name);
  await removeFromEngine(ctx, entry.deploymentId, { keepVolumes: false });
  await pruneBuiltImages(ctx, entry.deploymentId, { all: true });
  await removeRoot(deploymentRoot(ctx.home, entry.deploymentId));
  const record = await ctx.store.getDeployment(entry.deploymentId);
  const batch = ctx.store.batch();
  if (record) batch.deleteDeployment(record, (await ctx.store.listRevisions(record.id)).map((r) => r.number));
  if (entry.previousCursor !== undefined) batch.setCursor(entry.previousCursor);
  await batch.deleteJournal(entry.opId).write();
}

/** Completes a destroy: engine objects, root dir, then records and ports in one batch. */
export async function finishDestroy(ctx: OpContext, entry: JournalEntry): Promise<void> {
  await ctx.routes.removeDeployment(entry.name);
  const record = await ctx.store.getDeployment(entry.deploymentId);
  await removeFromEngine(ctx, entry.deploymentId, { keepVolumes: entry.keepVolumes ?? false, volumes: record?.volumes ?? [] });
  await pruneBuiltImages(ctx, entry.deploymentId, { all: true });
  checkpoint(ctx, 'destroy:engine');
  await removeRoot(deploymentRoot(ctx.home, entry.deploymentId));
  const batch = ctx.store.batch();
  if (record) batch.deleteDeployment(record, (await ctx.store.listRevisions(record.id)).map((r) => r.number));
  await batch.deleteJournal(entry.opId).write();
}

/**
 * Brings the engine, the port registry, the proxy's routes and the root directory back to what
 * the committed record says: undoes an update that did not finish (failed, or killed).
 */
export async function reconcileToRecord(ctx: OpContext, record: DeploymentRecord, entry: JournalEntry): Promise<void> {
  const plan = await readPlan(record.rootDir, record.revision);
  const wanted = new Set(plan.containers.map((c) => c.name));
  for (const c of await listInstances(ctx, record)) {
    if (!wanted.has(c.name)) await ctx.engine.removeContainer(c.id);
  }
  const label = { [LABELS.deploymentId]: record.id };
  for (const n of await ctx.engine.listNetworks(label)) if (!plan.networks.some((p) => p.name === n.name)) await ctx.engine.removeNetwork(n.id);
  for (const v of await ctx.engine.listVolumes(label)) if (!record.volumes.includes(v.name)) await ctx.engine.removeVolume(v.name);
  if (record.desired === 'running') {
    await ensureNetworks(ctx, record, plan);
    await ensureVolumes(ctx, record, plan);
    // Old instances it starts again get their route back once ready, as in an update; one that
    // does not get ready is routed all the same (the record says it runs: the agent's checks and
    // restarts take it from there), with a warning.
    try {
      await startServices(ctx, record, plan, { timeoutMs: 60_000 });
    } catch (error) {
      if (!(error instanceof DepadError) || !READY_FAILURES.has(error.code)) throw error;
      ctx.log.warn({ deployment: record.name, code: error.code, error: error.message.split('\n')[0] }, 'an instance started again by recovery is not ready; routed all the same');
    }
  }
  await publishRoutes(ctx, record, plan.services);
  if (entry.toRevision !== undefined && entry.toRevision > record.revision) await removeRevision(record.rootDir, entry.toRevision);
  const held = new Set(record.ports.map((p) => p.host));
  const strays = (await ctx.store.listPorts()).filter((p) => p.deploymentId === record.id && !held.has(p.host));
  // Subnets an update allocated for networks it added: released with it.
  const subnetStrays = (await ctx.store.listSubnets()).filter((n) => n.deploymentId === record.id && !(record.subnets ?? []).some((h) => h.given === n.given));
  // Spares an update had taken are the record's spares again.
  await ctx.store.batch().deletePorts(strays).deleteSubnets(subnetStrays).putPorts(record.ports.map((p) => ({ ...p, deploymentId: record.id }))).deleteJournal(entry.opId).write();
}
