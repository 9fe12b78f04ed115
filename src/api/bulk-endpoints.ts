/**
 * The API's bulk endpoints: one command over every deployment a label selector picks (see
 * src/deploy/bulk.ts). The token must be allowed the action on every one of them, or nothing
 * runs (403). Progress streams with the deployment's name in front; the answer is the summary.
 */
import { authorize } from '../auth/tokens.ts';
import { bulkLifecycle, bulkRollback, bulkUpdate, selectDeployments } from '../deploy/bulk.ts';
import type { DeploymentRecord } from '../store/records.ts';
import { DepadError } from '../errors.ts';
import { labelsField, onlyFields, readJsonObject } from './body.ts';
import { BUNDLE_BODY_BYTES, dryRunField, withBundle, lifecycleOptions, updateTarget } from './call.ts';
import type { Call, Endpoint } from './call.ts';

/** The selector and roll settings of a bulk body; the rest of the body is left for the verb. */
async function selection(call: Call, body: Record<string, unknown>): Promise<{ records: DeploymentRecord[]; selector: Record<string, string>; maxParallel: number }> {
  const selector = labelsField(body, 'selector');
  const maxParallel = body.maxParallel ?? 1;
  if (typeof maxParallel !== 'number' || !Number.isInteger(maxParallel) || maxParallel < 1 || maxParallel > 64) throw new DepadError('DEPAD_USAGE', 'maxParallel must be a whole number from 1 to 64');
  const records = selectDeployments(await call.ctx.store.listDeployments(), selector);
  for (const record of records) authorize(call.token, call.action, { name: record.name, labels: record.labels ?? {} });
  call.deployment = `-l ${Object.entries(selector).map(([k, v]) => `${k}=${v}`).join(',')}`;
  return { records, selector, maxParallel };
}

/** Removes the bulk fields, leaving the verb's own. */
function withoutBulkFields(body: Record<string, unknown>): Record<string, unknown> {
  const { selector: _s, maxParallel: _m, dryRun: _d, ...rest } = body;
  return rest;
}

/** The bulk endpoints, listed after the others in the OpenAPI document. */
export const BULK_ENDPOINTS: Endpoint[] = [
  {
    method: 'POST',
    path: '/v1/bulk/update',
    action: 'update',
    summary: 'Update every deployment a selector picks, rolling (depad update -l); body: {selector, maxParallel?, dryRun?, and the update body}',
    mutates: true,
    scopesItself: true,
    run: async (call) => {
      const body = await readJsonObject(call.req, BUNDLE_BODY_BYTES);
      const { records, selector, maxParallel } = await selection(call, body);
      return withBundle(call, body, async (unpacked) => {
        const target = updateTarget(call, withoutBulkFields(body), [], unpacked);
        return { body: await bulkUpdate(call.ctx, records, target, selector, { maxParallel, dryRun: dryRunField(body) }) };
      });
    },
  },
  {
    method: 'POST',
    path: '/v1/bulk/rollback',
    action: 'rollback',
    summary: 'Roll every deployment a selector picks back to its previous revision, rolling (depad rollback -l); body: {selector, maxParallel?, dryRun?}',
    mutates: true,
    scopesItself: true,
    run: async (call) => {
      const body = await readJsonObject(call.req);
      onlyFields(body, ['selector', 'maxParallel', 'dryRun']);
      const { records, selector, maxParallel } = await selection(call, body);
      return { body: await bulkRollback(call.ctx, records, selector, { maxParallel, dryRun: dryRunField(body) }) };
    },
  },
  ...(['start', 'stop', 'restart'] as const).map(
    (verb): Endpoint => ({
      method: 'POST',
      path: `/v1/bulk/${verb}`,
      action: verb,
      summary: `${verb[0]?.toUpperCase()}${verb.slice(1)} every deployment a selector picks (depad ${verb} -l); body: {selector, maxParallel?, services?${verb === 'stop' ? '' : ', wait?'}}`,
      mutates: true,
      scopesItself: true,
      run: async (call) => {
        const body = await readJsonObject(call.req);
        onlyFields(body, ['selector', 'maxParallel', 'services', ...(verb === 'stop' ? [] : ['wait'])]);
        const { records, selector, maxParallel } = await selection(call, body);
        return { body: await bulkLifecycle(call.ctx, records, verb, selector, { maxParallel, ...lifecycleOptions(body, verb) }) };
      },
    }),
  ),
];
