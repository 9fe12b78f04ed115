/**
 * A roll that left some slots on their old replicas (a tolerated failure, `failure_action:
 * continue`, or a paused roll; roll.ts) commits a mixed service: the revision's plan holds the old
 * replica's container plan in that slot, the old replica keeps its route port, the failed new
 * one's port becomes a spare, and the record says which replicas are held and why. The next
 * update sees those replicas differ from the file and rolls the service again.
 */
import { LABELS, type ContainerPlan } from '../engine/types.ts';
import { planInstance } from '../render/names.ts';
import type { DeploymentRecord, HeldService, PortAssignment } from '../store/records.ts';
import { asSpare } from './port-plan.ts';
import type { RollOutcome } from './roll.ts';

/** The containers of the new plan with each held slot's new container replaced by its old one. */
export function heldContainers(
  containers: readonly ContainerPlan[],
  current: readonly ContainerPlan[],
  outcomes: Readonly<Record<string, RollOutcome>>,
): ContainerPlan[] {
  return containers.map((c) => {
    const held = outcomes[c.service]?.held.find((h) => h.instead === planInstance(c));
    if (held === undefined) return c;
    return current.find((o) => o.service === c.service && planInstance(o) === held.instance) ?? c;
  });
}

/** The committed ports with each held old replica's route port back as it was and the failed new one's a spare. */
export function heldPorts(finalPorts: readonly PortAssignment[], before: readonly PortAssignment[], outcomes: Readonly<Record<string, RollOutcome>>): PortAssignment[] {
  let out = [...finalPorts];
  for (const [service, outcome] of Object.entries(outcomes)) {
    for (const h of outcome.held) {
      const mine = before.filter((p) => p.service === service && p.role === 'instance' && p.instance === h.instance);
      out = out.map((p) => {
        if (p.service === service && p.role === 'instance' && p.instance === h.instead) return asSpare(p);
        return p.role === 'spare' && mine.some((m) => m.host === p.host) ? mine.find((m) => m.host === p.host)! : p;
      });
    }
  }
  return out;
}

/** The record's held replicas after an update: rolled services as their outcome says, changed or removed ones cleared, the rest kept. */
export function heldRecord(
  record: Pick<DeploymentRecord, 'held'>,
  touched: readonly string[],
  outcomes: Readonly<Record<string, RollOutcome>>,
  current: readonly ContainerPlan[],
): Record<string, HeldService> | undefined {
  const out: Record<string, HeldService> = Object.fromEntries(Object.entries(record.held ?? {}).filter(([s]) => !touched.includes(s)));
  for (const [service, outcome] of Object.entries(outcomes)) {
    if (outcome.held.length === 0) continue;
    const revisionOf = (instance: number) => Number(current.find((c) => c.service === service && planInstance(c) === instance)?.body.Labels[LABELS.revision] ?? 0);
    out[service] = {
      replicas: outcome.held.map((h) => ({ replica: h.replica, instance: h.instance, revision: revisionOf(h.instance), reason: h.reason })),
      ...(outcome.paused !== undefined ? { paused: outcome.paused } : {}),
    };
  }
  return Object.keys(out).length > 0 ? out : undefined;
}

/** One line per service with held replicas, for progress and the paused error: `web: replicas 3, 4 still run revision 1`. */
export function heldSummary(held: Readonly<Record<string, HeldService>>): string[] {
  return Object.entries(held).map(([service, h]) => {
    const revisions = [...new Set(h.replicas.map((r) => r.revision))].join(', ');
    return `${service}: replica${h.replicas.length > 1 ? 's' : ''} ${h.replicas.map((r) => r.replica).join(', ')} still run${h.replicas.length > 1 ? '' : 's'} revision ${revisions}${h.paused ? ' (update paused)' : ''}`;
  });
}
