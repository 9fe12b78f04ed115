/**
 * The cluster manager's API: the agent's paths, so every CLI command, context and token works
 * against a cluster unchanged, plus the cluster's own (`/v1/cluster/…`, `/v1/hosts…`).
 *   - tokens and the OpenAPI document: the manager's own (its tokens, its audit log);
 *   - `GET /v1/deployments`: every ready host's list, merged, each view with its `host`;
 *   - `POST /v1/deployments`: placement (placement.ts), the name reserved cluster-wide, then the
 *     create sent to the chosen host; a failure there leaves no placement and nothing reserved;
 *   - every path about one deployment: the token's scope checked here against the placement's
 *     name and labels, then the call relayed to the host that runs it, progress, log lines, answer
 *     and error as the agent gave them (same output, same exit codes);
 *   - a deployment whose host is down: DEPAD_HOST_DOWN, nothing is tried elsewhere (its data is there).
 */
import { authorize, selects } from '../auth/tokens.ts';
import { ENDPOINTS } from '../api/endpoints.ts';
import type { Call, Endpoint } from '../api/call.ts';
import { BUNDLE_BODY_BYTES, withCreateConfig } from '../api/call.ts';
import { readJsonObject, readOptionalJsonObject, stringField } from '../api/body.ts';
import { openApiDocument } from '../api/openapi.ts';
import type { DeploymentView } from '../deploy/status.ts';
import { DepadError } from '../errors.ts';
import { callHost, type ManagerIdentity } from './host-client.ts';
import { clusterEndpoints } from './cluster-endpoints.ts';
import type { HostRegistry } from './hosts.ts';
import { choosePlacement } from './choose.ts';
import { clusterRouteOwners } from './peers.ts';
import { assertHostsUnowned, routedHostnames } from '../deploy/preflight.ts';
import { followAnswer, type Placements } from './placements.ts';
import { serialQueue } from '../serial.ts';
import { managerBulkEndpoints } from './manager-bulk.ts';

/** What the manager's endpoints work with. */
export interface ManagerDeps {
  hosts: HostRegistry;
  placements: Placements;
  identity: ManagerIdentity;
  /** The manager CA's fingerprint (join tokens carry it). */
  caFingerprint: string;
}

/** The manager's endpoint table. */
export function managerEndpoints(deps: ManagerDeps): Endpoint[] {
  const own = ENDPOINTS.filter((e) => e.path.startsWith('/v1/tokens'));
  const relayed = ENDPOINTS.filter((e) => e.path.startsWith('/v1/deployments/{deployment}')).map((e) => relay(deps, e));
  const table: Endpoint[] = [
    { method: 'GET', path: '/v1/openapi.json', action: 'ls', summary: 'This API, described by OpenAPI 3.1', run: async () => ({ body: openApiDocument(table) }) },
    listEndpoint(deps),
    createEndpoint(deps),
    ...relayed,
    healthEndpoint(deps),
    engineEndpoint(deps),
    ...managerBulkEndpoints(deps),
    ...own,
    ...clusterEndpoints(deps),
  ];
  return table;
}

/** A path about one deployment, relayed to its host. */
function relay(deps: ManagerDeps, e: Endpoint): Endpoint {
  return {
    ...e,
    run: async (call) => {
      const placement = deps.placements.resolve(call.params[0] ?? '');
      call.deployment = placement.name;
      authorize(call.token, e.action, { name: placement.name, labels: placement.labels });
      const host = deps.hosts.running(placement.host, placement.name);
      const body = e.method === 'GET' ? undefined : await readOptionalJsonObject(call.req, BUNDLE_BODY_BYTES);
      // The host's agent knows the deployment by the same name; the rest of the path and the query as given.
      const rest = call.url.pathname.slice(`/v1/deployments/${encodeURIComponent(call.params[0] ?? '')}`.length);
      const path = `/v1/deployments/${encodeURIComponent(placement.name)}${rest}${call.url.search}`;
      const send = async (sent: Record<string, unknown> | undefined, progress: boolean) => {
        const answer = await callHost<unknown>(host, deps.identity, {
          method: e.method,
          path,
          ...(sent === undefined || Object.keys(sent).length === 0 && e.method === 'DELETE' ? {} : { body: sent }),
          ...(progress ? { onProgress: call.ctx.progress } : {}),
          onLine: call.emit,
          signal: call.signal,
        });
        if (e.method === 'DELETE' && e.path === '/v1/deployments/{deployment}') {
          await deps.placements.forget(placement.name);
          await deps.hosts.dropReported(host.name, placement.name);
        } else if (!isDryRun(answer)) await followAnswer(deps.placements, placement.name, answer);
        return answer;
      };
      if (!(e.method === 'POST' && (rest === '/update' || rest === '/rollback'))) return { body: withHost(await send(body, e.mutates === true), host.name) };
      // An update, scale or rollback: its dry run says what it will need of the host; refused when
      // that does not fit, else held there while it runs (placements.withGrowth).
      const preview = (await send(body?.dryRun === true ? body : { ...body, dryRun: true }, false)) as { need?: { cpus: number; memoryBytes: number } };
      if (body?.dryRun === true) {
        deps.placements.checkRoom(placement, host, preview.need);
        return { body: withHost(preview, host.name) };
      }
      return { body: withHost(await deps.placements.withGrowth(placement, host, preview.need, () => send(body, true)), host.name) };
    },
  };
}

/** A dry run's answer (update, rollback), which changes nothing the manager follows. */
function isDryRun(answer: unknown): boolean {
  return typeof answer === 'object' && answer !== null && (answer as { dryRun?: unknown }).dryRun === true;
}

/** A deployment view (or an update's answer) with the host that runs it. */
function withHost(answer: unknown, host: string): unknown {
  if (answer === null || typeof answer !== 'object' || Array.isArray(answer)) return answer;
  const a = answer as Record<string, unknown>;
  if (a.view && typeof a.view === 'object') return { ...a, view: { ...(a.view as object), host } };
  return 'name' in a && 'status' in a ? { ...a, host } : answer;
}

function listEndpoint(deps: ManagerDeps): Endpoint {
  return {
    method: 'GET',
    path: '/v1/deployments',
    action: 'ls',
    summary: 'List the deployments the token selects, on every host (depad ls; each view has its host)',
    run: async (call) => {
      const ready = deps.hosts.answering();
      const lists = await Promise.all(ready.map(async (h) => (await callHost<DeploymentView[]>(h, deps.identity, { method: 'GET', path: '/v1/deployments' })).map((v) => ({ ...v, host: h.name }))));
      // Deployments of a host that is down: what the manager knows, status unknown.
      const down = deps.placements.list().filter((p) => p.state === 'placed' && !ready.some((h) => h.name === p.host));
      const unknown = down.map((p) => ({ id: p.id, name: p.name, status: 'unknown (host down)', labels: p.labels, host: p.host, services: [], ports: [] }));
      const all = [...lists.flat(), ...unknown].filter((v) => deps.placements.list().some((p) => p.name === v.name && p.state === 'placed'));
      return { body: all.filter((v) => selects(call.token.scope, { name: v.name, labels: v.labels })).sort((a, b) => a.name.localeCompare(b.name)) };
    },
  };
}

/** One create placed at a time: each sees what the last one reserved. */
const placing = serialQueue();

function createEndpoint(deps: ManagerDeps): Endpoint {
  return {
    method: 'POST',
    path: '/v1/deployments',
    action: 'create',
    scopesItself: true,
    mutates: true,
    summary: 'Create a deployment on the host placement chooses (depad create); body as the agent\'s, plus host? (a host name: only that one) and dryRun? (show the choice and the scores)',
    run: async (call) => {
      const body = await readJsonObject(call.req, BUNDLE_BODY_BYTES);
      if (body.configFile !== undefined) throw new DepadError('DEPAD_USAGE', 'the manager relays configs to other hosts: send the config itself (config and configName, or bundle), not a file path', { hint: 'the depad CLI does so by itself; update it if it sent a path' });
      const only = stringField(body, 'host', true);
      const dryRun = body.dryRun === true;
      const { host: _host, dryRun: _dry, ...forward } = body;
      // Placed while the config is read (an uploaded bundle still unpacked: its errors name the user's file).
      const { name, placement } = await withCreateConfig(call, body, async ({ name, spec, allLabels: all }) => ({ name, placement: await placing(async () => {
        // Hostnames are the cluster's, as names are: every host's proxy serves all of them (peers.ts).
        assertHostsUnowned(name, spec, clusterRouteOwners(deps.hosts, deps.placements.list()));
        const choice = choosePlacement(deps, { name, labels: all, spec, ...(only === undefined ? {} : { host: only }) });
        if (dryRun) return { dry: choice.result };
        const hostnames = routedHostnames(spec, name);
        const placed = await deps.placements.reserve({ name, host: choice.host, labels: all, ...(all.class ? { class: all.class } : {}), need: choice.need, ...(hostnames.length ? { hostnames } : {}) });
        return { placed, result: choice.result };
      }) }));
      if ('dry' in placement) return { body: { dryRun: true, placement: placement.dry } };
      const host = deps.hosts.get(placement.placed.host);
      call.ctx.progress({ step: 'place', message: `placing ${name} on host ${host.name} (${host.address})` });
      try {
        const view = await callHost<DeploymentView>(host, deps.identity, { method: 'POST', path: '/v1/deployments', body: forward, onProgress: call.ctx.progress, signal: call.signal });
        await deps.placements.placed(name, view.id, view.labels);
        return { status: 201, body: { ...view, host: host.name } };
      } catch (error) {
        await deps.placements.forget(name);
        // The host's own words ("not on this host"): say which host, where an image is to be loaded.
        if (!(error instanceof DepadError) || error.code === 'DEPAD_HOST_DOWN') throw error;
        throw new DepadError(error.code, error.message, { cause: error, hint: `${error.hint ? `${error.hint} ` : ''}(on host ${host.name}, where the manager placed it; nothing stays placed)`, ...(error.details ? { details: error.details } : {}) });
      }
    },
  };
}

/** `GET /v1/health?deployment=…` goes to that deployment's host; without one, every ready host's rows. */
function healthEndpoint(deps: ManagerDeps): Endpoint {
  const base = ENDPOINTS.find((e) => e.path === '/v1/health' && e.method === 'GET')!;
  return {
    ...base,
    scopesItself: true,
    run: async (call: Call) => {
      const ref = call.url.searchParams.get('deployment');
      if (ref !== null) {
        const placement = deps.placements.resolve(ref);
        authorize(call.token, base.action, { name: placement.name, labels: placement.labels });
        const host = deps.hosts.running(placement.host, placement.name);
        const q = new URLSearchParams(call.url.searchParams);
        q.set('deployment', placement.name);
        const rows = (await callHost<Array<Record<string, unknown>>>(host, deps.identity, { method: 'GET', path: `/v1/health?${q}` })) ?? [];
        return { body: rows.map((r) => ({ ...r, host: host.name })) };
      }
      authorize(call.token, base.action);
      const ready = deps.hosts.answering();
      const rows = await Promise.all(ready.map(async (h) => ((await callHost<Array<{ deployment: string }>>(h, deps.identity, { method: 'GET', path: `/v1/health${call.url.search}` })) ?? []).map((r) => ({ ...r, host: h.name }))));
      const visible = (r: { deployment: string }) => {
        const p = deps.placements.list().find((x) => x.name === r.deployment);
        return p !== undefined && selects(call.token.scope, { name: p.name, labels: p.labels });
      };
      return { body: rows.flat().filter(visible) };
    },
  };
}

/** `GET /v1/engine` on the manager: the cluster's engines at once, `down` only when no host answers (each host's own: its agent). */
function engineEndpoint(deps: ManagerDeps): Endpoint {
  const base = ENDPOINTS.find((e) => e.path === '/v1/engine' && e.method === 'GET')!;
  const since = new Date().toISOString();
  return {
    ...base,
    run: async () => {
      const hosts = deps.hosts.list();
      const down = hosts.filter((h) => deps.hosts.stateOf(h) === 'down').map((h) => h.name);
      const state = hosts.length > 0 && down.length < hosts.length ? 'up' : 'down';
      return { body: { state, since, address: `the engines of ${hosts.length} host${hosts.length === 1 ? '' : 's'}${down.length ? ` (down: ${down.join(', ')})` : ''}`, ...(state === 'down' ? { error: hosts.length ? 'no host answers' : 'no host joined' } : {}) } };
    },
  };
}
