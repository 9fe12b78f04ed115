/**
 * What a deployment's services use right now (`depad stats`): one engine sample per running
 * instance, beside the limits its plan gave the engine, and the deployment's budget.
 */
import type { ContainerStats } from '../engine/stats.ts';
import { LABELS } from '../engine/types.ts';
import type { DeploymentRecord } from '../store/records.ts';
import type { OpContext } from './context.ts';
import { listInstances } from './materialize.ts';
import { readPlan } from './root-dir.ts';

/** One running instance's use and limits. */
export interface InstanceUsage extends ContainerStats {
  deployment: string;
  service: string;
  container: string;
  /** The CPU limit given to the engine (CPUs), if any. */
  cpuLimit?: number;
}

/** The use of every running instance of `record`, in the plan's service order. */
export async function deploymentUsage(ctx: OpContext, record: DeploymentRecord): Promise<InstanceUsage[]> {
  const plan = await readPlan(record.rootDir, record.revision).catch(() => undefined);
  const running = (await listInstances(ctx, record)).filter((c) => c.running);
  const order = plan?.order ?? [];
  running.sort((a, b) => order.indexOf(a.labels[LABELS.service] ?? '') - order.indexOf(b.labels[LABELS.service] ?? '') || a.name.localeCompare(b.name));
  const samples = await Promise.all(running.map(async (c) => ({ c, stats: await ctx.engine.containerStats(c.id) })));
  return samples.flatMap(({ c, stats }) => {
    if (stats === undefined) return [];
    const service = c.labels[LABELS.service] ?? '?';
    const nano = plan?.containers.find((p) => p.name === c.name)?.body.HostConfig.NanoCpus;
    return [{ deployment: record.name, service, container: c.name, ...stats, ...(nano ? { cpuLimit: nano / 1e9 } : {}) }];
  });
}
