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
import { ALL, checkSelection, isSelected, recordReplicas, replicaCount, replicaOf, selectsAll, type ReplicaSelection } from './replica-select.ts';

/** One running instance's use and limits. */
export interface InstanceUsage extends Omit<ContainerStats, 'memoryLimitBytes'> {
  deployment: string;
  service: string;
  /** Which of the service's replicas (1…N). */
  replica: number;
  /** How many current replicas the service has. */
  replicas: number;
  container: string;
  /** The CPU limit given to the engine (CPUs); null: none. */
  cpuLimit: number | null;
  /** The memory limit the engine enforces; null: none (the engine would report the host's memory). */
  memoryLimitBytes: number | null;
}

/** The use of every running instance of `record` (those `selection` takes, checked), in the plan's service order. */
export async function deploymentUsage(ctx: OpContext, record: DeploymentRecord, selection: ReplicaSelection = ALL): Promise<InstanceUsage[]> {
  const plan = await readPlan(record.rootDir, record.revision).catch(() => undefined);
  if (!selectsAll(selection)) checkSelection(recordReplicas(record, plan?.order ?? Object.keys(record.instances)), selection);
  const running = (await listInstances(ctx, record)).filter((c) => c.running && isSelected(selection, c.labels[LABELS.service] ?? '', replicaOf(c.labels)));
  const order = plan?.order ?? [];
  running.sort((a, b) => order.indexOf(a.labels[LABELS.service] ?? '') - order.indexOf(b.labels[LABELS.service] ?? '') || replicaOf(a.labels) - replicaOf(b.labels) || a.name.localeCompare(b.name));
  const samples = await Promise.all(running.map(async (c) => ({ c, stats: await ctx.engine.containerStats(c.id) })));
  return samples.flatMap(({ c, stats }) => {
    if (stats === undefined) return [];
    const service = c.labels[LABELS.service] ?? '?';
    const host = plan?.containers.find((p) => p.name === c.name)?.body.HostConfig;
    // Without its plan it cannot be told whether the engine's figure is a limit: it is shown as the engine says.
    const memoryLimitBytes = host === undefined || host.Memory ? stats.memoryLimitBytes : null;
    return [{ deployment: record.name, service, replica: replicaOf(c.labels), replicas: replicaCount(record, service), container: c.name, ...stats, cpuLimit: host?.NanoCpus ? host.NanoCpus / 1e9 : null, memoryLimitBytes }];
  });
}
