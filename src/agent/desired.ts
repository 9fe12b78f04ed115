/**
 * What one deployment needs to match its desired state, from its record, its plan and what the
 * engine reports. Pure: the reconciler carries it out. The rules (README, "The agent keeps
 * deployments running"):
 * - a service should run when its deployment should (`desired: running`), it was not stopped on
 *   its own (`stop -s`), and it is not a one-shot service (one another waits to complete);
 * - an instance that should run and is not running is started (created first when its container
 *   is gone), unless the engine is restarting it, the agent gave up on it (a crash loop), its
 *   backoff has not ended, or the file's own `restart:` says it stays down (`"no"`; `on-failure`
 *   after a clean exit or after its retries) — for exits the agent saw while the engine ran: after
 *   the engine's return or at the agent's start (`restoring`: a reboot or an engine restart stopped
 *   everything, so an exit says nothing of the service), every instance that should run is started;
 * - an instance that should not run and runs is stopped (a stopped deployment stays stopped,
 *   even when the engine brought it back with `restart: always`);
 * - a running instance that joins another's namespaces (`network_mode: service:…`) is restarted
 *   when that one started after it (a crash or a restart left it in namespaces that are gone), or
 *   when that one is started now (it was seen stopped: its namespaces will be new).
 */
import type { ContainerPlan, ContainerState, ServicePlan } from '../engine/types.ts';
import type { DeploymentRecord } from '../store/records.ts';
import type { StoredPlan } from '../deploy/root-dir.ts';
import { joinedContainers } from '../deploy/namespace-groups.ts';

/** An instance to start, and why. */
export interface StartStep {
  service: string;
  container: ContainerPlan;
  /** Its container, or undefined when it is gone (it is created from the plan). */
  state: ContainerState | undefined;
  reason: string;
}

/** The decision for one deployment. */
export interface Decision {
  /** In dependency order. */
  start: StartStep[];
  /** Running instances that should not run, dependants first. */
  stop: Array<{ service: string; state: ContainerState; timeoutSec?: number; reason: string; /** Stopped to be started again at once (not a death to count). */ restart?: true }>;
  /** Decide again in this many ms (a backoff ends), if any. */
  retryInMs?: number;
}

/** True when the deployment wants `service` running. */
export function shouldRun(record: DeploymentRecord, service: ServicePlan | undefined): boolean {
  return record.phase === 'ready' && record.desired === 'running' && !(record.stoppedServices ?? []).includes(service?.name ?? '') && service?.oneShot !== true;
}

/** Why the file's restart policy keeps a stopped instance down, or undefined when it does not. */
function policyKeepsDown(meta: ServicePlan | undefined, c: ContainerPlan, state: ContainerState): string | undefined {
  if (meta?.restartGiven !== true) return undefined;
  const policy = c.body.HostConfig.RestartPolicy;
  if (policy.Name === 'no') return 'its restart policy is "no"';
  if (policy.Name === 'on-failure' && state.exitCode === 0) return 'it exited 0 and its restart policy is on-failure';
  if (policy.Name === 'on-failure' && policy.MaximumRetryCount && state.restartCount >= policy.MaximumRetryCount) return `it used its ${policy.MaximumRetryCount} retries (on-failure)`;
  return undefined;
}

/**
 * Decides what to start and stop. `waitBeforeStart` says how long an instance's backoff still
 * lasts (0: none) or undefined when the agent gave up on it.
 */
export function decide(record: DeploymentRecord, plan: StoredPlan, containers: readonly ContainerState[], waitBeforeStart: (name: string) => number | undefined, restoring = false): Decision {
  const byName = new Map(containers.map((c) => [c.name, c]));
  const decision: Decision = { start: [], stop: [] };
  if (record.phase !== 'ready') return decision;
  for (const c of plan.containers) {
    const meta = plan.services.find((s) => s.name === c.service);
    const name = c.name; // the plan of the record's revision names its current instances
    const state = byName.get(name);
    const up = state !== undefined && (state.running || state.status === 'restarting');
    if (!shouldRun(record, meta)) {
      if (up && meta?.oneShot !== true) decision.stop.unshift({ service: c.service, state, ...(c.body.StopTimeout === undefined ? {} : { timeoutSec: c.body.StopTimeout }), reason: record.desired === 'stopped' ? 'the deployment is stopped' : 'the service is stopped' });
      continue;
    }
    if (up && state.running && ownerRestartedAfter(c, state, byName)) {
      // It joins another instance's namespaces (network_mode: service:…), which started after it: its network is gone; join the new one.
      const owner = ownerRestartedAfter(c, state, byName)!;
      restartJoiner(decision, c, state, `${owner} started after it, and it shares ${owner}'s namespaces`);
      continue;
    }
    if (up || state?.status === 'paused') continue;
    if (state === undefined) {
      decision.start.push({ service: c.service, container: c, state, reason: 'its container is gone' });
      continue;
    }
    if (!restoring && policyKeepsDown(meta, c, state)) continue;
    const wait = waitBeforeStart(name);
    if (wait === undefined) continue; // given up on
    if (wait > 0) {
      decision.retryInMs = Math.min(decision.retryInMs ?? Infinity, wait);
      continue;
    }
    decision.start.push({ service: c.service, container: c, state, reason: state.status === 'created' ? 'it was never started' : `it exited (code ${state.exitCode})` });
  }
  // An owner started now gets new namespaces: what runs in its old ones is restarted after it (it
  // may be what answers the owner's health check, which would otherwise wait for it forever).
  for (const c of plan.containers) {
    const state = byName.get(c.name);
    if (state === undefined || !state.running || decision.stop.some((s) => s.state.name === c.name)) continue;
    const owner = joinedContainers(c).find((name) => decision.start.some((s) => s.container.name === name));
    if (owner === undefined || !shouldRun(record, plan.services.find((s) => s.name === c.service))) continue;
    restartJoiner(decision, c, state, `${owner} is started again, and it shares ${owner}'s namespaces`);
  }
  return decision;
}

/** Stops `c` to start it again at once (not a death to count), into the namespaces its owner has now. */
function restartJoiner(decision: Decision, c: ContainerPlan, state: ContainerState, reason: string): void {
  decision.stop.push({ service: c.service, state, ...(c.body.StopTimeout === undefined ? {} : { timeoutSec: c.body.StopTimeout }), reason, restart: true });
  decision.start.push({ service: c.service, container: c, state, reason });
}

/** The owner container `c` joins that started after `state` did (its namespaces are new), if any. */
function ownerRestartedAfter(c: ContainerPlan, state: ContainerState, byName: ReadonlyMap<string, ContainerState>): string | undefined {
  const since = Date.parse(state.startedAt ?? '');
  if (!Number.isFinite(since)) return undefined;
  return joinedContainers(c).find((name) => {
    const owner = byName.get(name);
    return owner?.running === true && Date.parse(owner.startedAt ?? '') > since;
  });
}
