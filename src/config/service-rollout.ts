/**
 * `deploy.update_config` and `deploy.rollback_config`: how an update replaces a service's replicas
 * (compose's keys, read for a single engine): batches of `parallelism`, `delay` between them,
 * `order` (start-first or stop-first), what a failed batch does (`failure_action`), how long a
 * new batch is watched after it is ready (`monitor`) and how many failures are tolerated
 * (`max_failure_ratio`).
 */
import type { Collector, LNode } from './nodes.ts';
import { entryPos, keyPath } from './nodes.ts';
import { checkKeys, mapEntries, readInt, readString, scalarNumber } from './read.ts';
import { readDuration } from './service-parts.ts';

/** One of `update_config` / `rollback_config`, as given (absent fields take depad's defaults: `rolloutDefaults`). */
export interface RolloutPolicy {
  /** Replicas replaced at a time; 0: all at once. */
  readonly parallelism?: number;
  /** Pause between two batches, ms. */
  readonly delayMs?: number;
  /** `start-first`: new replicas start beside the old ones; `stop-first`: old ones stop first. */
  readonly order?: 'start-first' | 'stop-first';
  /**
   * What failures past `maxFailureRatio` do: roll the service back to its old replicas (update
   * only), pause the roll there, or go on (`continue`). A tolerated failure keeps that replica's
   * old container in its slot. A rollback that gives none is undone (the deployment stays).
   */
  readonly failureAction?: 'rollback' | 'pause' | 'continue';
  /** How long each new batch is watched after it is ready; a death or an unhealthy state then is a failure, ms. */
  readonly monitorMs?: number;
  /** Share of replicas that may fail before `failureAction` applies (0 to 1). */
  readonly maxFailureRatio?: number;
}

const KEYS = ['parallelism', 'delay', 'order', 'failure_action', 'monitor', 'max_failure_ratio'] as const;

/** Reads `update_config` (`kind: update`) or `rollback_config` (`kind: rollback`: its failure_action is pause or continue); `publishes`: the service has `ports:`. */
export function readRollout(c: Collector, node: LNode, path: string, kind: 'update' | 'rollback', publishes = false): RolloutPolicy {
  const out: { -readonly [K in keyof RolloutPolicy]: RolloutPolicy[K] } = {};
  const keys = checkKeys(c, mapEntries(c, node, path) ?? [], path, { supported: [...KEYS] });
  const at = (key: string) => keyPath(path, key);
  const parallelism = keys.get('parallelism');
  if (parallelism) {
    const n = readInt(c, parallelism.value, at('parallelism'), 0);
    if (n !== undefined) out.parallelism = n;
  }
  for (const [key, field] of [['delay', 'delayMs'], ['monitor', 'monitorMs']] as const) {
    const e = keys.get(key);
    if (e === undefined) continue;
    const ms = readDuration(c, e.value, at(key));
    if (ms !== undefined) out[field] = ms;
  }
  const order = keys.get('order');
  if (order) {
    const t = readString(c, order.value, at('order'));
    if (t === 'start-first' && publishes) c.issue(at('order'), entryPos(order), 'order: start-first starts the new instance beside the old one, and the host ports this service publishes (ports:) can be bound by one of them only; use stop-first, or reach it through the proxy (x-depad.expose) instead of ports:');
    else if (t === 'start-first' || t === 'stop-first') out.order = t;
    else if (t !== undefined) c.issue(at('order'), entryPos(order), `order must be start-first or stop-first, found "${t}"`);
  }
  const action = keys.get('failure_action');
  if (action) {
    const t = readString(c, action.value, at('failure_action'));
    const allowed = kind === 'update' ? ['rollback', 'pause', 'continue'] : ['pause', 'continue'];
    if (t !== undefined && allowed.includes(t)) {
      out.failureAction = t as RolloutPolicy['failureAction'];
    }
    else if (t !== undefined) c.issue(at('failure_action'), entryPos(action), `failure_action must be ${allowed.join(', ')}${kind === 'rollback' ? ' (a rollback cannot roll back)' : ''}, found "${t}"`);
  }
  const ratio = keys.get('max_failure_ratio');
  if (ratio) {
    const n = scalarNumber(c, ratio.value, at('max_failure_ratio'));
    if (typeof n === 'number' && n >= 0 && n <= 1) {
      out.maxFailureRatio = n;
    }
    else if (n !== undefined) c.issue(at('max_failure_ratio'), entryPos(ratio), `max_failure_ratio must be a number from 0 to 1, found ${ratio.value.kind === 'scalar' ? ratio.value.text : 'a non-number'}`);
  }
  return out;
}

/** The policy an update (or rollback) applies: the given fields over depad's defaults. */
export function rolloutDefaults(given: RolloutPolicy | undefined, stateful: boolean): Required<RolloutPolicy> {
  return {
    parallelism: given?.parallelism ?? 1,
    delayMs: given?.delayMs ?? 0,
    order: given?.order ?? (stateful ? 'stop-first' : 'start-first'),
    // A failing rollback is undone, like a failing update, unless its rollback_config says pause or continue.
    failureAction: given?.failureAction ?? 'rollback',
    monitorMs: given?.monitorMs ?? 0,
    maxFailureRatio: given?.maxFailureRatio ?? 0,
  };
}

/** How many replicas a start-first rolling batch of `s` runs beside the old ones (0: one replica, or stop-first). */
export function rollingSurge(s: { readonly replicas?: number; readonly volumes: readonly { readonly type: string }[]; readonly ports?: readonly unknown[]; readonly depad?: { readonly route?: { readonly port: number } }; readonly rollout?: { readonly update?: RolloutPolicy } }): number {
  const n = s.replicas ?? 1;
  if (n <= 1) return 0;
  // Published ports roll stop-first (each replica's port passes to its successor).
  const published = (s.ports ?? []).some((p) => (p as { target: number }).target !== s.depad?.route?.port);
  if (published) return 0;
  const policy = rolloutDefaults(s.rollout?.update, s.volumes.some((m) => m.type === 'volume'));
  return policy.order === 'stop-first' ? 0 : policy.parallelism === 0 ? n : Math.min(policy.parallelism, n);
}
