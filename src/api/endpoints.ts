/**
 * The management API's endpoints: what each does, the action its token scope is checked for, and
 * the checks on its inputs (paths, bodies, files). The dispatch, authentication and streaming are
 * in handler.ts; the OpenAPI document is built from this table.
 */
import { createToken, parseScope, revokeToken, selects } from '../auth/tokens.ts';
import { createDeployment } from '../deploy/create.ts';
import { destroyDeployment, lifecycleOperation } from '../deploy/lifecycle.ts';
import { listDeploymentViews, listRevisions, readLogs, viewDeployment } from '../deploy/status.ts';
import { deploymentUsage } from '../deploy/usage.ts';
import { currentTarget, findWorkflow, runWorkflow } from '../deploy/workflows.ts';
import { WORKFLOW_NAME } from '../config/workflows.ts';
import { planUpdate, rollbackRequest, updateDeployment, updateRequestFor } from '../deploy/update.ts';
import type { UpdateRequest } from '../deploy/update-target.ts';
import { needOf } from '../cluster/need.ts';
import { MANAGER_TOKEN_ID } from '../cluster/membership.ts';
import { previewUpdate } from '../deploy/update-preview.ts';
import type { UpdateOutcome, UpdateResult } from '../deploy/update.ts';
import { DepadError } from '../errors.ts';
import { booleanField, booleanQuery, onlyFields, readJsonObject, readOptionalJsonObject, stringField, stringsField } from './body.ts';
import { openApiDocument } from './openapi.ts';
import { cancelOperation } from './operations.ts';
import { BUNDLE_BODY_BYTES, withBundle, withCreateConfig, dryRunField, lifecycleOptions, pullField, ref, scopedDeployment, updateTarget } from './call.ts';
import type { Call, Endpoint } from './call.ts';
import { BULK_ENDPOINTS } from './bulk-endpoints.ts';
import { DOCTOR_ENDPOINTS } from './doctor-endpoints.ts';
import { EVENT_ENDPOINTS } from './event-endpoints.ts';
import { AGENT_ENDPOINTS } from './agent-endpoints.ts';
import { VOLUME_ENDPOINTS } from './volume-endpoints.ts';
import { healthRows, SELECTION_QUERY } from './replica-query.ts';
import { selectionQuery, selectView } from '../deploy/replica-select.ts';

/** The shapes every endpoint shares (call.ts). */
export type { Call, Endpoint } from './call.ts';

/** What update and rollback answer: the deployment after it, the diff, the new revision (if any). */
async function outcome(call: Call, result: UpdateResult, spec: UpdateRequest['spec']): Promise<UpdateOutcome> {
  const { cpus, memoryBytes } = needOf(spec);
  return { view: await viewDeployment(call.ctx, result.record), diff: result.diff, revision: result.revision, need: { cpus, memoryBytes } };
}

/**
 * An agent that joined a cluster takes creates from its manager only: the manager places them and
 * keeps names and hostnames unique across the hosts (a create made here would bypass both).
 */
function assertNotClusterCreate(call: Call): void {
  const cluster = call.cluster?.();
  if (cluster === undefined || call.token.id === MANAGER_TOKEN_ID) return;
  throw new DepadError('DEPAD_USAGE', `this agent is host ${cluster.host} of a cluster: create deployments through its manager (${cluster.managerUrl}), which places them and keeps their names and hostnames unique across the hosts`, {
    hint: `depad --host ${cluster.managerUrl} create … (--on-host ${cluster.host} to place it here); the other verbs work here as through the manager`,
  });
}

/** The endpoints, in the order the OpenAPI document lists them. */
export const ENDPOINTS: Endpoint[] = [
  ...coreEndpoints(),
  ...EVENT_ENDPOINTS,
  ...AGENT_ENDPOINTS,
  ...BULK_ENDPOINTS,
  ...DOCTOR_ENDPOINTS,
  ...VOLUME_ENDPOINTS,
];

function coreEndpoints(): Endpoint[] {
  return [
  {
    method: 'GET',
    path: '/v1/openapi.json',
    action: 'ls',
    summary: 'This API, described by OpenAPI 3.1',
    run: async () => ({ body: openApiDocument(ENDPOINTS) }),
  },
  {
    method: 'GET',
    path: '/v1/deployments',
    action: 'ls',
    summary: 'List the deployments the token selects (depad ls)',
    run: async (call) => ({ body: (await listDeploymentViews(call.ctx)).filter((v) => selects(call.token.scope, { name: v.name, labels: v.labels })) }),
  },
  {
    method: 'POST',
    path: '/v1/deployments',
    action: 'create',
    scopesItself: true,
    summary: 'Create a deployment (depad create); body: {name, config and configName (or configFile over the local socket), env?, labels?, pull?, wait?}',
    mutates: true,
    run: async (call) => {
      assertNotClusterCreate(call);
      const body = await readJsonObject(call.req, BUNDLE_BODY_BYTES);
      onlyFields(body, ['name', 'configFile', 'config', 'configName', 'bundle', 'env', 'labels', 'pull', 'wait']);
      return withCreateConfig(call, body, async ({ name, spec, env, labels }) => {
        const record = await createDeployment(call.ctx, { name, spec, env, labels, pull: pullField(body), wait: body.wait === undefined || booleanField(body, 'wait'), clusterChecked: call.token.id === MANAGER_TOKEN_ID });
        return { status: 201, body: await viewDeployment(call.ctx, record) };
      });
    },
  },
  {
    method: 'GET',
    path: '/v1/deployments/{deployment}',
    action: 'inspect',
    summary: 'One deployment with its revisions (depad inspect); query: service, replica (only those services and replicas: depad inspect -s, depad ps -s)',
    query: SELECTION_QUERY,
    run: async (call) => {
      const record = await scopedDeployment(call);
      const view = selectView(await viewDeployment(call.ctx, record), selectionQuery(call.url.searchParams));
      return { body: { ...view, revisions: await listRevisions(call.ctx, record) } };
    },
  },
  {
    method: 'GET',
    path: '/v1/deployments/{deployment}/stats',
    action: 'inspect',
    summary: 'CPU, memory and processes of each running instance, with limits (depad stats); query: service, replica',
    query: SELECTION_QUERY,
    run: async (call) => {
      const record = await scopedDeployment(call);
      return { body: await deploymentUsage(call.ctx, record, selectionQuery(call.url.searchParams)) };
    },
  },
  {
    method: 'GET',
    path: '/v1/deployments/{deployment}/history',
    action: 'history',
    summary: 'The revisions of a deployment (depad history)',
    run: async (call) => {
      const record = await scopedDeployment(call);
      return { body: (await listRevisions(call.ctx, record)).map((r) => ({ ...r, current: r.number === record.revision })) };
    },
  },
  {
    method: 'GET',
    path: '/v1/deployments/{deployment}/logs',
    action: 'logs',
    summary: 'Log lines as JSON lines {log: {service, replica, stream, text}} (depad logs); query: service (repeatable; web[2]: one replica), replica, tail, follow, timestamps',
    query: [...SELECTION_QUERY, { name: 'tail', type: 'integer', description: 'only the last n lines of each instance' }, { name: 'follow', type: 'boolean', description: 'keep following' }, { name: 'timestamps', type: 'boolean', description: 'prefix each line with its time' }],
    streams: true,
    run: async (call) => {
      const record = await scopedDeployment(call);
      const q = call.url.searchParams;
      const tail = q.get('tail');
      if (tail !== null && !/^\d+$/.test(tail)) throw new DepadError('DEPAD_USAGE', 'tail must be a number of lines');
      const selection = selectionQuery(q);
      let lines = 0;
      await readLogs(call.ctx, record, {
        selection,
        follow: q.get('follow') === 'true',
        ...(tail === null ? {} : { tail: Number(tail) }),
        timestamps: q.get('timestamps') === 'true',
        signal: call.signal,
      }, (service, line, replica) => {
        lines++;
        call.emit({ log: { service, replica, stream: line.stream, text: line.text } });
      });
      return { body: { lines } };
    },
  },
  {
    method: 'POST',
    path: '/v1/deployments/{deployment}/rollback',
    action: 'rollback',
    summary: 'Go back to a revision, zero downtime (depad rollback); body: {to?, dryRun? (answer what it would do, change nothing)}',
    mutates: true,
    run: async (call) => {
      const record = await scopedDeployment(call);
      const body = await readOptionalJsonObject(call.req);
      onlyFields(body, ['to', 'dryRun']);
      if (body.to !== undefined && !(Number.isInteger(body.to) && (body.to as number) > 0)) throw new DepadError('DEPAD_USAGE', 'field to must be a revision number');
      const request = await rollbackRequest(call.ctx, record, body.to as number | undefined);
      if (dryRunField(body)) return { body: await previewUpdate(call.ctx, record, request) };
      return { body: await outcome(call, await updateDeployment(call.ctx, record, request), request.spec) };
    },
  },
  ...(['start', 'stop', 'restart'] as const).map(
    (verb): Endpoint => ({
      method: 'POST',
      path: `/v1/deployments/{deployment}/${verb}`,
      action: verb,
      summary: `${verb[0]?.toUpperCase()}${verb.slice(1)} a deployment, or some services (depad ${verb}); body: {services?, wait?}`,
      mutates: true,
      run: async (call) => {
        const record = await scopedDeployment(call);
        const body = await readOptionalJsonObject(call.req);
        onlyFields(body, verb === 'stop' ? ['services'] : ['services', 'wait']);
        const options = lifecycleOptions(body, verb);
        const run = lifecycleOperation(verb);
        return { body: await viewDeployment(call.ctx, await run(call.ctx, record, options)) };
      },
    }),
  ),
  {
    method: 'POST',
    path: '/v1/deployments/{deployment}/update',
    action: 'update',
    summary: 'Update a deployment, zero downtime (depad update); body: {configFile? (local socket), config?, configName?, env? (over the current variables), resetEnv?, overrides?, pull?, dryRun? (answer what it would do, change nothing)}',
    mutates: true,
    run: async (call) => {
      const record = await scopedDeployment(call);
      const body = await readJsonObject(call.req, BUNDLE_BODY_BYTES);
      return withBundle(call, body, async (unpacked) => {
        const request = await updateRequestFor(record, updateTarget(call, body, ['dryRun'], unpacked));
        if (dryRunField(body)) return { body: await previewUpdate(call.ctx, record, request) };
        return { body: await outcome(call, await updateDeployment(call.ctx, record, request), request.spec) };
      });
    },
  },
  {
    method: 'GET',
    path: '/v1/deployments/{deployment}/workflows',
    action: 'inspect',
    summary: "The deployment's workflows: hooks, timeout, steps (depad workflow ls)",
    run: async (call) => ({ body: Object.values((await currentTarget(await scopedDeployment(call))).spec.depad.workflows ?? {}) }),
  },
  {
    method: 'POST',
    path: '/v1/deployments/{deployment}/workflows/{workflow}',
    action: 'update',
    summary: "Run one of the deployment's workflows now, with its current revision (depad workflow run)",
    mutates: true,
    run: async (call) => {
      const record = await scopedDeployment(call);
      const name = call.params[1] ?? '';
      if (!WORKFLOW_NAME.test(name)) throw new DepadError('DEPAD_NAME_INVALID', `not a workflow name: ${JSON.stringify(name.slice(0, 80))}`);
      const target = await currentTarget(record);
      return { body: await runWorkflow(call.ctx, target, findWorkflow(target.spec, name), 'manual') };
    },
  },
  {
    method: 'POST',
    path: '/v1/deployments/{deployment}/diff',
    action: 'diff',
    summary: 'What an update would change, per service; changes nothing (depad diff); body as for update',
    run: async (call) => {
      const record = await scopedDeployment(call);
      const body = await readJsonObject(call.req, BUNDLE_BODY_BYTES);
      return withBundle(call, body, async (unpacked) => {
        const { diff } = await planUpdate(call.ctx, record, await updateRequestFor(record, updateTarget(call, body, [], unpacked)));
        return { body: { diff, name: record.name, revision: record.revision } };
      });
    },
  },
  {
    method: 'DELETE',
    path: '/v1/deployments/{deployment}',
    action: 'destroy',
    summary: 'Destroy a deployment (depad destroy); ?keepVolumes=true keeps its named volumes',
    mutates: true,
    run: async (call) => {
      const record = await scopedDeployment(call);
      await destroyDeployment(call.ctx, record, { keepVolumes: booleanQuery(call.url, 'keepVolumes') });
      return { body: { destroyed: record.name, id: record.id } };
    },
  },
  {
    method: 'POST',
    path: '/v1/operations/{operation}/cancel',
    action: 'ls',
    scopesItself: true,
    summary: "Stop an operation under way and undo what it did (the CLI's Ctrl-C): its ID is the depad-operation header of its streamed answer, which goes on and ends with the outcome (DEPAD_INTERRUPTED once undone). Only the token that started it, or an administrator; 202",
    run: async (call) => {
      const id = call.params[0] ?? '';
      if (!/^[0-9a-f]{32}$/.test(id)) throw new DepadError('DEPAD_NAME_INVALID', `not an operation ID: ${JSON.stringify(id.slice(0, 80))}`);
      const cancelled = cancelOperation(id, call.token);
      if (cancelled.deployment !== undefined) call.deployment = cancelled.deployment;
      return { status: 202, body: cancelled };
    },
  },
  {
    method: 'GET',
    path: '/v1/engine',
    action: 'ls',
    summary: "Whether the agent reaches the Docker Engine: state (up, down), since, the last error while down, address",
    run: async (call) => {
      if (call.engine === undefined) throw new DepadError('DEPAD_AGENT_UNAVAILABLE', 'the engine is watched by the agent', { hint: 'start it: depad agent' });
      return { body: call.engine() };
    },
  },
  {
    method: 'GET',
    path: '/v1/health',
    action: 'ls',
    summary: "Health of every checked instance the token selects: status, consecutive failures, restarts, last results, replica (depad health); query: deployment, service and replica (with deployment)",
    query: [{ name: 'deployment', type: 'string', description: 'only this deployment (by name)' }, ...SELECTION_QUERY],
    run: async (call) => {
      if (call.health === undefined) throw new DepadError('DEPAD_AGENT_UNAVAILABLE', 'health checks run in the agent', { hint: 'start it: depad agent' });
      return { body: await healthRows(call, call.health()) };
    },
  },
  {
    method: 'GET',
    path: '/v1/certificates',
    action: 'certificates',
    summary: "The proxy's HTTPS certificates (ACME): hostname, state, expiry, last error (depad certs)",
    run: async (call) => ({ body: call.certificates() }),
  },
  {
    method: 'GET',
    path: '/v1/tokens',
    action: 'tokens',
    summary: 'List tokens, never their secrets (depad token ls)',
    run: async (call) => ({ body: (await call.ctx.store.listTokens()).map(({ id, name, scope, createdAt, revokedAt }) => ({ id, name, scope, createdAt, revokedAt })) }),
  },
  {
    method: 'POST',
    path: '/v1/tokens',
    action: 'tokens',
    summary: 'Make a token; the answer holds it, once (depad token create)',
    run: async (call) => {
      const body = await readJsonObject(call.req);
      onlyFields(body, ['name', 'scope', 'deployments', 'selector']);
      const scope = parseScope(stringField(body, 'scope') as string, stringsField(body, 'deployments'), stringsField(body, 'selector'));
      const { token, record } = await createToken(call.ctx.store, stringField(body, 'name') as string, scope);
      return { status: 201, body: { token, id: record.id, name: record.name, scope: record.scope, createdAt: record.createdAt } };
    },
  },
  {
    method: 'DELETE',
    path: '/v1/tokens/{token}',
    action: 'tokens',
    summary: 'Revoke a token by name or ID (depad token revoke)',
    run: async (call) => {
      const record = await revokeToken(call.ctx.store, ref(call));
      return { body: { id: record.id, name: record.name, revokedAt: record.revokedAt } };
    },
  },
];
}
