/**
 * The management API's request handler (HTTP/1.1, JSON in and out), listener-agnostic: the agent
 * mounts it on its HTTPS port and its unix socket. Every request authenticates with
 * `Authorization: Bearer <token>`; without a valid token every path answers the same 401, so a
 * caller learns nothing else. Scopes are checked per action and deployment (403). Errors are
 * `{"error": {code, message, hint}}` with the status of their code (src/errors.ts), the form the
 * CLI prints with --json. Every authenticated request goes to the audit log.
 */
import type { CertificateStatus } from '../../certs/acme.ts';
import type { InstanceHealth } from '../agent/health-monitor.ts';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { authenticate, authorize } from '../auth/tokens.ts';
import type { OpContext } from '../deploy/context.ts';
import { DepadError } from '../errors.ts';
import type { Logger } from '../logger.ts';
import type { TokenRecord } from '../store/records.ts';
import type { AgentEvent } from '../agent/reconciler.ts';
import type { EngineStatus, ObservedView } from '../agent/observed.ts';
import type { AgentInfo } from '../agent/agent-info.ts';
import type { RestartOptions, RestartResult } from '../agent/handover.ts';
import type { AuditLog } from './audit.ts';
import { ENDPOINTS } from './endpoints.ts';
import type { Call, Endpoint } from './endpoints.ts';
import type { FailureLimiter } from './failures.ts';
import { OPERATION_HEADER, startOperation } from './operations.ts';

/** The endpoint table (also for the OpenAPI document and tests). */
export { ENDPOINTS } from './endpoints.ts';
export type { Endpoint } from './endpoints.ts';

/** What the handler needs: an operation context per request, the audit log, the failure limiter. */
export interface ApiDeps {
  /** The context operations run with (the agent's store, engine and routes); the handler sets its progress sink. */
  context(): OpContext;
  audit: AuditLog;
  limiter: FailureLimiter;
  log: Logger;
  /** What the agent's reconciler noticed (GET /v1/events). */
  events?: () => readonly AgentEvent[];
  /** The proxy's certificates and where each stands (GET /v1/certificates). */
  certificates?: () => readonly CertificateStatus[];
  /** The health monitor's view of every watched instance (GET /v1/health). */
  health?: () => readonly InstanceHealth[];
  /** The agent's copy of the engine's state: read-only endpoints answer from it. */
  observed?: ObservedView;
  /** What the agent knows of the engine's availability (GET /v1/engine). */
  engine?: () => EngineStatus;
  /** Restarts the agent into a new process (POST /v1/agent/restart). */
  restart?: (options: RestartOptions) => Promise<RestartResult>;
  /** Tells every new event to a listener until it unsubscribes (GET /v1/events?follow=true). */
  followEvents?: (listener: (event: AgentEvent) => void) => () => void;
  /** The agent's facts about itself (GET /v1/agent). */
  agent?: () => AgentInfo;
  /** Asks the agent to stop gracefully (POST /v1/agent/stop). */
  stop?: () => void;
  /** Runs state-changing operations one at a time (the agent's operation queue). */
  serialize<T>(fn: () => Promise<T>): Promise<T>;
  /**
   * Requests come over the agent's unix socket, whose file permissions (0660) are the access
   * control: they act as the local administrator, token or not.
   */
  local?: boolean;
  /** The endpoints served (default: the agent's, `ENDPOINTS`); the cluster manager serves its own table. */
  endpoints?: readonly Endpoint[];
  /**
   * Who a request presenting a client certificate acts as (the cluster manager calling its agents,
   * an agent's heartbeat to the manager); undefined: it needs a bearer token like any other.
   */
  principal?: (req: IncomingMessage) => TokenRecord | undefined;
  /** The cluster the agent joined, if any: creates then come from its manager only. */
  cluster?: () => { managerUrl: string; host: string } | undefined;
}

/** Who a request over the local unix socket acts as. */
const LOCAL_ADMIN: TokenRecord = Object.freeze({ id: 'local', name: 'local', scope: Object.freeze({ kind: 'admin' as const }), hash: '', createdAt: '' });

/** Each endpoint with the pattern of its path. */
function matchers(endpoints: readonly Endpoint[]) {
  return endpoints.map((e) => ({ endpoint: e, pattern: new RegExp(`^${e.path.replace(/\{[a-z]+\}/g, '([^/]+)')}$`) }));
}
const MATCHERS = matchers(ENDPOINTS);

function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = `${JSON.stringify(body)}\n`;
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store', ...headers });
  res.end(text);
}

function errorBody(error: DepadError): unknown {
  return { error: { code: error.code, message: error.message, ...(error.hint === undefined ? {} : { hint: error.hint }) } };
}

/** The bearer token of a request, if it sent one. */
function bearer(req: IncomingMessage): string | undefined {
  const header = req.headers.authorization;
  const m = header === undefined ? null : /^Bearer ([^\s]+)$/.exec(header);
  return m?.[1];
}

/** The request listener of the management API. */
export function createApiHandler(deps: ApiDeps): (req: IncomingMessage, res: ServerResponse) => void {
  const table = deps.endpoints ? matchers(deps.endpoints) : MATCHERS;
  return (req, res) => {
    void handle(deps, table, req, res).catch((error: unknown) => {
      deps.log.error({ error: (error as Error).message }, 'API request failed unexpectedly');
      if (!res.headersSent) send(res, 500, { error: { code: 'DEPAD_INTERNAL', message: 'internal error' } });
      else res.destroy();
    });
  };
}

async function handle(deps: ApiDeps, table: ReturnType<typeof matchers>, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const ip = req.socket.remoteAddress ?? 'local';
  const delay = deps.limiter.delayFor(ip);
  if (delay > 0) await sleep(delay);
  const ctx = deps.context();
  let token: TokenRecord;
  try {
    token = deps.local ? LOCAL_ADMIN : (deps.principal?.(req) ?? (await authenticate(ctx.store, bearer(req))));
  } catch (error) {
    deps.limiter.failed(ip);
    req.resume();
    return send(res, 401, errorBody(error as DepadError), { 'www-authenticate': 'Bearer realm="depad"', connection: 'close' });
  }
  const url = new URL(req.url ?? '/', 'http://agent');
  let match: { endpoint: Endpoint; params: string[] } | undefined;
  for (const m of table) {
    const found = m.endpoint.method === req.method ? m.pattern.exec(url.pathname) : null;
    if (found) match = { endpoint: m.endpoint, params: found.slice(1).map((p) => safeDecode(p)) };
  }
  const stream = match?.endpoint.streams === true || match?.endpoint.streamsWhen?.(url) === true || (match?.endpoint.mutates === true && (req.headers.accept ?? '').includes('application/x-ndjson'));
  const progress: OpContext['progress'] = stream ? (event) => void res.write(`${JSON.stringify({ progress: event })}\n`) : () => {};
  // Aborted when the client goes away before the answer ended, or cancels (operations.ts):
  // a state-changing operation then stops at its next step and undoes what it did.
  const aborted = new AbortController();
  res.once('close', () => void (res.writableFinished || aborted.abort()));
  const emit = (line: Record<string, unknown>) => void res.write(`${JSON.stringify(line)}\n`);
  const action = match?.endpoint.action ?? 'ls';
  const mutates = match?.endpoint.mutates === true;
  const signal = ctx.signal ? AbortSignal.any([ctx.signal, aborted.signal]) : aborted.signal;
  const opCtx: OpContext = { ...ctx, progress, ...(deps.observed && !mutates ? { observed: deps.observed } : {}), ...(mutates ? { signal } : {}) };
  const call: Call = { token, action, params: match?.params ?? [], req, url, local: deps.local === true, ctx: opCtx, emit, signal: aborted.signal, events: deps.events ?? (() => []), certificates: deps.certificates ?? (() => []), health: deps.health, engine: deps.engine, restart: deps.restart, followEvents: deps.followEvents, agent: deps.agent, stop: deps.stop, ...(deps.cluster ? { cluster: deps.cluster } : {}) };
  const operation = stream && mutates ? startOperation(token, aborted, () => call.deployment) : undefined;
  const audit = (result: 'ok' | 'error', status: number, code?: string) =>
    deps.audit.record({ ip, token: token.name, action, ...(call.deployment ? { deployment: call.deployment } : {}), result, status, ...(code ? { code } : {}) }, (error) =>
      deps.log.error({ error: (error as Error).message }, 'cannot write the audit log'),
    );
  if (stream) res.writeHead(200, { 'content-type': 'application/x-ndjson; charset=utf-8', 'cache-control': 'no-store', ...(operation ? { [OPERATION_HEADER]: operation.id } : {}) });
  // The header goes out now, before the operation waits its turn: the client can cancel it at once.
  if (operation) res.flushHeaders();
  try {
    if (match === undefined) throw missingEndpoint(req.method ?? '', url.pathname, deps.endpoints !== undefined);
    // Endpoints about one deployment (and create, bulk) check the scope against it; others here.
    if (!match.endpoint.path.includes('{deployment}') && !match.endpoint.scopesItself) authorize(token, action);
    const endpoint = match.endpoint;
    const run = () => {
      if (aborted.signal.aborted) throw new DepadError('DEPAD_INTERRUPTED', 'the operation was cancelled before it started: nothing was done');
      return endpoint.run(call);
    };
    const { status = 200, body } = endpoint.mutates || endpoint.queued ? await deps.serialize(run) : await endpoint.run(call);
    audit('ok', status);
    if (stream) res.end(`${JSON.stringify({ result: body })}\n`);
    else send(res, status, body);
  } catch (error) {
    const e = error instanceof DepadError ? error : new DepadError('DEPAD_INTERNAL', 'internal error', { cause: error });
    if (!(error instanceof DepadError)) deps.log.error({ error: (error as Error).message }, 'API action failed unexpectedly');
    req.resume();
    audit('error', e.status, e.code);
    if (stream) res.end(`${JSON.stringify({ ...(errorBody(e) as object), status: e.status })}\n`);
    else send(res, e.status, errorBody(e));
  } finally {
    operation?.done();
  }
}

function safeDecode(part: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    return part;
  }
}

/**
 * DEPAD_NOT_FOUND for a path this API lacks, saying why when it is the other kind's: an agent's
 * per-host path asked of a cluster manager (`onManager`), or a manager's asked of an agent.
 */
function missingEndpoint(method: string, pathname: string, onManager: boolean): DepadError {
  const message = `no endpoint ${method} ${pathname}`;
  if (onManager && MATCHERS.some((m) => m.endpoint.method === method && m.pattern.test(pathname))) {
    return new DepadError('DEPAD_NOT_FOUND', `${message} on the cluster manager: that is per host`, { hint: "ask the host's agent (depad --host https://<host address>:8443 …; depad hosts inspect <host> shows its address)" });
  }
  if (!onManager && /^\/v1\/(hosts|cluster)(\/|$)/.test(pathname)) {
    return new DepadError('DEPAD_NOT_FOUND', `${message}: this is a depad agent, not a cluster manager`, { hint: 'give the manager with --host or --context (depad manager serves the cluster verbs)' });
  }
  return new DepadError('DEPAD_NOT_FOUND', message, { hint: 'see GET /v1/openapi.json' });
}
