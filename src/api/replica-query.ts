/**
 * The `service` and `replica` query parameters of the endpoints behind `ps`, `logs`, `stats` and
 * `health` (replica-select.ts parses and checks them), and what they document in OpenAPI.
 */
import type { InstanceHealth } from '../agent/health-monitor.ts';
import { checkSelection, isSelected, recordReplicas, replicaCount, selectionQuery, selectsAll } from '../deploy/replica-select.ts';
import { readPlanForView } from '../deploy/root-dir.ts';
import { DepadError } from '../errors.ts';
import type { Call } from './call.ts';
import { visibleTo } from './call.ts';

/** An endpoint's query parameter, as the OpenAPI document lists it. */
export interface QueryParameter {
  name: string;
  description: string;
  type: 'string' | 'integer' | 'boolean';
  /** Repeatable (`?service=web&service=db`). */
  array?: boolean;
}

/** The query parameters that pick services and replicas. */
export const SELECTION_QUERY: readonly QueryParameter[] = [
  { name: 'service', type: 'string', array: true, description: 'only this service (repeatable); web[2]: only its replica 2' },
  { name: 'replica', type: 'integer', description: 'only this replica (1…N) of the one service named' },
];

/**
 * GET /v1/health's answer: the agent's rows the token may see, of the deployment asked for and
 * the services and replicas asked for (checked against it), each with its service's replica count.
 */
export async function healthRows(call: Call, rows: readonly InstanceHealth[]): Promise<InstanceHealth[]> {
  const q = call.url.searchParams;
  const only = q.get('deployment');
  const selection = selectionQuery(q);
  const visible = await visibleTo(call);
  const records = new Map((await call.ctx.store.listDeployments()).filter((r) => visible(r.name)).map((r) => [r.name, r]));
  if (!selectsAll(selection)) {
    if (only === null) throw new DepadError('DEPAD_USAGE', 'query parameters service and replica need the deployment parameter', { hint: 'ask for one deployment: ?deployment=shop&service=web&replica=2' });
    const record = records.get(only);
    if (record === undefined) throw new DepadError('DEPAD_NOT_FOUND', `no deployment named ${JSON.stringify(only.slice(0, 80))}`, { hint: 'list them: depad ls' });
    const plan = await readPlanForView(record.rootDir, record.revision).catch(() => undefined);
    checkSelection(recordReplicas(record, plan?.order ?? Object.keys(record.instances)), selection);
  }
  return rows
    .filter((h) => (only === null || h.deployment === only) && records.has(h.deployment) && isSelected(selection, h.service, h.replica ?? 1))
    .map((h) => {
      const record = records.get(h.deployment);
      return { ...h, replica: h.replica ?? 1, replicas: record === undefined ? 1 : replicaCount(record, h.service) };
    });
}
