/**
 * What every endpoint works with: the authenticated call, the endpoint's shape, and the checks on
 * inputs the endpoints share (deployment references in paths, config files and texts, update
 * targets). Nothing here reaches the store except `scopedDeployment`, which also checks the scope.
 */
import type { IncomingMessage } from 'node:http';
import path from 'node:path';
import { authorize, selects } from '../auth/tokens.ts';
import type { Action } from '../auth/tokens.ts';
import type { AgentEvent } from '../agent/reconciler.ts';
import type { AgentInfo } from '../agent/agent-info.ts';
import type { CertificateStatus } from '../../certs/acme.ts';
import type { InstanceHealth } from '../agent/health-monitor.ts';
import type { QueryParameter } from './replica-query.ts';
import type { EngineStatus } from '../agent/observed.ts';
import type { RestartOptions, RestartResult } from '../agent/handover.ts';
import type { OpContext } from '../deploy/context.ts';
import { resolveDeployment } from '../deploy/resolve.ts';
import type { UpdateTarget } from '../deploy/update.ts';
import { BUNDLE_MAX_BYTES, unpackBundle, type Unpacked } from '../deploy/bundle.ts';
import { DepadError, formatIssue } from '../errors.ts';
import type { TokenRecord } from '../store/records.ts';
import { booleanField, labelsField, onlyFields, stringField, stringMapField, stringsField } from './body.ts';
import type { DeploymentSpec } from '../config/spec.ts';
import { loadGivenConfig } from '../deploy/update-target.ts';
import { deploymentLabels } from '../labels.ts';

/** One request, authenticated. */
export interface Call {
  token: TokenRecord;
  /** The endpoint's action, what scopes are checked for. */
  action: Action;
  params: string[];
  req: IncomingMessage;
  url: URL;
  /** The request came over the local unix socket (it may name files on this host). */
  local: boolean;
  ctx: OpContext;
  /** Writes one JSON line of a streamed answer (endpoints with `streams`). */
  emit(line: Record<string, unknown>): void;
  /** Aborted when the client goes away. */
  signal: AbortSignal;
  /** The agent's event list. */
  events: () => readonly AgentEvent[];
  /** The proxy's certificates and where each stands. */
  certificates: () => readonly CertificateStatus[];
  /** The agent's health checks; undefined outside an agent. */
  health: (() => readonly InstanceHealth[]) | undefined;
  /** Whether the agent reaches the engine; undefined outside an agent. */
  engine: (() => EngineStatus) | undefined;
  /** Restarts the agent into a new process; undefined outside an agent. */
  restart: ((options: RestartOptions) => Promise<RestartResult>) | undefined;
  /** Tells every new event to `listener` until the returned function is called; undefined outside an agent. */
  followEvents: ((listener: (event: AgentEvent) => void) => () => void) | undefined;
  /** The agent's facts about itself; undefined outside an agent. */
  agent: (() => AgentInfo) | undefined;
  /** Asks the agent to stop gracefully (local socket only); undefined elsewhere. */
  stop: (() => void) | undefined;
  /** The cluster this agent joined (its manager, its host name), if any. */
  cluster?: () => { managerUrl: string; host: string } | undefined;
  /** The deployment the call is about, for the audit log. */
  deployment?: string;
}

/** One endpoint: method, path pattern, the action its scope is checked for, what it does. */
export interface Endpoint {
  method: 'GET' | 'POST' | 'DELETE';
  /** OpenAPI path, e.g. `/v1/deployments/{deployment}`. */
  path: string;
  action: Action;
  summary: string;
  /** Its query parameters, for the OpenAPI document. */
  query?: readonly QueryParameter[];
  /** Changes state: runs one at a time, and streams progress when the client accepts JSON lines. */
  mutates?: boolean;
  /** Changes nothing but runs in the operation queue all the same, so it never sees an operation half done. */
  queued?: boolean;
  /** Always answers with JSON lines (`emit`), ending with `{result}` or `{error}`. */
  streams?: boolean;
  /** Answers with JSON lines, as `streams`, for the requests this says so of (`?follow=true`). */
  streamsWhen?: (url: URL) => boolean;
  /** Checks the token's scope itself, per deployment it touches (create, bulk); the others about no one deployment are checked before `run`. */
  scopesItself?: boolean;
  run(call: Call): Promise<{ status?: number; body: unknown }>;
}

/** Deployment references in paths: a name or an ID (prefix). Nothing else reaches the store. */
const REF = /^[a-z0-9](?:[a-z0-9-]{0,62})$/;

export function ref(call: Call): string {
  const value = call.params[0] as string;
  if (!REF.test(value)) throw new DepadError('DEPAD_NAME_INVALID', `not a deployment or token name: ${JSON.stringify(value.slice(0, 80))}`);
  return value;
}

/** Finds the deployment of the call and checks the token's scope for the call's action on it (403 before 404 for names outside it). */
export async function scopedDeployment(call: Call) {
  const name = ref(call);
  call.deployment = name;
  let record;
  try {
    record = await resolveDeployment(call.ctx.store, name);
  } catch (error) {
    if (!selects(call.token.scope, { name })) authorize(call.token, call.action, { name });
    throw error;
  }
  call.deployment = record.name;
  authorize(call.token, call.action, { name: record.name, labels: record.labels ?? {} });
  return record;
}

/** Which deployments (by name) the call's token may see: for lists of things about deployments (events, health). */
export async function visibleTo(call: Call): Promise<(name: string) => boolean> {
  const labels = new Map((await call.ctx.store.listDeployments()).map((r) => [r.name, r.labels ?? {}]));
  return (name) => selects(call.token.scope, { name, labels: labels.get(name) ?? {} });
}

/** A config file named by a client: only over the local socket (a remote client cannot name files here), absolute. */
export function configFileField(call: Call, body: Record<string, unknown>, required: boolean): string | undefined {
  const file = stringField(body, 'configFile', !required);
  if (file === undefined) return undefined;
  if (!call.local) throw new DepadError('DEPAD_USAGE', 'configFile is only accepted over the local socket', { hint: 'remote clients send the config itself: config (its text) and configName' });
  if (!path.isAbsolute(file)) throw new DepadError('DEPAD_USAGE', 'configFile must be an absolute path');
  return file;
}

export function pullField(body: Record<string, unknown>): 'missing' | 'never' {
  const pull = body.pull ?? 'missing';
  if (pull !== 'missing' && pull !== 'never') throw new DepadError('DEPAD_USAGE', 'field pull must be "missing" or "never"');
  return pull;
}

/** A config sent as text (`config`, `configName`): the way remote clients give one. */
export function configTextField(body: Record<string, unknown>): { text: string; name: string } | undefined {
  const text = stringField(body, 'config', true);
  if (text === undefined) return undefined;
  if (body.configFile !== undefined) throw new DepadError('DEPAD_USAGE', 'give config or configFile, not both');
  if (Buffer.byteLength(text) > 256 * 1024) throw new DepadError('DEPAD_BODY_TOO_LARGE', 'a config is at most 256 KiB');
  const name = stringField(body, 'configName', true) ?? 'depad.yml';
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/.test(name)) throw new DepadError('DEPAD_USAGE', `configName must be a file name, not ${JSON.stringify(name.slice(0, 80))}`);
  return { text, name };
}

/** The update target of an update or diff request. */
export function updateTarget(call: Call, body: Record<string, unknown>, extra: readonly string[] = [], unpacked?: Unpacked): UpdateTarget {
  onlyFields(body, ['configFile', 'config', 'configName', 'bundle', 'env', 'resetEnv', 'overrides', 'scale', 'pull', ...extra]);
  const scale = scaleField(body);
  const configText = configTextField(body);
  const configFile = unpacked?.configFile ?? configFileField(call, body, false);
  // Warnings reach the client as progress lines (`step: warning`).
  const warning = (message: string) => call.ctx.progress({ step: 'warning', message });
  return {
    ...(configFile === undefined ? {} : { configFile }),
    ...(unpacked === undefined ? {} : { fromRemote: true }),
    ...(configText === undefined ? {} : { configText }),
    env: stringMapField(body, 'env'),
    ...(booleanField(body, 'resetEnv') ? { resetEnv: true } : {}),
    overrides: stringMapField(body, 'overrides'),
    ...(scale === undefined ? {} : { scale }),
    pull: pullField(body),
    warn: (w) => warning(formatIssue(w)),
    notice: warning,
  };
}

/** The `scale` field of an update body: service → replica count (a whole number; 0 runs none). */
function scaleField(body: Record<string, unknown>): Record<string, number> | undefined {
  const value = body.scale;
  if (value === undefined) return undefined;
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new DepadError('DEPAD_USAGE', 'scale must be an object of service → replica count');
  const out: Record<string, number> = {};
  for (const [service, count] of Object.entries(value)) {
    if (typeof count !== 'number' || !Number.isInteger(count) || count < 0) throw new DepadError('DEPAD_USAGE', `scale.${service} must be a whole number (0 runs no container)`);
    out[service] = count;
  }
  return out;
}

/** The `dryRun` field of an update or rollback body. */
export function dryRunField(body: Record<string, unknown>): boolean {
  return booleanField(body, 'dryRun');
}

/** The body of start, stop and restart (one deployment or a selection): `services` (none: all) and, except for stop, `wait`. */
export function lifecycleOptions(body: Record<string, unknown>, verb: 'start' | 'stop' | 'restart'): { services?: string[]; wait: boolean } {
  const services = stringsField(body, 'services');
  if (verb !== 'stop' && body.wait !== undefined) booleanField(body, 'wait');
  return { ...(services.length > 0 ? { services } : {}), wait: body.wait !== false };
}

/** The largest body of a call that may carry a bundle (a config and its files, base64 in JSON). */
export const BUNDLE_BODY_BYTES = Math.ceil((BUNDLE_MAX_BYTES * 4) / 3) + 1024 * 1024;

/**
 * Runs `fn` with the body's `bundle` (a config with its files, from a remote client) unpacked into
 * a private directory under `<home>/uploads/` (undefined without one), and removes it afterwards.
 */
export async function withBundle<T>(call: Call, body: Record<string, unknown>, fn: (unpacked: Unpacked | undefined) => Promise<T>): Promise<T> {
  if (body.bundle === undefined) return fn(undefined);
  if (body.config !== undefined || body.configFile !== undefined) throw new DepadError('DEPAD_USAGE', 'give bundle, config or configFile, one of them');
  const unpacked = await unpackBundle(path.join(call.ctx.home, 'uploads'), body.bundle);
  try {
    return await fn(unpacked);
  } catch (error) {
    throw withoutUploadDir(error, path.dirname(unpacked.configFile));
  } finally {
    await unpacked.remove();
  }
}

/**
 * `error` with the private upload directory taken out of its message, hint and details: the client
 * sees `shop.yml:7:19 …`, its own file's name, not a path on the agent's host that is gone.
 */
function withoutUploadDir(error: unknown, dir: string): unknown {
  if (!(error instanceof Error)) return error;
  const strip = (text: string) => text.split(`${dir}${path.sep}`).join('');
  error.message = strip(error.message);
  if (error instanceof DepadError) {
    if (error.hint !== undefined) Object.defineProperty(error, 'hint', { value: strip(error.hint) });
    if (error.details !== undefined) Object.defineProperty(error, 'details', { value: JSON.parse(strip(JSON.stringify(error.details))) as Record<string, unknown> });
  }
  return error;
}

/** A create body's fields and its config, loaded and checked against the token. */
export interface CreateAsk {
  name: string;
  /** The labels given at create (`--label`, `--class`). */
  labels: Record<string, string>;
  env: Record<string, string>;
  spec: DeploymentSpec;
  /** The deployment's labels: the config's, then the given ones. */
  allLabels: Record<string, string>;
}

/**
 * Reads a create body (agent and cluster manager alike): its name, labels, variables and config
 * (an uploaded bundle, the config text, or over the local socket a file). A token that selects by
 * name only is refused before the config is read; every token is checked against the
 * deployment's labels once it is. `fn` runs while an uploaded bundle is unpacked.
 */
export async function withCreateConfig<T>(call: Call, body: Record<string, unknown>, fn: (ask: CreateAsk) => Promise<T>): Promise<T> {
  const name = stringField(body, 'name') as string;
  call.deployment = name;
  const scope = call.token.scope;
  if (scope.kind === 'deploy' && Object.keys(scope.labels).length === 0) authorize(call.token, 'create', { name });
  const labels = labelsField(body, 'labels');
  const env = stringMapField(body, 'env');
  return withBundle(call, body, async (unpacked) => {
    const configText = unpacked === undefined ? configTextField(body) : undefined;
    const given = unpacked !== undefined ? { configFile: unpacked.configFile, fromRemote: true } : configText !== undefined ? { configText } : { configFile: configFileField(call, body, true) as string };
    const spec = (await loadGivenConfig(given, env))!;
    const allLabels = deploymentLabels(spec, labels);
    authorize(call.token, 'create', { name, labels: allLabels });
    return fn({ name, labels, env, spec, allLabels });
  });
}
