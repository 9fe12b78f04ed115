/**
 * Finishing or undoing operations that a killed depad left in the journal. Runs at the start of
 * every command that opens the state, so the next command always finds a consistent state.
 */
import { deploymentRoot } from '../home.ts';
import type { JournalEntry } from '../store/records.ts';
import { checkpoint, type OpContext } from './context.ts';
import { removeFromEngine } from './materialize.ts';
import { removeRoot } from './root-dir.ts';

/** What recovery did, one line per operation, for the user. */
export interface RecoveryNote {
  kind: JournalEntry['kind'];
  name: string;
  step: string;
  action: 'undone' | 'completed';
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
    } else {
      await finishDestroy(ctx, entry);
      notes.push({ kind: entry.kind, name: entry.name, step: entry.step, action: 'completed' });
    }
  }
  return notes;
}

/** Removes everything a create made (engine objects, root dir, records, ports) and restores the cursor. */
export async function undoCreate(ctx: OpContext, entry: JournalEntry): Promise<void> {
  await removeFromEngine(ctx, entry.deploymentId, { keepVolumes: false });
  await removeRoot(deploymentRoot(ctx.home, entry.deploymentId));
  const record = await ctx.store.getDeployment(entry.deploymentId);
  const batch = ctx.store.batch();
  if (record) batch.deleteDeployment(record, (await ctx.store.listRevisions(record.id)).map((r) => r.number));
  if (entry.previousCursor !== undefined) batch.setCursor(entry.previousCursor);
  await batch.deleteJournal(entry.opId).write();
}

/** Completes a destroy: engine objects, root dir, then records and ports in one batch. */
export async function finishDestroy(ctx: OpContext, entry: JournalEntry): Promise<void> {
  const record = await ctx.store.getDeployment(entry.deploymentId);
  await removeFromEngine(ctx, entry.deploymentId, { keepVolumes: entry.keepVolumes ?? false, volumes: record?.volumes ?? [] });
  checkpoint(ctx, 'destroy:engine');
  await removeRoot(deploymentRoot(ctx.home, entry.deploymentId));
  const batch = ctx.store.batch();
  if (record) batch.deleteDeployment(record, (await ctx.store.listRevisions(record.id)).map((r) => r.number));
  await batch.deleteJournal(entry.opId).write();
}
