/**
 * `depad doctor --fix`: does what each finding's `fix.action` says, in an order that works on
 * the engine: interrupted operations recovered first (as any command would), then containers
 * removed, then networks, volumes and directories; routes and ports put right; missing objects
 * of a deployment made again by the path `depad start` takes. Each finding gets its own result:
 * one failure (a network another container still uses) does not stop the others.
 */
import { LABELS } from '../engine/types.ts';
import { homeIdentity } from '../home.ts';
import type { PortRecord } from '../store/records.ts';
import type { OpContext } from './context.ts';
import type { Finding, FindingKind } from './doctor.ts';
import { startDeployment } from './lifecycle.ts';
import { repairSubnets } from './doctor-subnets.ts';
import { ensureNetworks, ensureVolumes } from './materialize.ts';
import { recoverJournal } from './recover.ts';
import { readPlan, removeRoot } from './root-dir.ts';

/** What `--fix` did about one finding. */
export interface RepairResult {
  key: string;
  kind: FindingKind;
  object: string;
  /** `fixed`; `kept` (by policy: data) or `left` (needs a person, see `note`); `failed` (see `note`). */
  result: 'fixed' | 'kept' | 'left' | 'failed';
  note: string;
}

/** Fixes `findings` (from `diagnose`, with the same options); returns one result per finding, in their order. */
export async function repair(ctx: OpContext, findings: readonly Finding[]): Promise<RepairResult[]> {
  const results = new Map<string, RepairResult>();
  const done = (f: Finding, result: RepairResult['result'], note: string) => results.set(f.key, { key: f.key, kind: f.kind, object: f.object, result, note });
  const attempt = async (f: Finding, note: string, fn: () => Promise<unknown>) => {
    try {
      await fn();
      done(f, 'fixed', note);
    } catch (error) {
      done(f, 'failed', (error as Error).message);
    }
  };
  const acting = (action: Finding['fix']['action']) => findings.filter((f) => f.fix.action === action);
  for (const f of findings) if (f.fix.action === 'keep' || f.fix.action === 'none') done(f, f.fix.action === 'keep' ? 'kept' : 'left', f.fix.command ? `${f.fix.text} [${f.fix.command}]` : f.fix.text);

  const recovering = acting('recover');
  if (recovering.length > 0) {
    try {
      const notes = await recoverJournal(ctx);
      for (const f of recovering) {
        const note = notes.find((n) => `${n.kind} ${n.name}` === f.object);
        done(f, 'fixed', note ? `${note.action} (it had stopped at step ${note.step})` : 'recovered');
      }
    } catch (error) {
      for (const f of recovering) done(f, 'failed', (error as Error).message);
    }
  }

  const removing = acting('remove');
  const ofKind = (...kinds: FindingKind[]) => removing.filter((f) => kinds.includes(f.kind));
  await Promise.all(ofKind('orphan-container', 'stray-container').map((f) => attempt(f, 'removed', async () => {
    ctx.progress({ step: 'remove', message: `removing container ${f.object}` });
    await ctx.engine.removeContainer(f.id as string);
  })));
  for (const f of ofKind('orphan-network', 'stray-network')) {
    await attempt(f, 'removed', async () => {
      ctx.progress({ step: 'remove', message: `removing network ${f.object}` });
      await ctx.engine.removeNetwork(f.id as string);
    });
  }
  for (const f of ofKind('orphan-volume')) {
    await attempt(f, 'removed', async () => {
      // Still depad's, and this home's: never a volume that was replaced meanwhile.
      const labels = await ctx.engine.volumeLabels(f.object);
      if (labels === undefined) return;
      if (labels[LABELS.deploymentId] !== f.deployment?.id || labels[LABELS.home] !== homeIdentity(ctx.home)) throw new Error(`volume ${f.object} changed since it was diagnosed; left alone`);
      ctx.progress({ step: 'remove', message: `removing volume ${f.object}` });
      await ctx.engine.removeVolume(f.object);
    });
  }
  for (const f of ofKind('orphan-root')) {
    await attempt(f, 'removed', async () => {
      ctx.progress({ step: 'remove', message: `removing directory ${f.object}` });
      await removeRoot(f.object);
    });
  }
  for (const f of ofKind('orphan-route')) {
    await attempt(f, 'removed from the routes', async () => {
      ctx.progress({ step: 'routes', message: `removing the routes of ${f.deployment?.name ?? '?'}` });
      await ctx.routes.removeDeployment(f.deployment?.name as string);
    });
  }

  await repairPorts(ctx, [...acting('release'), ...acting('register')].filter((f) => !f.kind.startsWith('subnet-')), done);
  await repairSubnets(ctx, [...acting('release'), ...acting('register')].filter((f) => f.kind.startsWith('subnet-')), done);

  // Missing objects, per deployment: the path start takes (networks, volumes, then containers in dependency order).
  const recreating = acting('recreate');
  for (const id of new Set(recreating.map((f) => f.deployment?.id as string))) {
    const mine = recreating.filter((f) => f.deployment?.id === id);
    const services = mine.filter((f) => f.kind === 'missing-container').map((f) => f.object);
    const note = services.length > 0 ? 're-created and started' : 're-created';
    try {
      const record = await ctx.store.getDeployment(id);
      if (record === undefined) throw new Error('the deployment is gone');
      const plan = await readPlan(record.rootDir, record.revision);
      if (services.length > 0) {
        const names = plan.containers.filter((c) => services.includes(c.name)).map((c) => c.service);
        await startDeployment(ctx, record, { services: names });
      } else {
        await ensureNetworks(ctx, record, plan);
        await ensureVolumes(ctx, record, plan);
      }
      for (const f of mine) done(f, 'fixed', note);
    } catch (error) {
      for (const f of mine) done(f, 'failed', (error as Error).message);
    }
  }
  return findings.map((f) => results.get(f.key) ?? { key: f.key, kind: f.kind, object: f.object, result: 'left', note: f.fix.text });
}

/** Leaked ports released and unregistered ones reserved again, in one batch. */
async function repairPorts(ctx: OpContext, findings: readonly Finding[], done: (f: Finding, result: RepairResult['result'], note: string) => void): Promise<void> {
  if (findings.length === 0) return;
  const port = (f: Finding) => Number(f.object.replace(/^port /, ''));
  try {
    const batch = ctx.store.batch();
    const release = findings.filter((f) => f.kind === 'port-leak');
    batch.deletePorts(release.map((f) => ({ host: port(f) })));
    const register: PortRecord[] = [];
    const unknown = new Set<Finding>();
    for (const f of findings.filter((x) => x.kind === 'port-unregistered')) {
      const record = await ctx.store.getDeployment(f.deployment?.id as string);
      const assignment = record?.ports.find((p) => p.host === port(f));
      if (record && assignment) register.push({ ...assignment, deploymentId: record.id });
      else unknown.add(f);
    }
    batch.putPorts(register);
    ctx.progress({ step: 'ports', message: `port registry: ${release.length} released, ${register.length} reserved again` });
    await batch.write();
    for (const f of findings) {
      if (unknown.has(f)) done(f, 'failed', 'the deployment no longer lists this port');
      else done(f, 'fixed', f.kind === 'port-leak' ? 'released' : 'reserved again');
    }
  } catch (error) {
    for (const f of findings) done(f, 'failed', (error as Error).message);
  }
}
